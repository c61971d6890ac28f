"""Behaviour through the wire: marker filtering, mid-stream failures, search filters."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import pytest

Q = "Were Scott Derrickson and Ed Wood of the same nationality?"


def _client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


def test_unknown_markers_never_reach_the_client(footnote: str, upstream: Any) -> None:
    upstream.script = "Scott Derrickson is American [1]. Ed Wood was American [42]. Both [1, 99]."
    client = _client(footnote)
    whole = client.chat.completions.create(model="speed", messages=[{"role": "user", "content": Q}])
    content = whole.choices[0].message.content or ""
    assert "[42]" not in content and "99" not in content
    assert content == "Scott Derrickson is American [1]. Ed Wood was American. Both [1]."
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="speed", messages=[{"role": "user", "content": Q}], stream=True
        )
        if c.choices
    )
    assert streamed == content
    basis = (whole.model_extra or {})["basis"][0]
    # The claim without a valid marker is not cited; the reasoning says so.
    assert 'Sentence 2 ("Ed Wood was American.") cites no source' in basis["reasoning"]


def test_images_and_links_are_stripped(footnote: str, upstream: Any) -> None:
    upstream.script = (
        "Look ![x](http://evil.test/track.png) here. Scott Derrickson is American [1]."
    )
    resp = _client(footnote).chat.completions.create(
        model="speed", messages=[{"role": "user", "content": Q}]
    )
    assert "evil.test" not in (resp.choices[0].message.content or "")


def test_upstream_failure_mid_stream_is_an_error_event(footnote: str, upstream: Any) -> None:
    upstream.break_stream_after = 2
    with httpx.stream(
        "POST",
        f"{footnote}/v1/chat/completions",
        json={"model": "speed", "stream": True, "messages": [{"role": "user", "content": Q}]},
        timeout=30,
    ) as r:
        assert r.status_code == 200
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert '"error"' in events[-2] and "upstream" in events[-2]
    assert "Traceback" not in "".join(events)


def test_domain_filter_limits_every_source(footnote: str) -> None:
    r = httpx.post(
        f"{footnote}/v1/chat/completions",
        json={
            "model": "base",
            "messages": [{"role": "user", "content": Q}],
            "search_domain_filter": ["127.0.0.2"],
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["citations"]
    assert {urlsplit(u).hostname for u in body["citations"]} == {"127.0.0.2"}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"search_domain_filter": ["a.com", "-b.com"]}, "search_domain_filter"),
        ({"search_recency_filter": "fortnight"}, "search_recency_filter"),
    ],
)
def test_bad_filters_are_400(footnote: str, extra: dict[str, Any], param: str) -> None:
    r = httpx.post(
        f"{footnote}/v1/chat/completions",
        json={"model": "speed", "messages": [{"role": "user", "content": Q}], **extra},
        timeout=30,
    )
    assert r.status_code == 400
    assert r.json()["error"]["param"] == param


def test_follow_up_resolves_against_the_earlier_turn(footnote: str, searxng: Any) -> None:
    searxng.queries.clear()
    _client(footnote).chat.completions.create(
        model="speed",
        messages=[
            {"role": "user", "content": "Who directed Doctor Strange?"},
            {"role": "assistant", "content": "Scott Derrickson [1]."},
            {"role": "user", "content": "When was he born?"},
        ],
    )
    asked = " ".join(str(q) for q in searxng.queries)
    assert "Doctor Strange" in asked


@pytest.fixture(scope="module")
def uncached(footnote_factory: Any) -> str:
    """A Footnote without the page cache, so every page it reads is a request we can see."""
    return str(footnote_factory(cache_ttl_s=0.0))


def test_core_asks_the_upstream_for_queries_and_bills_them(
    uncached: str, upstream: Any, searxng: Any, simweb: Any
) -> None:
    from app.answer.prompt import REWRITE_PROMPT
    from tests.fakes.upstream import compose_answer, parse_prompt

    def script(body: dict[str, Any]) -> str:
        if body["messages"][0]["content"] == REWRITE_PROMPT:
            return "Shirley Temple\nKiss and Tell 1945 film"
        return compose_answer(*parse_prompt(body["messages"][-1]["content"]))

    upstream.script = script
    searxng.queries.clear()
    simweb.requests.clear()
    question = (
        "What government position was held by the woman who portrayed Corliss Archer "
        "in the film Kiss and Tell?"
    )
    raw = _client(uncached).chat.completions.with_raw_response.create(
        model="core", messages=[{"role": "user", "content": question}]
    )
    assert "rewrite;dur=" in raw.headers["server-timing"]
    resp = raw.parse()
    asked = [q["q"] for q in searxng.queries]
    assert "Shirley Temple" in asked
    rewrite = [
        r for r in upstream.requests if r["body"]["messages"][0]["content"] == REWRITE_PROMPT
    ]
    assert len(rewrite) == 1
    # Page text never goes into the rewriting call.
    assert "<<<source" not in rewrite[0]["body"]["messages"][-1]["content"]
    usage = resp.usage
    assert usage is not None
    # Both upstream calls are billed: more prompt tokens than the answer call alone.
    answer_call = upstream.requests[-1]["body"]
    answer_chars = sum(len(m["content"]) for m in answer_call["messages"])
    assert usage.prompt_tokens > (answer_chars + 3) // 4
    # The suggested query led to reading the page it names.
    assert any("shirley-temple" in str(u) for u in simweb.requests)


def test_stage_timings_in_server_timing(footnote: str) -> None:
    r = httpx.post(
        f"{footnote}/v1/chat/completions",
        json={"model": "speed", "messages": [{"role": "user", "content": Q}]},
        timeout=30,
    )
    stages = dict(part.strip().split(";dur=") for part in r.headers["server-timing"].split(","))
    assert set(stages) == {"search", "fetch_extract", "rank", "upstream"}
    assert all(float(ms) >= 0 for ms in stages.values())
    assert float(stages["upstream"]) > 0
