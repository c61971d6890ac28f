"""Structured output through the official SDK: schema-valid JSON with a basis per leaf path."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import jsonschema
import openai
import pytest

from tests.contract.test_openai_sdk import HOTPOT, _fetched_text
from tests.fakes.upstream import FakeUpstream

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "year": {"type": ["integer", "null"]},
        "facts": {"type": "array", "items": {"type": "string"}},
        "subject": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "summary": {"type": "string"}},
            "required": ["name", "summary"],
            "additionalProperties": False,
        },
    },
    "required": ["answer", "year", "facts", "subject"],
    "additionalProperties": False,
}

FORMAT: Any = {"type": "json_schema", "json_schema": {"name": "research", "schema": SCHEMA}}


def _question() -> str:
    return str(HOTPOT[0]["question"])


def _check(data: dict[str, Any], simweb: Any) -> dict[str, Any]:
    content = data["choices"][0]["message"]["content"]
    value: dict[str, Any] = json.loads(content)
    jsonschema.validate(value, SCHEMA)
    assert not re.search(r"\[\d+\]", content), "markers never reach the client's object"
    fields = [entry["field"] for entry in data["basis"]]
    assert "answer" in fields and "facts.0" in fields and "subject.summary" in fields
    fetched = set(data["citations"])
    cited = 0
    for entry in data["basis"]:
        assert entry["confidence"] in {"low", "medium", "high"}
        assert entry["reasoning"]
        for citation in entry["citations"]:
            cited += 1
            assert citation["url"] in fetched, "only fetched pages are cited"
            text = _fetched_text(simweb, citation["url"])
            for excerpt in citation["excerpts"]:
                assert excerpt in text, "every excerpt is verbatim text of a fetched page"
    assert cited, "values taken from the sources are attributed to them"
    assert data["usage"]["num_sources_cited"] >= 1
    return value


def test_json_schema_answer_is_valid_and_attributed_per_field(
    footnote: str, simweb: Any, upstream: FakeUpstream
) -> None:
    client = openai.OpenAI(base_url=f"{footnote}/v1", api_key="k", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="base",
        messages=[{"role": "user", "content": _question()}],
        response_format=FORMAT,
    )
    data = json.loads(raw.text)
    _check(data, simweb)
    # The schema went to the upstream both as its response_format and in the instructions.
    sent = upstream.requests[-1]["body"]
    assert sent is not None
    assert sent["response_format"]["json_schema"]["schema"] == SCHEMA
    assert "JSON Schema" in sent["messages"][0]["content"]


def test_streamed_json_schema_answer_carries_the_same_basis(footnote: str, simweb: Any) -> None:
    with (
        httpx.Client(timeout=30) as http,
        http.stream(
            "POST",
            f"{footnote}/v1/chat/completions",
            json={
                "model": "base",
                "stream": True,
                "messages": [{"role": "user", "content": _question()}],
                "response_format": FORMAT,
            },
        ) as resp,
    ):
        assert resp.status_code == 200, resp.read()
        events = [
            line.removeprefix("data: ") for line in resp.iter_lines() if line.startswith("data: ")
        ]
    assert events and events[-1] == "[DONE]", events
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    last = chunks[-1]
    data = {**last, "choices": [{"message": {"content": text}}]}
    _check(data, simweb)


def test_invalid_output_is_repaired_once(footnote: str, upstream: FakeUpstream) -> None:
    replies = iter(
        [
            '{"answer": 42}',
            json.dumps(
                {
                    "answer": "Fixed [1]",
                    "year": None,
                    "facts": [],
                    "subject": {"name": "x", "summary": "y"},
                }
            ),
        ]
    )
    upstream.script = lambda body: next(replies)
    client = openai.OpenAI(base_url=f"{footnote}/v1", api_key="k", max_retries=0)
    resp = client.chat.completions.create(
        model="speed",
        messages=[{"role": "user", "content": _question()}],
        response_format=FORMAT,
    )
    assert json.loads(resp.choices[0].message.content or "")["answer"] == "Fixed"
    repair = upstream.requests[-1]["body"]
    assert repair is not None
    assert "not valid" in repair["messages"][-1]["content"]
    assert repair["messages"][-2] == {"role": "assistant", "content": '{"answer": 42}'}
    # Both attempts are billed.
    assert resp.usage is not None and resp.usage.completion_tokens >= 10


def test_output_still_invalid_after_repair_is_a_clear_502(
    footnote: str, upstream: FakeUpstream
) -> None:
    upstream.script = "Sure! Here is the JSON you asked for."
    client = openai.OpenAI(base_url=f"{footnote}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model="speed",
            messages=[{"role": "user", "content": _question()}],
            response_format=FORMAT,
        )
    assert caught.value.status_code == 502
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == "invalid_structured_output"
    assert "not valid JSON" in body["message"]
    assert len(upstream.requests) == 2


def test_json_object_gives_an_object_with_a_basis(footnote: str) -> None:
    client = openai.OpenAI(base_url=f"{footnote}/v1", api_key="k", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="speed",
        messages=[{"role": "user", "content": _question()}],
        response_format={"type": "json_object"},
    )
    data = json.loads(raw.text)
    value = json.loads(data["choices"][0]["message"]["content"])
    assert isinstance(value, dict) and value["answer"]
    assert [e["field"] for e in data["basis"]] == ["answer"]
    assert data["basis"][0]["citations"]


@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        ({"type": "xml"}, "response_format.type"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        (
            {"type": "json_schema", "json_schema": {"name": "x"}},
            "response_format.json_schema.schema",
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "wat"}}},
            "response_format.json_schema.schema",
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "bad name!", "schema": {}}},
            "response_format.json_schema.name",
        ),
    ],
)
def test_malformed_response_format_is_a_400_naming_the_field(
    footnote: str, upstream: FakeUpstream, response_format: dict[str, Any], param: str
) -> None:
    resp = httpx.post(
        f"{footnote}/v1/chat/completions",
        json={
            "model": "speed",
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": response_format,
        },
        timeout=30,
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == param
    assert not upstream.requests, "nothing is researched or sent upstream for a bad request"


def test_structured_output_without_an_upstream_is_a_clear_400(footnote_extractive: str) -> None:
    resp = httpx.post(
        f"{footnote_extractive}/v1/chat/completions",
        json={
            "model": "speed",
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_object"},
        },
        timeout=30,
    )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["param"] == "response_format"
    assert "FOOTNOTE_UPSTREAM_BASE_URL" in error["message"]
