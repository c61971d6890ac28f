"""Client matrix: openai-python (sync, async, streaming, helpers, parse) and openai-node.

Every client talks to a real Footnote on a loopback port; the schema tap of ``conftest.py``
checks each response, chunk and error they receive against OpenAI's own schemas.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel

from tests.fakes.upstream import FakeUpstream

Q = "Were Scott Derrickson and Ed Wood of the same nationality?"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": Q}]
NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def _client(base: str, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, **kwargs)


def test_sync_sdk_sends_every_sampling_field(footnote: str, upstream: FakeUpstream) -> None:
    resp = _client(footnote).chat.completions.create(
        model="speed",
        messages=MESSAGES,
        temperature=0.2,
        top_p=0.8,
        max_completion_tokens=400,
        stop=["\n\n\n"],
        seed=11,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        user="u-42",
        metadata={"run": "matrix"},
        n=1,
    )
    assert resp.choices[0].message.content
    assert (resp.model_extra or {})["basis"][0]["field"] == "content"
    sent = upstream.requests[-1]["body"]
    assert sent is not None
    assert (sent["temperature"], sent["top_p"], sent["seed"], sent["user"]) == (
        0.2,
        0.8,
        11,
        "u-42",
    )
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.1, 0.2)


@pytest.mark.anyio
async def test_async_sdk_streams_with_include_usage(footnote: str) -> None:
    client = openai.AsyncOpenAI(base_url=f"{footnote}/v1", api_key="unused", max_retries=0)
    try:
        stream = await client.chat.completions.create(
            model="speed",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    finally:
        await client.close()
    *body, last = chunks
    assert all(c.usage is None for c in body)
    assert "".join(c.choices[0].delta.content or "" for c in body if c.choices)
    assert last.choices == []
    assert last.usage is not None and last.usage.total_tokens > 0
    assert (last.model_extra or {})["basis"][0]["citations"]


def test_sdk_stream_helper_assembles_the_completion(footnote: str) -> None:
    client = _client(footnote)
    with client.chat.completions.stream(model="speed", messages=MESSAGES) as stream:
        texts = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    content = final.choices[0].message.content
    assert content and "".join(texts) == content
    assert final.choices[0].finish_reason == "stop"
    whole = client.chat.completions.create(model="speed", messages=MESSAGES)
    assert whole.choices[0].message.content == content


class Nationality(BaseModel):
    """What the research says about the two directors."""

    answer: str
    same_nationality: bool | None


def test_sdk_parse_with_a_pydantic_model(footnote: str, upstream: FakeUpstream) -> None:
    completion = _client(footnote).chat.completions.parse(
        model="base", messages=MESSAGES, response_format=Nationality
    )
    message = completion.choices[0].message
    assert isinstance(message.parsed, Nationality)
    assert message.parsed.answer
    basis = (completion.model_extra or {})["basis"]
    assert {"answer", "same_nationality"} <= {b["field"] for b in basis}
    sent = upstream.requests[-1]["body"]
    assert sent is not None and sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "Nationality"


def test_sdk_errors_are_typed_with_openai_fields(footnote: str) -> None:
    client = _client(footnote)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="speed", messages=MESSAGES, temperature=7)
    assert bad.value.param == "temperature"
    assert bad.value.code == "invalid_value"
    with pytest.raises(openai.BadRequestError) as image:
        client.chat.completions.create(
            model="speed",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": Q},
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    ],
                }
            ],
        )
    assert image.value.param == "messages[0].content[1]"
    with pytest.raises(openai.BadRequestError) as tools:
        client.chat.completions.create(
            model="speed",
            messages=MESSAGES,
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
    assert tools.value.param == "tools"


def test_perplexity_style_request_through_the_sdk(footnote: str) -> None:
    resp = _client(footnote).chat.completions.create(
        model="base",
        messages=MESSAGES,
        web_search_options={"search_context_size": "high"},
        extra_body={
            "search_domain_filter": ["127.0.0.2"],
            "return_images": True,
            "return_related_questions": True,
        },
    )
    extra = resp.model_extra or {}
    assert extra["citations"]
    assert {urlsplit(u).hostname for u in extra["citations"]} == {"127.0.0.2"}
    assert {r["url"] for r in extra["search_results"]} == set(extra["citations"])
    assert "images" not in extra and "related_questions" not in extra


@pytest.fixture(scope="module")
def keyed(footnote_factory: Any) -> str:
    return str(footnote_factory(api_keys=("k-one",)))


def test_parallel_style_clients(keyed: str) -> None:
    # Parallel's docs: base_url is the bare host, so the SDK posts to /chat/completions.
    bare = openai.OpenAI(base_url=keyed, api_key="k-one", max_retries=0)
    resp = bare.chat.completions.create(model="base", messages=MESSAGES)
    assert (resp.model_extra or {})["basis"][0]["field"] == "content"
    # And the /v1beta prefix with the x-api-key header.
    beta = openai.OpenAI(
        base_url=f"{keyed}/v1beta",
        api_key="not-a-key",
        max_retries=0,
        default_headers={"authorization": "", "x-api-key": "k-one"},
    )
    streamed = beta.chat.completions.create(model="lite", messages=MESSAGES, stream=True)
    assert list(streamed)[-1].choices == []
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=keyed, api_key="wrong", max_retries=0).chat.completions.create(
            model="base", messages=MESSAGES
        )


def test_openai_node_sdk(footnote: str) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed for the openai-node check (.ci/run installs it)"
    assert (NODE_DIR / "node_modules" / "openai").is_dir(), (
        "run `npm ci --prefix tests/node` first (make test does)"
    )
    proc = subprocess.run(
        [node, str(NODE_DIR / "client.mjs"), footnote, Q],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    completion = out["completion"]
    assert completion["object"] == "chat.completion"
    assert completion["content"] and completion["finish_reason"] == "stop"
    assert completion["annotations"] >= 1 and completion["citations"] >= 1
    assert completion["basis_fields"] == ["content"]
    assert completion["total_tokens"] > 0
    stream = out["stream"]
    assert stream["text"] == completion["content"]
    assert stream["last_choices"] == 0 and stream["last_total_tokens"] > 0
    assert stream["null_usage"] == stream["chunks"] - 1
    assert stream["last_basis_fields"] == ["content"]
    errors = out["errors"]
    assert errors["unknown_model"]["name"] == "NotFoundError"
    assert errors["unknown_model"]["status"] == 404
    assert errors["unknown_model"]["code"] == "model_not_found"
    bad = errors["bad_temperature"]
    assert (bad["name"], bad["status"], bad["param"]) == ("BadRequestError", 400, "temperature")
    assert bad["api_error"] and bad["type"] == "invalid_request_error"
    assert errors["image_part"]["param"] == "messages[0].content[1]"
    assert out["parallel"]["basis_fields"] == ["content"]
