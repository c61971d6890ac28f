"""Over many answers, every excerpt is verbatim fetched text and every citation a fetched page.

Forty dev questions (HotpotQA and SQuAD, answerable or not), each answered through the
running server by the fake upstream with its markers deliberately shifted on every other
question (so correction is exercised), streamed and not. Each cited page is re-extracted
from what the simulated web serves and each excerpt must be a substring of that text.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import httpx

from tests.contract.test_openai_sdk import _fetched_text
from tests.fakes.simweb import Question, load_questions
from tests.fakes.upstream import FakeUpstream, compose_answer, message_text, parse_prompt

COUNT = 40


def _sample() -> list[Question]:
    dev = [q for q in load_questions() if q.get("side", "dev") == "dev"]
    hotpot = [q for q in dev if q["source"] == "hotpotqa"][: COUNT // 2]
    squad = [q for q in dev if q["source"] == "squad2"][: COUNT // 2]
    return hotpot + squad


def _shifted(body: dict[str, Any]) -> str:
    """The fake's honest answer with every marker pointing at the next source instead."""
    users = [m for m in body["messages"] if m["role"] == "user"]
    question, sources = parse_prompt(message_text(users[-1]["content"]))
    answer = compose_answer(question, sources)
    top = max(len(sources), 1)
    return re.sub(r"\[(\d+)\]", lambda m: f"[{int(m.group(1)) % top + 1}]", answer)


def test_every_excerpt_is_verbatim_over_many_answers(
    footnote: str, simweb: Any, upstream: FakeUpstream
) -> None:
    @cache
    def fetched_text(url: str) -> str:
        return _fetched_text(simweb, url)

    excerpts = answers = 0
    with httpx.Client(timeout=60) as http:
        for i, question in enumerate(_sample()):
            upstream.script = _shifted if i % 2 else None
            stream = i % 4 == 3
            payload = {
                "model": "speed",
                "stream": stream,
                "messages": [{"role": "user", "content": question["question"]}],
            }
            resp = http.post(f"{footnote}/v1/chat/completions", json=payload)
            assert resp.status_code == 200, resp.text
            if stream:
                events = [
                    json.loads(line[6:])
                    for line in resp.text.splitlines()
                    if line.startswith("data: {")
                ]
                data = events[-1]
            else:
                data = resp.json()
            answers += 1
            fetched = set(data["citations"])
            for entry in data["basis"]:
                for citation in entry["citations"]:
                    assert citation["url"] in fetched, "0 citations of pages not fetched"
                    text = fetched_text(citation["url"])
                    for excerpt in citation["excerpts"]:
                        excerpts += 1
                        assert excerpt in text, (question["id"], citation["url"], excerpt)
    assert answers == COUNT
    assert excerpts >= COUNT, "most answers cite something"
