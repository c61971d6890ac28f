"""The chat request contract: every field is honoured, or refused with a 400 naming it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.api.contract import CONTEXT_SCALE, sized_tier
from app.openai_types import ChatRequest, WebSearchOptions
from app.tiers import TIERS
from tests.contract.openai_schema import SchemaLog
from tests.fakes.searxng import FakeSearxng
from tests.fakes.upstream import FakeUpstream

Q = "Were Scott Derrickson and Ed Wood of the same nationality?"
USER = {"role": "user", "content": Q}


@pytest.fixture
def http(footnote: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=footnote, timeout=30) as client:
        yield client


def _post(http: httpx.Client, **fields: Any) -> httpx.Response:
    body = {"model": "speed", "messages": [USER], **fields}
    return http.post("/v1/chat/completions", json=body)


def _sse(resp: httpx.Response) -> list[dict[str, Any]]:
    events = [e for e in resp.text.split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]"
    return [json.loads(e.removeprefix("data: ")) for e in events[:-1]]


# --- messages --------------------------------------------------------------------------------


def test_every_role_and_content_shape_is_accepted(
    http: httpx.Client, upstream: FakeUpstream
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "developer", "content": [{"type": "text", "text": "Prefer primary sources."}]},
        {"role": "user", "content": "Who directed Sinister?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q": "Sinister"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Scott Derrickson"},
        {"role": "function", "name": "lookup", "content": "Scott Derrickson"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Scott Derrickson."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Were Scott Derrickson and Ed Wood"},
                {"type": "input_text", "text": "of the same nationality?"},
            ],
        },
    ]
    r = http.post("/v1/chat/completions", json={"model": "speed", "messages": messages})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]
    sent = upstream.requests[-1]["body"]
    assert sent is not None
    turns = [(m["role"], m["content"]) for m in sent["messages"]]
    # The client's instructions follow Footnote's own system prompt, as system turns.
    assert ("system", "Answer in one sentence.") in turns
    assert ("system", "Prefer primary sources.") in turns
    assert ("assistant", "Scott Derrickson.") in turns
    # Tool and function results are not sent on: Footnote offers the upstream no tools.
    assert all(role in {"system", "user", "assistant"} for role, _ in turns)
    # The question is the text of both parts of the last user turn.
    assert f"Question: {Q}\n" in turns[-1][1]


@pytest.mark.parametrize(
    ("part", "index"),
    [
        ({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}, 1),
        ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, 1),
        ({"type": "file", "file": {"file_id": "file-1"}}, 1),
    ],
)
def test_media_parts_are_refused_naming_the_part(
    http: httpx.Client, searxng: FakeSearxng, part: dict[str, Any], index: int
) -> None:
    content = [{"type": "text", "text": Q}, part]
    r = http.post(
        "/v1/chat/completions",
        json={"model": "speed", "messages": [{"role": "user", "content": content}]},
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == f"messages[0].content[{index}]"
    assert err["code"] == "unsupported_content"
    assert part["type"] in err["message"] and "text" in err["message"]
    assert not searxng.queries, "nothing is researched for a refused request"


# --- refused and out-of-range fields ---------------------------------------------------------

REFUSED: list[tuple[dict[str, Any], str, str]] = [
    ({"temperature": 2.5}, "temperature", "between 0 and 2"),
    ({"temperature": -0.1}, "temperature", "between 0 and 2"),
    ({"top_p": 1.5}, "top_p", "between 0 and 1"),
    ({"presence_penalty": 3}, "presence_penalty", "between -2 and 2"),
    ({"frequency_penalty": -2.5}, "frequency_penalty", "between -2 and 2"),
    ({"max_tokens": 0}, "max_tokens", "at least 1"),
    ({"max_completion_tokens": -5}, "max_completion_tokens", "at least 1"),
    ({"n": 0}, "n", "at least 1"),
    ({"n": 2}, "n", "n=1"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "at most 16"),
    ({"metadata": {"k": "v" * 513}}, "metadata", "512"),
    ({"metadata": {"k": 1}}, "metadata[...]", "Expected `str`"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "Tools"),
    ({"tool_choice": "required"}, "tool_choice", "no tools"),
    ({"tool_choice": {"type": "function", "function": {"name": "f"}}}, "tool_choice", "no tools"),
    ({"functions": [{"name": "f", "parameters": {}}]}, "functions", "Function calling"),
    ({"function_call": {"name": "f"}}, "function_call", "no tools"),
    ({"logprobs": True}, "logprobs", "logprobs"),
    ({"top_logprobs": 3}, "top_logprobs", "logprobs"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "audio", "Audio"),
    ({"modalities": ["text", "audio"]}, "modalities", "text"),
    ({"stream_options": {"include_usage": True}}, "stream_options", "stream"),
    (
        {"web_search_options": {"search_context_size": "huge"}},
        "web_search_options.search_context_size",
        "one of low, medium, high",
    ),
    ({"search_after_date_filter": "3/1/2025"}, "search_after_date_filter", "recency"),
    ({"search_before_date_filter": "3/1/2025"}, "search_before_date_filter", "recency"),
    ({"messages": [{"role": "user", "content": None}]}, "messages[0].content", "required"),
    (
        {"messages": [{"role": "user", "content": [{"type": "video", "video": {}}]}]},
        "messages[0].content[0].type",
        "video",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
        "messages[0].content[0].text",
        "string",
    ),
]


@pytest.mark.parametrize(
    ("fields", "param", "says"), REFUSED, ids=[f"{p}-{i}" for i, (_, p, _) in enumerate(REFUSED)]
)
def test_fields_footnote_cannot_honour_are_400_naming_them(
    http: httpx.Client, searxng: FakeSearxng, fields: dict[str, Any], param: str, says: str
) -> None:
    r = _post(http, **fields)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param
    assert err["type"] == "invalid_request_error"
    assert says in err["message"]
    assert r.headers.get("x-should-retry") != "true"
    assert not searxng.queries, "a refused request spends no research"


def test_harmless_and_unknown_fields_are_accepted(http: httpx.Client) -> None:
    r = _post(
        http,
        tools=[],
        tool_choice="none",
        function_call="auto",
        parallel_tool_calls=True,
        logprobs=False,
        top_logprobs=0,
        modalities=["text"],
        n=1,
        stream=False,
        service_tier="auto",
        store=False,
        logit_bias={"50256": -100},
        reasoning_effort="low",
        prediction={"type": "content", "content": "x"},
        a_field_nobody_defined={"x": 1},
        stop="\n\n\n",
    )
    assert r.status_code == 200, r.text


# --- what is passed upstream -----------------------------------------------------------------


def test_sampling_fields_reach_the_upstream(http: httpx.Client, upstream: FakeUpstream) -> None:
    fields: dict[str, Any] = {
        "temperature": 0.3,
        "top_p": 0.9,
        "max_completion_tokens": 300,
        "stop": ["\n\n\n"],
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "user": "end-user-1",
        "metadata": {"team": "research"},
    }
    r = _post(http, **fields)
    assert r.status_code == 200, r.text
    sent = upstream.requests[-1]["body"]
    assert sent is not None
    for name, value in fields.items():
        if name == "metadata":
            # OpenAI only takes metadata together with `store`, which Footnote never sets.
            assert name not in sent
        else:
            assert sent[name] == value, name
    assert sent["model"] == "fake-model", "the tier name never reaches the upstream"


def test_max_tokens_cuts_the_answer_with_finish_reason_length(
    http: httpx.Client, upstream: FakeUpstream
) -> None:
    r = _post(http, max_tokens=3)
    assert r.status_code == 200, r.text
    sent = upstream.requests[-1]["body"]
    assert sent is not None and sent["max_tokens"] == 3
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert len(choice["message"]["content"]) <= 12


# --- stream_options.include_usage ------------------------------------------------------------


def test_include_usage_follows_openai_semantics(http: httpx.Client) -> None:
    r = _post(http, stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200, r.text
    chunks = _sse(r)
    *body, last = chunks
    assert all("usage" in c and c["usage"] is None for c in body), "every chunk says usage: null"
    assert last["choices"] == []
    assert last["usage"]["total_tokens"] > 0
    assert last["basis"] and "citations" in last


def test_include_usage_holds_for_structured_streams(http: httpx.Client) -> None:
    fmt = {"type": "json_object"}
    r = _post(http, stream=True, stream_options={"include_usage": True}, response_format=fmt)
    assert r.status_code == 200, r.text
    *body, last = _sse(r)
    assert all("usage" in c and c["usage"] is None for c in body), (
        "structured streams honour include_usage too (chat.py _structured_response chunks)"
    )
    assert last["choices"] == [] and last["usage"]["total_tokens"] > 0


def test_without_include_usage_only_the_final_chunk_has_usage(http: httpx.Client) -> None:
    r = _post(http, stream=True)
    chunks = _sse(r)
    *body, last = chunks
    assert all("usage" not in c for c in body)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    # The research metadata chunk always comes, and with it usage and the research counters.
    assert last["choices"] == []
    assert last["usage"]["num_search_queries"] >= 1
    assert last["basis"]


# --- Perplexity and Parallel clients ---------------------------------------------------------


def test_search_context_size_scales_pages_and_passages() -> None:
    speed = TIERS["speed"]

    def sized(size: Any) -> Any:
        opts = WebSearchOptions(search_context_size=size)
        return sized_tier(speed, ChatRequest(model="speed", messages=[], web_search_options=opts))

    assert sized(None) == speed and sized("medium") == speed
    low, high = sized("low"), sized("high")
    assert (low.max_pages, low.max_passages) == (2, 5)
    assert (high.max_pages, high.max_passages) == (6, 20)
    assert high.max_hits >= high.max_pages
    assert CONTEXT_SCALE["medium"] == (1.0, 1.0)


@pytest.fixture(scope="module")
def uncached(footnote_factory: Any) -> str:
    """A Footnote without the page cache, so every page read is counted."""
    return str(footnote_factory(cache_ttl_s=0.0))


def test_search_context_size_changes_what_is_read(uncached: str, upstream: FakeUpstream) -> None:
    def ask(size: str) -> tuple[int, int]:
        r = httpx.post(
            f"{uncached}/v1/chat/completions",
            json={
                "model": "speed",
                "messages": [USER],
                "web_search_options": {"search_context_size": size},
            },
            timeout=30,
        )
        assert r.status_code == 200, r.text
        sent = upstream.requests[-1]["body"]
        assert sent is not None
        prompt = sent["messages"][-1]["content"]
        return r.json()["usage"]["num_pages_fetched"], prompt.count("<<<source ")

    low, medium, high = ask("low"), ask("medium"), ask("high")
    assert low[0] <= 2 and low[1] <= 2
    assert low[0] < medium[0] <= 4 < high[0] <= 6


def test_perplexity_fields_are_accepted(http: httpx.Client) -> None:
    r = _post(
        http,
        search_domain_filter=["127.0.0.2"],
        search_recency_filter="year",
        return_images=True,
        return_related_questions=True,
        web_search_options={"search_context_size": "low", "user_location": {"country": "US"}},
        search_mode="web",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    # No images and no related questions are ever returned; citations and search_results are.
    assert "images" not in body and "related_questions" not in body
    assert set(body) >= {"citations", "search_results", "basis"}


def test_bare_chat_completions_route_for_parallel_style_base_url(http: httpx.Client) -> None:
    r = http.post("/chat/completions", json={"model": "base", "messages": [USER]})
    assert r.status_code == 200, r.text
    assert r.json()["basis"][0]["field"] == "content"


# --- the schema check itself -----------------------------------------------------------------


def test_schema_tap_checks_what_the_tests_see(http: httpx.Client, schema_log: SchemaLog) -> None:
    before = dict(schema_log.seen)
    _post(http)
    _post(http, stream=True)
    _post(http, temperature=9)
    assert schema_log.seen["completion"] == before.get("completion", 0) + 1
    assert schema_log.seen["stream"] == before.get("stream", 0) + 1
    assert schema_log.seen["chunk"] >= before.get("chunk", 0) + 3
    assert schema_log.seen["error"] == before.get("error", 0) + 1


@pytest.mark.parametrize(
    ("path", "status", "body", "problem"),
    [
        ("/v1/chat/completions", 400, {"error": {"message": "x", "type": "t"}}, "'param'"),
        ("/v1/chat/completions", 500, {"detail": "boom"}, "'error' is a required"),
        (
            "/v1/chat/completions",
            200,
            {"id": "c", "created": 1, "model": "m", "choices": []},
            "'object'",
        ),
        (
            "/v1/chat/completions",
            200,
            {
                "id": "c",
                "created": 1,
                "model": "m",
                "object": "chat.completion",
                "choices": [{"index": 0, "finish_reason": "done", "logprobs": None}],
            },
            "'message'",
        ),
    ],
)
def test_schema_log_rejects_what_openai_would_not_send(
    path: str, status: int, body: dict[str, Any], problem: str
) -> None:
    log = SchemaLog()
    log.check(path, status, "application/json", json.dumps(body).encode())
    assert any(problem in p for p in log.problems), log.problems


def test_schema_log_rejects_a_broken_stream() -> None:
    log = SchemaLog()
    chunk = {"id": "c", "created": 1, "model": "m", "choices": []}
    log.check(
        "/v1/chat/completions",
        200,
        "text/event-stream",
        f"data: {json.dumps(chunk)}\n\n".encode(),
    )
    assert any("[DONE]" in p for p in log.problems)
    assert any("'object' is a required property" in p for p in log.problems)


def test_a_long_pasted_question_is_answered_not_a_server_error(
    http: httpx.Client, searxng: FakeSearxng
) -> None:
    # A question with a pasted document in front of it: far beyond any search engine's query
    # length, and most of a megabyte of words the answer engine must not choke on.
    pasted = " ".join(f"Word{i} and Other{i}." for i in range(20_000))
    question = f"{pasted} Were Scott Derrickson and Ed Wood of the same nationality?"
    searxng.reset()
    r = _post(http, messages=[{"role": "user", "content": question}])
    assert r.status_code == 200, r.text[:300]
    assert r.json()["choices"][0]["message"]["content"]
    # Every query sent to the search engine is of a sane length.
    assert searxng.queries and all(len(q["q"]) <= 400 for q in searxng.queries)
