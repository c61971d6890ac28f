"""The official openai SDK (sync, async, streaming) against Footnote on a loopback port."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from retrieval.extract import TrafilaturaExtractor
from retrieval.types import Page

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "webcorpus"


def _questions(source: str, count: int) -> list[dict[str, Any]]:
    out = []
    with (CORPUS / "questions.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            if q["source"] == source and q["answerable"]:
                out.append(q)
            if len(out) == count:
                break
    return out


HOTPOT = _questions("hotpotqa", 6)


def _fetched_text(simweb: Any, url: str) -> str:
    """What Footnote's extractor reads from the page the simulated web serves at ``url``."""
    page = simweb.page_by_url(url)
    assert page is not None, f"cited a page the web does not have: {url}"
    body = page["html"].encode("utf-8")
    doc = TrafilaturaExtractor().extract(
        Page(url=url, final_url=url, status=200, content_type="text/html", body=body)
    )
    assert doc is not None
    return doc.text


def _check_basis(resp_extra: dict[str, Any], content: str, simweb: Any) -> None:
    basis = resp_extra["basis"]
    assert [b["field"] for b in basis] == ["content"]
    entry = basis[0]
    assert entry["confidence"] in {"low", "medium", "high"}
    assert entry["reasoning"]
    assert entry["citations"], "a supported answer cites something"
    for citation in entry["citations"]:
        assert citation["url"] in resp_extra["citations"]
        assert citation["excerpts"]
        text = _fetched_text(simweb, citation["url"])
        for excerpt in citation["excerpts"]:
            assert excerpt in text, "every excerpt is verbatim text of a fetched page"
    for result in resp_extra["search_results"]:
        assert set(result) == {"title", "url", "date", "snippet", "internal"}
        assert result["internal"] is False, "web pages are not internal"


def _check_annotations(annotations: list[Any], content: str, citations: list[str]) -> None:
    assert annotations
    for ann in annotations:
        assert ann.type == "url_citation"
        uc = ann.url_citation
        assert uc.url in citations
        assert 0 <= uc.start_index < uc.end_index <= len(content)
        span = content[uc.start_index : uc.end_index]
        # The span covers the claim itself, not just its "[n]" marker.
        assert len(span.split()) >= 3
        assert "[" in span


@pytest.mark.parametrize("question", HOTPOT[:3], ids=lambda q: q["id"])
def test_sync_completion_is_cited_and_verbatim(
    footnote: str, simweb: Any, question: dict[str, Any]
) -> None:
    client = openai.OpenAI(base_url=f"{footnote}/v1", api_key="unused", max_retries=0)
    resp = client.chat.completions.create(
        model="base", messages=[{"role": "user", "content": question["question"]}]
    )
    assert resp.id.startswith("chatcmpl-")
    assert resp.object == "chat.completion"
    assert resp.model == "base"
    choice = resp.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    content = choice.message.content
    assert content
    extra = resp.model_extra or {}
    _check_annotations(choice.message.annotations or [], content, extra["citations"])
    _check_basis(extra, content, simweb)
    cited = {c["url"] for c in extra["basis"][0]["citations"]}
    # Which source the (fake) model quotes is the model's choice; what Footnote owes is
    # that gold pages were read and given to it, and that it cites only sources.
    gold = {simweb.url_for_path(p) for p in question["gold_pages"]}
    assert gold & set(extra["citations"]), "a gold page is among the sources"
    assert cited <= set(extra["citations"])
    usage = resp.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    usage_extra = usage.model_extra or {}
    assert usage_extra["num_search_queries"] >= 1
    assert usage_extra["num_pages_fetched"] >= 1
    assert usage_extra["num_sources_cited"] == len(cited)


@pytest.mark.anyio
async def test_async_completion(footnote: str, simweb: Any) -> None:
    client = openai.AsyncOpenAI(base_url=f"{footnote}/v1", api_key="unused", max_retries=0)
    resp = await client.chat.completions.create(
        model="speed", messages=[{"role": "user", "content": HOTPOT[3]["question"]}]
    )
    await client.close()
    content = resp.choices[0].message.content or ""
    _check_basis(resp.model_extra or {}, content, simweb)


def test_streaming_deltas_then_final_chunk(footnote: str, simweb: Any) -> None:
    client = openai.OpenAI(base_url=f"{footnote}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model="base",
        messages=[{"role": "user", "content": HOTPOT[4]["question"]}],
        stream=True,
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(deltas) > 3, "content arrives as the upstream produces it, not in one piece"
    content = "".join(deltas)
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == "stop"
    last = chunks[-1]
    assert last.choices == []
    extra = last.model_extra or {}
    assert set(extra) >= {"basis", "citations", "search_results"}
    assert last.usage is not None and last.usage.completion_tokens > 0
    _check_basis(extra, content, simweb)
    annotations = finish[0].choices[0].delta.model_extra or {}
    assert annotations.get("annotations"), "the finishing chunk carries the annotations"
    ids = {c.id for c in chunks}
    assert len(ids) == 1


def test_streaming_matches_non_streaming_text(footnote: str) -> None:
    client = openai.OpenAI(base_url=f"{footnote}/v1", api_key="unused", max_retries=0)
    question: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": HOTPOT[5]["question"]}
    ]
    whole = client.chat.completions.create(model="base", messages=question)
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="base",
            messages=question,
            stream=True,
        )
        if c.choices
    )
    assert streamed == whole.choices[0].message.content


def test_page_text_never_in_system_message(footnote: str, upstream: Any) -> None:
    client = openai.OpenAI(base_url=f"{footnote}/v1", api_key="unused", max_retries=0)
    upstream.requests.clear()
    client.chat.completions.create(
        model="speed", messages=[{"role": "user", "content": HOTPOT[0]["question"]}]
    )
    body = upstream.requests[-1]["body"]
    system = [m["content"] for m in body["messages"] if m["role"] == "system"]
    user = body["messages"][-1]["content"]
    assert "<<<source 1 " in user
    assert all("<<<source" not in s and "Page:" not in s for s in system)


def test_extractive_answer_without_upstream(footnote_extractive: str, simweb: Any) -> None:
    client = openai.OpenAI(base_url=f"{footnote_extractive}/v1", api_key="unused", max_retries=0)
    resp = client.chat.completions.create(
        model="base", messages=[{"role": "user", "content": HOTPOT[1]["question"]}]
    )
    content = resp.choices[0].message.content or ""
    extra = resp.model_extra or {}
    _check_annotations(resp.choices[0].message.annotations or [], content, extra["citations"])
    _check_basis(extra, content, simweb)
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == 0 and resp.usage.completion_tokens == 0
