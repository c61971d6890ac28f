"""``GET /metrics``: Prometheus text with request, stage, page, cache, token and error metrics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.obs.metrics import ENV_DIR, multiprocess_dir
from tests.fakes.footnote_server import StartFootnote

QUESTION = {"model": "speed", "messages": [{"role": "user", "content": "Who directed Ed Wood?"}]}
CHAT = "/v1/chat/completions"


def scrape(c: httpx.Client, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics``, keyed by name and labels (parsing checks the format)."""
    resp = c.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def base(footnote_factory: StartFootnote) -> str:
    """A Footnote of its own (the counters start at zero) with a page cache."""
    return footnote_factory(extract_workers=0, cache_ttl_s=600.0)


def test_a_chat_request_is_measured_stage_by_stage(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as c:
        first = c.post(CHAT, json=QUESTION)
        again = c.post(CHAT, json=QUESTION)
        m = scrape(c)
    assert first.status_code == again.status_code == 200
    usage = [first.json()["usage"], again.json()["usage"]]
    route = {"route": CHAT}
    assert value(m, "footnote_http_requests_total", method="POST", status="200", **route) == 2
    assert value(m, "footnote_http_request_duration_seconds_count", method="POST", **route) == 2
    assert value(m, "footnote_answers_total", tier="speed") == 2
    for stage in ("search", "fetch_extract", "rank", "upstream"):
        assert value(m, "footnote_stage_duration_seconds_count", stage=stage) == 2, stage
    fetched = sum(u["num_pages_fetched"] for u in usage)
    assert fetched > 0
    assert value(m, "footnote_pages_total", outcome="fetched") == fetched
    assert value(m, "footnote_search_queries_total") == sum(u["num_search_queries"] for u in usage)
    prompt = sum(u["prompt_tokens"] for u in usage)
    completion = sum(u["completion_tokens"] for u in usage)
    assert prompt > 0 and completion > 0
    assert value(m, "footnote_upstream_tokens_total", kind="prompt") == prompt
    assert value(m, "footnote_upstream_tokens_total", kind="completion") == completion
    # The first request read every page; the second found them in the cache.
    assert value(m, "footnote_page_cache_total", result="miss") >= usage[0]["num_pages_fetched"]
    assert value(m, "footnote_page_cache_total", result="hit") >= usage[1]["num_pages_fetched"] > 0


def test_a_stream_is_measured_once_it_ends(footnote_factory: StartFootnote) -> None:
    base = footnote_factory(extract_workers=0)
    with httpx.Client(base_url=base, timeout=30) as c:
        body = c.post(CHAT, json={**QUESTION, "stream": True}).text
        m = scrape(c)
    assert body.rstrip().endswith("data: [DONE]")
    assert value(m, "footnote_http_requests_total", route=CHAT, method="POST", status="200") == 1
    assert value(m, "footnote_upstream_tokens_total", kind="completion") > 0
    assert value(m, "footnote_stage_duration_seconds_count", stage="search") == 1


def test_errors_are_counted_by_type_and_code(base: str) -> None:
    with httpx.Client(base_url=base, timeout=30) as c:
        before = scrape(c)
        c.post(CHAT, json={**QUESTION, "model": "no-such-model"})
        c.get("/no/such/page")
        c.post(CHAT, content=b"{")
        after = scrape(c)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    errors = "footnote_errors_total"
    assert grew(errors, type="invalid_request_error", code="model_not_found") == 1
    assert grew(errors, type="invalid_request_error", code="not_found") == 1
    assert grew(errors, type="invalid_request_error", code="invalid_json") == 1
    # Unknown paths share one label value: a scanner cannot blow up the series count.
    assert grew("footnote_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert grew("footnote_http_requests_total", route=CHAT, method="POST", status="404") == 1


@pytest.mark.parametrize(
    ("setting", "without_key", "with_key"),
    [("on", 401, 200), ("public", 200, 200), ("off", 404, 404)],
)
def test_access_follows_the_setting(
    footnote_factory: StartFootnote, setting: str, without_key: int, with_key: int
) -> None:
    base = footnote_factory(api_keys=("k-metrics",), metrics=setting, extract_workers=0)
    auth = {"authorization": "Bearer k-metrics"}
    with httpx.Client(base_url=base, timeout=30) as c:
        anonymous = c.get("/metrics")
        keyed = c.get("/metrics", headers=auth)
        documented = "/metrics" in c.get("/openapi/openapi.json", headers=auth).json()["paths"]
    assert (anonymous.status_code, keyed.status_code) == (without_key, with_key)
    assert anonymous.headers["x-request-id"]
    assert documented == (setting != "off")


CHILD = """
import sys
from app.obs.context import RequestRecord
from app.obs.metrics import Metrics
metrics = Metrics()
assert metrics.multiprocess
if sys.argv[1] == "record":
    record = RequestRecord(request_id="r", tier="speed", stages_ms={"search": 5.0},
        searches=1, pages_fetched=3, pages_failed=1, cache_hits=0, cache_misses=4,
        prompt_tokens=100, completion_tokens=20)
    metrics.observe(record, route="/v1/chat/completions", method="POST", status=200, seconds=0.5)
else:
    sys.stdout.write(metrics.render().decode())
"""


def test_worker_processes_add_up(tmp_path: Path) -> None:
    env = {**os.environ, ENV_DIR: str(tmp_path)}

    def child(mode: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, mode],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    child("record")
    child("record")  # a second process: its own sample files
    text = child("render")  # a third process sees both
    samples: dict[str, Any] = {
        s.name + str(sorted(s.labels.items())): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    key = "footnote_http_requests_total" + str(
        sorted({"route": "/v1/chat/completions", "method": "POST", "status": "200"}.items())
    )
    assert samples[key] == 2
    assert samples["footnote_pages_total" + str([("outcome", "fetched")])] == 6
    assert samples["footnote_upstream_tokens_total" + str([("kind", "prompt")])] == 200


def test_multiprocess_dir_lifecycle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_DIR, raising=False)
    with multiprocess_dir(1) as path:
        assert path is None and ENV_DIR not in os.environ
    with multiprocess_dir(3) as path:
        assert path is not None and os.environ[ENV_DIR] == path and Path(path).is_dir()
    assert ENV_DIR not in os.environ and not Path(path).exists()
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    with multiprocess_dir(3) as path:
        assert path == str(tmp_path)
    assert tmp_path.is_dir() and os.environ[ENV_DIR] == str(tmp_path)
