"""The playground in headless Chromium, against the real app wired to the loopback fakes.

Debian's ``/usr/bin/chromium`` driven by Playwright's sync API (never ``playwright install``).
Every request the page makes is routed through a handler that lets 127.0.0.0/8 through and
blocks (and records) anything else; each test asserts none was attempted. Screenshots go to
``tests/artifacts/`` (gitignored).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

from app.tiers import TIERS
from tests.fakes.footnote_server import StartFootnote
from tests.fakes.searxng import FakeSearxng
from tests.fakes.simweb import SimulatedWeb
from tests.fakes.upstream import FakeUpstream

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
QUESTION = "Were Scott Derrickson and Ed Wood of the same nationality?"
KEY = "playground-browser-key"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@dataclass
class Watch:
    """What the page did: console errors, uncaught exceptions, requests allowed and blocked."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """No console error, no uncaught exception, no request off loopback."""
        assert self.blocked == []
        assert self.page_errors == []
        assert self.console_errors == []


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host) in LOOPBACK
    except ValueError:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module (about a second to start)."""
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        yield chromium
        chromium.close()


@pytest.fixture
def watched(browser: Browser) -> Iterator[tuple[Page, Watch]]:
    """A fresh page (own storage) whose requests may only go to 127.0.0.0/8."""
    context = browser.new_context(viewport={"width": 1100, "height": 900}, service_workers="block")
    watch = Watch()

    def route(r: Route) -> None:
        url = r.request.url
        if _is_loopback(url):
            watch.requests.append(url)
            r.continue_()
        else:
            watch.blocked.append(url)
            r.abort()

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watch.console_errors.append(message.text)

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("console", console)
    page.on("pageerror", lambda exc: watch.page_errors.append(str(exc)))
    yield page, watch
    context.close()


def _final_chunk(sse_body: bytes) -> dict[str, Any]:
    """The research metadata chunk (``choices: []``) of a recorded event stream."""
    for block in sse_body.decode().split("\n\n"):
        data = block.removeprefix("data: ")
        if block.startswith("data: {"):
            chunk = json.loads(data)
            if chunk.get("choices") == [] and "basis" in chunk:
                return dict(chunk)
    raise AssertionError("no final chunk in the stream")


def _wait_state(page: Page, *states: str) -> str:
    handle = page.wait_for_function(
        "(states) => states.includes(document.getElementById('app').dataset.state)"
        " && document.getElementById('app').dataset.state",
        arg=list(states),
    )
    return str(handle.json_value())


def _tiers(page: Page) -> list[str]:
    page.locator("#tier[data-loaded]").wait_for(state="attached")
    return page.locator("#tier option").all_text_contents()


def _ask(page: Page, question: str, tier: str = "speed") -> None:
    page.select_option("#tier", tier)
    page.fill("#question", question)
    page.click("#submit")


def test_question_streams_in_with_footnotes_basis_and_sources(
    footnote: str, upstream: FakeUpstream, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    upstream.inter_chunk_delay_s = 0.04  # slow enough to watch the text grow
    page.goto(footnote + "/")
    assert _tiers(page) == list(TIERS)

    with page.expect_response("**/v1/chat/completions") as answered:
        _ask(page, QUESTION)
        # Part of the answer is on screen while the stream is still open.
        partial = str(
            page.wait_for_function(
                "() => { const a = document.getElementById('answer');"
                " return document.getElementById('app').dataset.state === 'streaming'"
                " && a.textContent.length > 0 && a.textContent; }"
            ).json_value()
        )
    assert _wait_state(page, "done", "error") == "done"
    full = page.locator("#answer").text_content() or ""
    assert 0 < len(partial) < len(full)
    assert full.startswith(partial.rstrip()[:20])

    final = _final_chunk(answered.value.body())
    results = final["search_results"]
    basis = final["basis"][0]

    # Footnotes are links to the listed sources.
    links = page.locator("#answer sup.fn a")
    assert links.count() >= 1
    for i in range(links.count()):
        number = links.nth(i).get_attribute("data-n")
        assert links.nth(i).get_attribute("href") == f"#src-{number}"

    # Hovering one shows its source and a verbatim excerpt from the basis.
    first = links.first
    n = int(first.get_attribute("data-n") or 0)
    source = results[n - 1]
    first.hover()
    popover = page.locator("#popover")
    popover.wait_for(state="visible")
    assert popover.locator(".pop-title").text_content() == source["title"]
    shown = popover.locator("blockquote.excerpt").first.text_content() or ""
    quoted = [x for c in basis["citations"] if c["url"] == source["url"] for x in c["excerpts"]]
    assert shown and any(shown in x for x in quoted), (shown, quoted)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-footnote.png"))
    page.screenshot(path=str(ARTIFACTS / "playground-answer.png"), full_page=True)

    # Confidence and reasoning of the field.
    field_box = page.locator(".basis-field").first
    assert field_box.locator(".confidence").text_content() == f"{basis['confidence']} confidence"
    assert field_box.locator(".reasoning").text_content() == basis["reasoning"]

    # Every source is listed, the cited ones marked.
    items = page.locator("#sources li.source")
    assert items.count() == len(results)
    assert items.locator(".title a").all_text_contents() == [r["title"] for r in results]
    cited = {c["url"] for c in basis["citations"]}
    assert page.locator("#sources .badge.cited").count() == len(cited)

    # A click jumps to the source in the list.
    page.mouse.move(0, 0)
    first.click()
    assert page.url.endswith(f"#src-{n}")
    assert page.locator(f"#src-{n}").is_visible()
    watch.assert_clean()


def test_offline_extractive_default_on_a_narrow_screen(
    footnote_factory: StartFootnote, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    base = footnote_factory(with_upstream=False, search_provider="bundled")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(base + "/")
    assert _tiers(page) == list(TIERS)
    _ask(page, "Who is Ernest Cline?")
    assert _wait_state(page, "done", "error") == "done"
    assert page.locator("#answer sup.fn a").count() >= 1
    assert page.locator("#sources li.source").count() >= 1
    assert page.locator(".basis-field .confidence").count() == 1
    # Nothing is wider than the screen.
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-narrow.png"), full_page=True)
    watch.assert_clean()


def test_bad_key_is_shown_and_a_good_one_is_remembered(
    footnote_factory: StartFootnote, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    base = footnote_factory(with_upstream=False, api_keys=(KEY,))
    page.goto(base + "/")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "401" in (error.text_content() or "")
    assert page.locator("#key-box").get_attribute("open") is not None

    page.fill("#api-key", "wrong-key")
    page.fill("#question", QUESTION)
    page.click("#submit")
    assert _wait_state(page, "error") == "error"
    text = error.text_content() or ""
    assert "Missing or invalid API key" in text and "invalid_api_key" in text
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-error.png"))

    page.fill("#api-key", KEY)
    page.locator("#api-key").dispatch_event("change")
    assert _tiers(page) == list(TIERS)
    assert error.is_hidden()
    page.reload()
    assert page.locator("#api-key").input_value() == KEY  # kept in localStorage
    _ask(page, QUESTION)
    assert _wait_state(page, "done", "error") == "done"  # the key went with the question
    assert page.locator("#error").is_hidden()
    assert page.locator("#answer").text_content()
    # The only console errors are Chromium's own notes about the 401 responses.
    assert watch.console_errors and all("401" in e for e in watch.console_errors)
    assert watch.blocked == [] and watch.page_errors == []


def test_stream_error_midway_is_shown(
    footnote: str, upstream: FakeUpstream, watched: tuple[Page, Watch]
) -> None:
    page, watch = watched
    upstream.break_stream_after = 2  # the upstream hangs up after two chunks
    page.goto(footnote + "/")
    _tiers(page)
    _ask(page, QUESTION)
    assert _wait_state(page, "done", "error") == "error"
    error = page.locator("#error")
    assert error.is_visible()
    assert "The answer stopped" in (error.text_content() or "")
    assert "upstream" in (error.text_content() or "").lower()
    watch.assert_clean()


def test_hostile_source_text_is_rendered_as_text(
    footnote: str,
    simweb: SimulatedWeb,
    searxng: FakeSearxng,
    watched: tuple[Page, Watch],
) -> None:
    page, watch = watched
    payload = '<img src="/pwned.png" onerror="window.__pwned=1">'
    escaped = payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    html = (
        f"<html><head><title>{escaped} Scott Derrickson nationality</title></head><body>"
        "<article><h1>Scott Derrickson</h1>"
        f"<p>Scott Derrickson {escaped} is an American director, and Ed Wood was an American "
        "filmmaker of the same nationality as Scott Derrickson.</p>"
        "<p>Both were born in the United States, so they share the American nationality.</p>"
        "</article></body></html>"
    )
    url = simweb.add_page(6, "/hostile", html.encode())
    searxng.inject_results = [
        {
            "url": url,
            "title": f"{payload} Scott Derrickson",
            "content": "Scott Derrickson Ed Wood nationality",
            "publishedDate": None,
            "engine": "fake",
            "engines": ["fake"],
            "positions": [1],
            "category": "general",
            "score": 1.0,
        }
    ]
    page.goto(footnote + "/")
    _tiers(page)
    _ask(page, QUESTION, tier="lite")
    assert _wait_state(page, "done", "error") == "done"

    sources = page.locator("#sources").text_content() or ""
    assert payload in sources  # shown literally
    assert page.locator("#result img").count() == 0
    assert page.evaluate("() => window.__pwned === undefined")
    assert not any("pwned" in u for u in watch.requests)
    n = next(
        i + 1
        for i, t in enumerate(page.locator("#sources li.source .title a").all_text_contents())
        if payload in t
    )
    hostile = page.locator(f'#answer sup.fn a[data-n="{n}"]')
    assert hostile.count() >= 1  # the hostile page is cited, so its excerpt is shown too
    hostile.first.hover()
    page.locator("#popover").wait_for(state="visible")
    assert payload in (page.locator("#popover").text_content() or "")
    assert page.locator("#popover img").count() == 0
    watch.assert_clean()


def test_untrusted_urls_never_become_links(footnote: str, watched: tuple[Page, Watch]) -> None:
    """A crafted stream (answered by the browser's router) with non-http(s) source URLs."""
    page, watch = watched
    bad = [
        "javascript:window.__pwned=1",
        "data:text/html,<script>1</script>",
        "http://127.0.0.1/ok",
    ]
    title = "<b onmouseover=window.__pwned=1>bold</b>"
    base = {"id": "chatcmpl-x", "created": 0, "model": "speed", "object": "chat.completion.chunk"}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "Claim one [1][2]. Two [3]."}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {
            **base,
            "choices": [],
            "citations": bad,
            "search_results": [
                {"title": title, "url": u, "date": None, "snippet": title} for u in bad
            ],
            "basis": [
                {
                    "field": "content",
                    "citations": [{"url": u, "title": title, "excerpts": [title]} for u in bad],
                    "reasoning": title,
                    "confidence": "high",
                }
            ],
        },
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    page.route(
        "**/v1/chat/completions",
        lambda r: r.fulfill(status=200, content_type="text/event-stream", body=body),
    )
    page.goto(footnote + "/")
    _tiers(page)
    _ask(page, "anything")
    assert _wait_state(page, "done", "error") == "done"
    hrefs = page.eval_on_selector_all("#result a[href]", "as => as.map(a => a.href)")
    assert hrefs and all(h.startswith(("http://", "https://", footnote)) for h in hrefs), hrefs
    assert sum(h == "http://127.0.0.1/ok" for h in hrefs) >= 2  # the http one is a link
    assert title in (page.locator("#sources").text_content() or "")
    assert page.locator("#result b").count() == 0
    page.locator('#answer sup.fn a[data-n="1"]').hover()
    assert title in (page.locator("#popover").text_content() or "")
    assert page.locator("#popover a").count() == 0  # javascript: URL shown as text only
    assert page.evaluate("() => window.__pwned === undefined")
    watch.assert_clean()
