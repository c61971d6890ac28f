"""Fuzz the whole HTTP surface from its own OpenAPI document with schemathesis.

A real Footnote (uvicorn on loopback, fake SearXNG and fake upstream behind it) is loaded
from ``/openapi/openapi.json``; every operation gets schema-valid cases, and the chat
operation also schema-violating ones. Hypothesis runs derandomized (the same cases every
run) and bounded.
Every response must be: not a 5xx; when 4xx, an OpenAI error object; and, where the schema
declares the response, conforming to it. Problems are collected, not raised one by one, so
one run reports all of them with the case that caused each.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.fakes.footnote_server import StartFootnote

# Examples per operation and generation mode: enough to reach every branch of the request
# checks many times over, small enough for ~20 s on two cores. FUZZ_EXAMPLES=500 digs deeper
# (by hand; the suite keeps the default).
CHAT_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
OTHER_EXAMPLES = 15
# Tiers a fuzzed chat request is switched to half of the time, so that schema-valid bodies
# also run research and writing instead of stopping at "unknown model".
TIERS = (None, "speed")


def openai_error_problem(body: Any) -> str | None:
    """Why ``body`` is not ``{"error": {message, type, param, code}}``, or ``None``."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "no error object"
    if set(error) != {"message", "type", "param", "code"}:
        return f"error keys {sorted(error)}"
    if not isinstance(error["message"], str) or not isinstance(error["type"], str):
        return "message/type not strings"
    if not all(error[k] is None or isinstance(error[k], str) for k in ("param", "code")):
        return "param/code neither string nor null"
    return None


@pytest.fixture(scope="module")
def base_url(footnote_factory: StartFootnote) -> str:
    """A Footnote with the usual fakes, an API key switched off, metrics public."""
    return footnote_factory(metrics="public", extract_workers=0, ready_timeout_s=1.0)


def test_fuzz_every_operation(base_url: str) -> None:
    """No 5xx, OpenAI-shaped 4xx and schema-conforming responses for every fuzzed case."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi/openapi.json")
    statuses: Counter[int] = Counter()
    examples: Counter[str] = Counter()
    problems: list[str] = []
    seconds: dict[str, float] = {}

    def check(label: str, case: Any) -> None:
        response = case.call(base_url=base_url, timeout=30)
        examples[label] += 1
        statuses[response.status_code] += 1
        what = (
            f"{case.method} {case.formatted_path} body={json.dumps(case.body, default=repr)[:300]}"
        )
        if response.status_code >= 500:
            problems.append(f"{response.status_code} for {what}: {response.text[:300]}")
            return
        if 400 <= response.status_code < 500:
            try:
                body = response.json()
            except ValueError:
                body = None
            why = openai_error_problem(body)
            if why:
                problems.append(f"{response.status_code} not OpenAI-shaped ({why}) for {what}")
        if not response.headers.get("x-request-id"):
            problems.append(f"no x-request-id for {what}")
        try:
            case.validate_response(response, checks=[response_schema_conformance])
        except AssertionError as exc:  # schemathesis raises its failures as AssertionError
            problems.append(f"schema violation for {what}: {str(exc)[:500]}")

    def run(operation: Any, mode: GenerationMode, max_examples: int) -> None:
        label = f"{operation.method.upper()} {operation.path} {mode.value}"

        @settings(
            max_examples=max_examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(mode), tier=st.sampled_from(TIERS))
        def fuzz(case: Any, tier: str | None) -> None:
            if tier is not None and isinstance(case.body, dict) and "model" in case.body:
                case.body["model"] = tier
            check(label, case)

        t0 = time.perf_counter()
        fuzz()
        seconds[label] = round(time.perf_counter() - t0, 1)

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself must be valid
        operation = result.ok()
        is_chat = operation.path == "/v1/chat/completions"
        if operation.path in ("/chat/completions", "/v1beta/chat/completions"):
            continue  # aliases of /v1/chat/completions: the same handler
        modes = [GenerationMode.POSITIVE]
        if is_chat:
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            run(operation, mode, CHAT_EXAMPLES if is_chat else OTHER_EXAMPLES)

    total = sum(examples.values())
    print(f"\nfuzzed {total} cases: {dict(examples)}; statuses {dict(sorted(statuses.items()))}")
    print(f"seconds per operation and mode: {seconds}")
    assert examples[f"POST /v1/chat/completions {GenerationMode.POSITIVE.value}"] >= 40
    assert statuses[200] > 0 and any(400 <= s < 500 for s in statuses)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])
