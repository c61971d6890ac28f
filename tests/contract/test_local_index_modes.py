"""The local index through the running app and the official openai SDK.

Mixed mode (``FOOTNOTE_SEARCH_PROVIDER=searxng,local``): the fake SearXNG + simulated web
and an index of private files on disk are searched together; the basis and the search
results say which sources are internal. The index's documents carry URLs under
``https://kb.invalid/``, a name that never resolves: had Footnote tried to fetch them over
HTTP they could not have been read, so reading them proves they came from the index.
Then the offline default: nothing configured, the index at the XDG default path is seeded
with the bundled corpus at start-up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from retrieval.index import ingest
from tests.fakes.footnote_server import StartFootnote

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "webcorpus"
KB = "https://kb.invalid/handbook"


def _hotpot_question() -> dict[str, Any]:
    with (CORPUS / "questions.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            q = json.loads(line)
            if q["source"] == "hotpotqa" and q["answerable"]:
                return dict(q)
    raise AssertionError("no hotpotqa question in the corpus")


QUESTION = _hotpot_question()


@pytest.fixture(scope="module")
def mixed(footnote_factory: StartFootnote, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Footnote with SearXNG and a local index of two private notes, searched together."""
    root = tmp_path_factory.mktemp("kb")
    # A private note on the question's own subject, so both sides have something to say.
    (root / "briefing.md").write_text(
        f"# Internal briefing\n\nOur team's notes on this question: {QUESTION['question']} "
        f"The answer we recorded is {QUESTION['answers'][0]}.\n",
        encoding="utf-8",
    )
    (root / "other.txt").write_text("Parking\n\nThe car park closes at nine.", encoding="utf-8")
    index = root.parent / "kb.sqlite3"
    assert ingest([root], index, base_url=KB, workers=1).added == 2
    return footnote_factory(search_provider="searxng,local", index_path=str(index))


def _ask(base: str, **extra: Any) -> dict[str, Any]:
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    resp = client.chat.completions.create(
        model="base",
        messages=[{"role": "user", "content": QUESTION["question"]}],
        extra_body=extra or None,
    )
    out = resp.model_extra or {}
    out["content"] = resp.choices[0].message.content
    return out


def _internal_flags(extra: dict[str, Any]) -> list[tuple[str, bool]]:
    return [(r["url"], r["internal"]) for r in extra["search_results"]]


def test_mixed_mode_reads_the_index_and_the_web_together(mixed: str) -> None:
    extra = _ask(mixed)  # the configured default: mixed
    flags = _internal_flags(extra)
    internal = [url for url, flag in flags if flag]
    web = [url for url, flag in flags if not flag]
    assert internal == [f"{KB}/briefing.md"], "the private note was read, in-process"
    assert web and all(url.startswith("http://127.0.0.") for url in web)
    cited = [c for entry in extra["basis"] for c in entry["citations"]]
    assert cited
    for citation in cited:
        assert citation["internal"] is citation["url"].startswith(KB)
    assert set(extra["search_results"][0]) == {"title", "url", "date", "snippet", "internal"}


def test_request_search_mode_picks_a_side(mixed: str) -> None:
    local = _ask(mixed, search_mode="local")
    assert local["search_results"]
    assert all(flag for _, flag in _internal_flags(local))
    citations = [c for entry in local["basis"] for c in entry["citations"]]
    assert citations and all(c["internal"] for c in citations)
    web = _ask(mixed, search_mode="web")
    assert web["search_results"]
    assert not any(flag for _, flag in _internal_flags(web))
    both = _ask(mixed, search_mode="mixed")
    assert {flag for _, flag in _internal_flags(both)} == {True, False}


def test_mixed_stream_carries_the_internal_flag(mixed: str) -> None:
    client = openai.OpenAI(base_url=f"{mixed}/v1", api_key="unused", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="base",
            messages=[{"role": "user", "content": QUESTION["question"]}],
            stream=True,
            extra_body={"search_mode": "local"},
        )
    )
    final = chunks[-1].model_extra or {}
    assert [r["internal"] for r in final["search_results"]] == [True]
    assert all(c["internal"] for b in final["basis"] for c in b["citations"])


@pytest.mark.parametrize(
    ("mode", "message"),
    [("intranet", "must be one of 'web', 'local' or 'mixed'"), ("", "must be one of")],
)
def test_bad_search_mode_is_a_400(mixed: str, mode: str, message: str) -> None:
    client = openai.OpenAI(base_url=f"{mixed}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="base",
            messages=[{"role": "user", "content": "hello"}],
            extra_body={"search_mode": mode},
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == "search_mode" and message in error["message"]


def test_a_side_not_configured_is_a_400(footnote: str) -> None:
    client = openai.OpenAI(base_url=f"{footnote}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="needs the local index") as caught:
        client.chat.completions.create(
            model="base",
            messages=[{"role": "user", "content": "hello"}],
            extra_body={"search_mode": "local"},
        )
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "search_mode"


def test_offline_default_seeds_the_index_from_the_bundled_corpus(
    footnote_factory: StartFootnote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    # What `make run` gets with nothing configured: the defaults, no upstream.
    base = footnote_factory(with_upstream=False, search_provider="local", fetch_allow_private=())
    assert (tmp_path / "footnote" / "index.sqlite3").is_file()
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    resp = client.chat.completions.create(
        model="base",
        messages=[{"role": "user", "content": "What kind of band is Collective Soul?"}],
    )
    extra = resp.model_extra or {}
    assert extra["search_results"] and all(r["internal"] for r in extra["search_results"])
    # Links are built on the configured address (port 8000 by default; this test server
    # listens on another port, so they are opened below on the port it really has).
    configured = "http://127.0.0.1:8000"
    assert all(url.startswith(f"{configured}/corpus/") for url in extra["citations"])
    cited = extra["basis"][0]["citations"]
    assert cited and all(c["internal"] for c in cited)
    # Its citations are links that open: the server serves the bundled pages.
    page = httpx.get(base + cited[0]["url"].removeprefix(configured), timeout=5)
    assert page.status_code == 200 and "<html" in page.text.lower()
