"""The local index: ingestion of real files into real SQLite, FTS5 search, fetch, routing."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import anyio
import pytest

from retrieval.dispatch import AnyExtractor
from retrieval.errors import FetchError, SearchUnavailable
from retrieval.extract import TrafilaturaExtractor
from retrieval.index import (
    INDEX_CONTENT_TYPE,
    IndexedExtractor,
    LocalIndex,
    MixedProvider,
    NotAnIndex,
    RoutingFetcher,
    default_index_path,
    ingest,
    seed_bundled,
)
from retrieval.index.markdown import markdown_to_text
from retrieval.index.mixed import interleave
from retrieval.index.query import MAX_TERMS, match_expression, query_terms
from retrieval.net.decoding import ACCEPTED_TYPES
from retrieval.search.bundled import CorpusPage
from retrieval.types import Page, SearchHit
from tests.unit.test_pdf import make_pdf

HTML = b"""<!doctype html><html><head><title>Quarterly Heron Survey</title>
<link rel="canonical" href="https://intranet.example/reports/herons">
<meta name="date" content="2024-03-05"></head><body><nav>Home | About</nav>
<article><h1>Quarterly Heron Survey</h1>
<p>The survey counted two hundred and twelve grey herons along the northern marshes this
quarter, more than in any quarter since the programme began.</p>
<p>Volunteers walked every transect twice, at dawn and at dusk, with the same binoculars.</p>
</article><footer>Copyright</footer></body></html>"""

MARKDOWN = """---
title: Front Matter Title
---
# Onboarding *Guide*

Welcome to the **platypus** team. Read the [style guide](https://example.org/style) first.

- Install the `toolchain` with make.
- Ask in the channel.

![diagram of the build](build.png)

```sh
make bootstrap
```

| Step | Owner |
|------|-------|
| Review | Alice |
"""

TEXT = """Release checklist

Tag the release, then publish the wheel
to the internal package mirror.

Announce the release on the mailing list.
"""

PDF_LINES = (
    "Zeppelin maintenance manual",
    "",
    "Inspect the gas cells of the zeppelin every forty flight hours and record the",
    "pressure of each cell in the maintenance log before the next flight.",
)


def write_docs(root: Path) -> dict[str, Path]:
    """One file of each kind (and files the index ignores) under ``root``."""
    (root / "reports").mkdir(parents=True)
    (root / "notes").mkdir()
    (root / ".git").mkdir()
    files = {
        "html": root / "reports" / "herons.html",
        "md": root / "notes" / "onboarding guide.md",
        "txt": root / "notes" / "release.txt",
        "pdf": root / "manual.pdf",
    }
    files["html"].write_bytes(HTML)
    files["md"].write_text(MARKDOWN, encoding="utf-8")
    files["txt"].write_text(TEXT, encoding="utf-8")
    files["pdf"].write_bytes(make_pdf([PDF_LINES]))
    (root / "image.png").write_bytes(b"\x89PNG not a document")
    (root / ".git" / "secret.txt").write_text("hidden folder: never indexed", encoding="utf-8")
    (root / "notes" / ".draft.md").write_text("# hidden file", encoding="utf-8")
    return files


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    write_docs(root)
    return root


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    return tmp_path / "index" / "footnote.sqlite3"


def rows(path: Path) -> dict[str, tuple[str, str, str]]:
    """``source -> (url, title, body)`` of every document in the index file."""
    with sqlite3.connect(path) as conn:
        return {
            s: (u, t, b)
            for s, u, t, b in conn.execute("SELECT source, url, title, body FROM documents")
        }


# --- query building --------------------------------------------------------------------------

HOSTILE = [
    "AND",
    "OR NOT",
    'he said "hello',
    '"""',
    "*",
    "foo*",
    "NEAR(heron survey, 2)",
    "NEAR(",
    "title: herons",
    "body:herons OR title:x",
    "^heron",
    "(((",
    "heron) OR (1=1",
    "'; DROP TABLE documents; --",
    "-heron +survey",
    "\u00e9l\u00e8ve \u6771\u4eac \u0645\u0631\u062d\u0628\u0627 \U0001f600",
    "\x00\x01 nul bytes",
    "a" * 5000,
    " ".join(f"word{i}" for i in range(500)),
]


def test_query_terms_are_quoted_literals_only() -> None:
    assert match_expression("Who counted the herons, and when?") == '"counted" OR "herons"'
    assert match_expression("AND OR NOT the") is None
    assert match_expression("") is None
    assert query_terms("NEAR(heron* survey)") == ["near", "heron", "survey"]
    assert query_terms("\u00c9l\u00e8ve \u00e9l\u00e8ve") == ["eleve"]
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) == MAX_TERMS


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_break_the_search(docs: Path, index_path: Path, query: str) -> None:
    ingest([docs], index_path, workers=1)
    index = LocalIndex(index_path)
    try:
        hits = index.search_sync(query, limit=5)
        assert all(h.internal and h.engine == "local" for h in hits)
        assert index.count() == 4, "the query left the index as it was"
    finally:
        index.close()


def test_operator_words_are_searched_as_words(tmp_path: Path, index_path: Path) -> None:
    root = tmp_path / "ops"
    root.mkdir()
    (root / "near.txt").write_text("Near field\n\nThe near field of the antenna.", encoding="utf-8")
    (root / "other.txt").write_text("Unrelated\n\nNothing to see.", encoding="utf-8")
    ingest([root], index_path, workers=1)
    index = LocalIndex(index_path)
    try:
        hits = index.search_sync("NEAR(", limit=5)
        assert [h.title for h in hits] == ["Near field"]
    finally:
        index.close()


# --- ingestion ---------------------------------------------------------------------------------


def test_ingest_reads_every_kind_with_titles_text_and_urls(docs: Path, index_path: Path) -> None:
    report = ingest([docs], index_path, workers=1)
    assert (report.added, report.updated, report.removed, report.unchanged) == (4, 0, 0, 0)
    assert report.documents == 4 and report.seconds > 0
    stored = rows(index_path)
    html = stored[str(docs / "reports" / "herons.html")]
    # The page's canonical link wins; navigation and footer are not in the clean text.
    assert html[0] == "https://intranet.example/reports/herons"
    assert html[1] == "Quarterly Heron Survey"
    assert "two hundred and twelve grey herons" in html[2]
    assert "Copyright" not in html[2] and "Home | About" not in html[2]
    md = stored[str(docs / "notes" / "onboarding guide.md")]
    assert md[0] == (docs / "notes" / "onboarding guide.md").as_uri()
    assert md[0].startswith("file:///") and "%20" in md[0]
    assert md[1] == "Onboarding Guide"
    for kept in ("Welcome to the platypus team.", "style guide", "toolchain", "make bootstrap"):
        assert kept in md[2]
    for gone in ("**", "](", "https://example.org/style", "---", "|", "build.png", "```"):
        assert gone not in md[2]
    txt = stored[str(docs / "notes" / "release.txt")]
    assert txt[1] == "Release checklist"
    # Hard-wrapped lines of a paragraph are joined; paragraphs stay apart.
    assert "publish the wheel to the internal package mirror." in txt[2]
    assert "\n\nAnnounce the release" in txt[2]
    pdf = stored[str(docs / "manual.pdf")]
    assert pdf[1] == "Zeppelin maintenance manual"
    assert "gas cells of the zeppelin every forty flight hours" in pdf[2]
    # Hidden files and folders and unknown kinds are not indexed.
    assert not [s for s in stored if "/." in s or s.endswith(".png")]


def test_base_url_builds_urls_from_the_relative_path(docs: Path, index_path: Path) -> None:
    ingest([docs], index_path, base_url="https://docs.example/kb/", workers=1)
    urls = {Path(s).name: u for s, (u, _, _) in rows(index_path).items()}
    assert urls["onboarding guide.md"] == "https://docs.example/kb/notes/onboarding%20guide.md"
    assert urls["manual.pdf"] == "https://docs.example/kb/manual.pdf"
    # The canonical link still wins over the base URL.
    assert urls["herons.html"] == "https://intranet.example/reports/herons"
    # A file given on its own is relative to its folder.
    single = index_path.parent / "single.sqlite3"
    ingest([docs / "notes" / "release.txt"], single, base_url="https://docs.example", workers=1)
    assert [u for u, _, _ in rows(single).values()] == ["https://docs.example/release.txt"]


def test_a_relative_canonical_link_is_ignored(tmp_path: Path, index_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(HTML.replace(b"https://intranet.example/reports/herons", b"/herons"))
    ingest([page], index_path, workers=1)
    assert [u for u, _, _ in rows(index_path).values()] == [page.as_uri()]


def test_incremental_add_change_touch_delete(docs: Path, index_path: Path) -> None:
    first = ingest([docs], index_path, workers=1)
    assert first.added == 4
    again = ingest([docs], index_path, workers=1)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 4)

    txt = docs / "notes" / "release.txt"
    txt.write_text("Release checklist\n\nSign the wheel with the offline key.\n", encoding="utf-8")
    os.utime(txt, ns=(txt.stat().st_atime_ns, txt.stat().st_mtime_ns + 5_000_000_000))
    md = docs / "notes" / "onboarding guide.md"
    # Touched but not changed: re-read (mtime moved), hash equal, not re-parsed.
    os.utime(md, ns=(md.stat().st_atime_ns, md.stat().st_mtime_ns + 5_000_000_000))
    (docs / "manual.pdf").unlink()
    (docs / "notes" / "new.md").write_text("# Fresh note\n\nAbout capybaras.", encoding="utf-8")
    report = ingest([docs], index_path, workers=1)
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 1, 1, 2)
    assert report.documents == 4
    stored = rows(index_path)
    assert "offline key" in stored[str(txt)][2]
    assert str(docs / "manual.pdf") not in stored

    index = LocalIndex(index_path)
    try:
        # The FTS index followed the table: old text gone, new text found.
        assert index.search_sync("internal package mirror", limit=5) == []
        assert [h.title for h in index.search_sync("offline key", limit=5)] == ["Release checklist"]
        assert [h.title for h in index.search_sync("zeppelin", limit=5)] == []
        assert [h.title for h in index.search_sync("capybaras", limit=5)] == ["Fresh note"]
    finally:
        index.close()


def test_other_folders_documents_are_kept(tmp_path: Path, index_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "one.txt").write_text("One\n\nalpha", encoding="utf-8")
    (b / "two.txt").write_text("Two\n\nbeta", encoding="utf-8")
    ingest([a], index_path, workers=1)
    ingest([b], index_path, workers=1)
    (a / "one.txt").unlink()
    report = ingest([b], index_path, workers=1)
    # a/ was not named this time: its stale document waits for `ingest([a])`.
    assert (report.removed, report.documents) == (0, 2)
    assert ingest([a], index_path, workers=1).removed == 1


def test_a_file_emptied_leaves_the_index(tmp_path: Path, index_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("# Note\n\nText.", encoding="utf-8")
    ingest([note], index_path, workers=1)
    note.write_text("   \n", encoding="utf-8")
    report = ingest([note], index_path, workers=1)
    assert (report.removed, report.skipped, report.documents) == (1, 1, 0)


def test_missing_path_raises_before_touching_the_index(tmp_path: Path, index_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ingest([tmp_path / "nope"], index_path)
    assert not index_path.exists()


def test_not_an_index_is_refused(tmp_path: Path, docs: Path) -> None:
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '999')")
    with pytest.raises(NotAnIndex):
        ingest([docs], other)
    with pytest.raises(NotAnIndex):
        LocalIndex(other)


def test_parsing_in_worker_processes_gives_the_same_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("retrieval.index.ingestion.POOL_THRESHOLD", 10)
    root = tmp_path / "many"
    root.mkdir()
    for i in range(70):
        (root / f"n{i:03}.md").write_text(f"# Note {i}\n\nAbout topic{i} and more.", "utf-8")
    one, two = tmp_path / "one.sqlite3", tmp_path / "two.sqlite3"
    assert ingest([root], one, workers=1).added == 70
    assert ingest([root], two, workers=2).added == 70
    assert rows(one) == rows(two)


# --- the index as provider and fetcher --------------------------------------------------------


@pytest.mark.anyio
async def test_search_ranks_titles_higher_and_fetch_reads_the_document(
    tmp_path: Path, index_path: Path
) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "a.md").write_text(
        "# Meeting notes\n\nWe talked about lighthouses, lighthouses and lighthouses.", "utf-8"
    )
    (root / "b.md").write_text("# Lighthouses\n\nA list of coastal towers.", "utf-8")
    ingest([root], index_path, workers=1)
    index = LocalIndex(index_path)
    try:
        hits = await index.search("lighthouse", limit=5)
        assert [h.title for h in hits] == ["Lighthouses", "Meeting notes"]
        assert "coastal towers" in hits[0].snippet
        assert all(h.internal for h in hits)
        assert await index.search("lighthouse", limit=1) == hits[:1]
        page = await index.fetch(hits[0].url)
        assert page.content_type == INDEX_CONTENT_TYPE and page.url == hits[0].url
        doc = IndexedExtractor(AnyExtractor(TrafilaturaExtractor())).extract(page)
        assert doc is not None and doc.internal
        assert (doc.title, doc.text) == ("Lighthouses", "Lighthouses\n\nA list of coastal towers.")
        with pytest.raises(FetchError):
            await index.fetch("https://example.org/not-indexed")
        await index.ready()
        # Many searches at once share the small connection pool.
        results: list[int] = []

        async def one() -> None:
            results.append(len(await index.search("lighthouses towers", limit=5)))

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
        assert results == [2] * 20
    finally:
        await index.aclose()
    with pytest.raises(SearchUnavailable):
        await index.search("lighthouse", limit=5)


def test_web_pages_cannot_claim_to_be_index_documents() -> None:
    # The HTTP fetcher refuses this type, so only the index produces internal documents.
    assert INDEX_CONTENT_TYPE not in ACCEPTED_TYPES
    html = Page(
        url="https://example.org/",
        final_url="https://example.org/",
        status=200,
        content_type="text/html",
        body=b"<html><head><title>Web</title></head><body><p>A web page.</p></body></html>",
    )
    doc = IndexedExtractor(AnyExtractor(TrafilaturaExtractor())).extract(html)
    assert doc is not None and not doc.internal


class FakeWeb:
    """A fetcher that records what it was asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def fetch(self, url: str) -> Page:
        self.asked.append(url)
        return Page(url=url, final_url=url, status=200, content_type="text/plain", body=b"web")


@pytest.mark.anyio
async def test_routing_fetcher_reads_index_urls_from_the_index(
    docs: Path, index_path: Path
) -> None:
    ingest([docs], index_path, workers=1)
    index = LocalIndex(index_path)
    web = FakeWeb()
    try:
        router = RoutingFetcher(index, web)
        page = await router.fetch("https://intranet.example/reports/herons")
        assert page.content_type == INDEX_CONTENT_TYPE
        other = await router.fetch("https://example.org/page")
        assert other.body == b"web"
        assert web.asked == ["https://example.org/page"]
    finally:
        index.close()


class Provider:
    """A search provider answering a fixed list, or failing."""

    def __init__(self, name: str, hits: list[SearchHit] | None) -> None:
        self.name = name
        self.hits = hits

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        if self.hits is None:
            raise SearchUnavailable(f"{self.name} is down")
        return self.hits[:limit]


def hit(url: str, internal: bool = False) -> SearchHit:
    return SearchHit(url=url, title=url, internal=internal)


@pytest.mark.anyio
async def test_mixed_provider_interleaves_and_survives_one_side_failing() -> None:
    local = [hit("file:///a", True), hit("file:///b", True), hit("file:///c", True)]
    web = [hit("https://w/1"), hit("file:///a"), hit("https://w/2")]
    mixed = MixedProvider(Provider("local", local), Provider("searxng", web))
    assert mixed.name == "searxng+local"
    got = await mixed.search("q", limit=10)
    assert [h.url for h in got] == [
        "file:///a",
        "https://w/1",
        "file:///b",
        "file:///c",
        "https://w/2",
    ]
    assert [h.url for h in await mixed.search("q", limit=2)] == ["file:///a", "https://w/1"]
    only_local = MixedProvider(Provider("local", local), Provider("searxng", None))
    assert await only_local.search("q", limit=10) == local
    only_web = MixedProvider(Provider("local", None), Provider("searxng", web))
    assert await only_web.search("q", limit=10) == web
    with pytest.raises(SearchUnavailable, match="local index: local is down; web: searxng"):
        await MixedProvider(Provider("local", None), Provider("searxng", None)).search("q", limit=3)
    assert interleave([], [], 5) == []


# --- seeding, defaults, markdown --------------------------------------------------------------


def page(path: str, text: str) -> CorpusPage:
    return CorpusPage(site=2, path=path, title=path.strip("/"), html="<p>x</p>", text=text)


def test_seed_fills_only_an_empty_index_and_follows_the_base_url(
    tmp_path: Path, index_path: Path
) -> None:
    pages = [page("/wiki/Alpha", "Alpha text."), page("/wiki/Beta", "Beta text.")]
    first = seed_bundled(index_path, "http://127.0.0.1:8000/", pages)
    assert (first.added, first.documents) == (2, 2)
    urls = sorted(u for u, _, _ in rows(index_path).values())
    assert urls == [
        "http://127.0.0.1:8000/corpus/wiki/wiki/Alpha",
        "http://127.0.0.1:8000/corpus/wiki/wiki/Beta",
    ]
    assert seed_bundled(index_path, "http://127.0.0.1:8000", pages).unchanged == 2
    moved = seed_bundled(index_path, "https://footnote.example", pages)
    assert (moved.added, moved.removed) == (2, 2)
    assert all(
        u.startswith("https://footnote.example/corpus/") for u, _, _ in rows(index_path).values()
    )
    # The user's own documents replace the demo, and the demo never comes back over them.
    own = tmp_path / "own.md"
    own.write_text("# Own\n\nMine.", encoding="utf-8")
    report = ingest([own], index_path, workers=1)
    assert (report.added, report.removed, report.documents) == (1, 2, 1)
    assert seed_bundled(index_path, "http://127.0.0.1:8000", pages).added == 0
    assert [t for _, t, _ in rows(index_path).values()] == ["Own"]


def test_the_real_bundled_corpus_seeds_quickly(index_path: Path) -> None:
    report = seed_bundled(index_path, "http://127.0.0.1:8000")
    assert report.added == report.documents == 353
    index = LocalIndex(index_path)
    try:
        hits = index.search_sync("Collective Soul rock band", limit=3)
        assert hits and "Collective Soul" in hits[0].title
        assert hits[0].url.startswith("http://127.0.0.1:8000/corpus/")
    finally:
        index.close()


def test_default_index_path_honours_xdg_data_home(tmp_path: Path) -> None:
    assert default_index_path({"XDG_DATA_HOME": str(tmp_path), "HOME": "/home/x"}) == (
        tmp_path / "footnote" / "index.sqlite3"
    )
    assert default_index_path({"HOME": "/home/x"}) == Path(
        "/home/x/.local/share/footnote/index.sqlite3"
    )
    # A relative XDG_DATA_HOME is invalid by the spec and ignored.
    assert default_index_path({"XDG_DATA_HOME": "rel", "HOME": "/home/x"}) == Path(
        "/home/x/.local/share/footnote/index.sqlite3"
    )


def test_markdown_setext_headings_quotes_and_escapes() -> None:
    title, text = markdown_to_text(
        "Big Title\n=========\n\n> quoted *line*\n> goes on\n\n"
        "Sub\n---\n\nPrice is 5\\*3 <b>bold</b> <!-- hidden -->\n\n[ref]: https://x.example\n"
    )
    assert title == "Big Title"
    assert text == "Big Title\n\nquoted line goes on\n\nSub\n\nPrice is 5*3 bold"
    assert markdown_to_text("no heading here")[0] == ""
    assert markdown_to_text("---\ntitle: 'From Front'\n---\nbody")[0] == "From Front"


def test_settings_index_path_and_provider_lists() -> None:
    from app.settings import Settings
    from retrieval.search.registry import provider_names

    s = Settings.from_env({"FOOTNOTE_INDEX_PATH": "~/kb/index.sqlite3"})
    assert s.index_path == os.path.expanduser("~/kb/index.sqlite3")
    assert s.search_provider == "local"
    mixed = Settings.from_env(
        {"FOOTNOTE_SEARCH_PROVIDER": "searxng, local", "FOOTNOTE_SEARXNG_URL": "http://s:8080"}
    )
    assert mixed.search_provider == "searxng,local"
    assert provider_names("brave,duckduckgo,local") == ["brave", "duckduckgo", "local"]
    assert provider_names("bundled") == ["bundled"]


def test_build_search_splits_web_and_local(tmp_path: Path) -> None:
    from retrieval.search.fallback import FallbackProvider
    from retrieval.search.registry import SearchConfig, build_search
    from retrieval.search.searxng import SearxngProvider

    config = SearchConfig(searxng_url="http://127.0.0.1:9", index_path=str(tmp_path / "i.db"))
    mixed = build_search("searxng,local", config)
    assert isinstance(mixed.default, MixedProvider)
    assert isinstance(mixed.web, SearxngProvider) and isinstance(mixed.local, LocalIndex)
    chain = build_search("duckduckgo,searxng,local", config)
    # `local` is never a fallback step: the other names keep their fallback order.
    assert isinstance(chain.web, FallbackProvider)
    assert [p.name for p in chain.web.providers] == ["duckduckgo", "searxng"]
    assert chain.default.name == "duckduckgo+searxng+local"
    only = build_search("local", config)
    assert only.default is only.local and only.web is None
    for setup in (mixed, chain, only):
        assert setup.local is not None
        setup.local.close()


def test_basis_and_search_results_mark_internal_sources() -> None:
    from app.answer.basis import attribute
    from app.answer.sources import Source
    from retrieval.types import Document, Passage

    def source(number: int, url: str, text: str, internal: bool) -> Source:
        doc = Document(url=url, title=url, text=text, internal=internal)
        passage = Passage(doc=number - 1, start=0, end=len(text), text=text, score=1.0)
        return Source(number=number, document=doc, passages=(passage,))

    sources = [
        source(1, "file:///kb/herons.md", "The survey counted 212 grey herons this quarter.", True),
        source(2, "https://example.org/herons", "Grey herons nest in colonies near water.", False),
    ]
    out = attribute(
        "The survey counted 212 grey herons this quarter [1]. "
        "Grey herons nest in colonies near water [2].",
        sources,
    )
    flags = {c.url: c.internal for c in out.basis.citations}
    assert flags == {"file:///kb/herons.md": True, "https://example.org/herons": False}


@pytest.mark.anyio
async def test_services_wire_the_index_as_provider_and_fetcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.services import build_services
    from app.settings import Settings
    from retrieval.search.bundled import BundledCorpus

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    offline = build_services(Settings(extract_workers=0))
    try:
        # Nothing configured: the seeded index searches and reads, no network, no cache.
        assert isinstance(offline.search, LocalIndex) and offline.fetcher is offline.search
        assert offline.local_index is offline.search and offline.web_search is None
        assert offline.cache is None and isinstance(offline.bundled, BundledCorpus)
        assert offline.search.path == tmp_path / "data" / "footnote" / "index.sqlite3"
        assert offline.search.count() == 353
    finally:
        await offline.aclose()

    kb = tmp_path / "kb.sqlite3"
    mixed = build_services(
        Settings(
            extract_workers=0,
            search_provider="searxng,local",
            searxng_url="http://127.0.0.1:9",
            index_path=str(kb),
        )
    )
    try:
        assert isinstance(mixed.search, MixedProvider)
        assert (
            isinstance(mixed.fetcher, RoutingFetcher) and mixed.fetcher.index is mixed.local_index
        )
        # An index path of its own is never seeded with the demo corpus.
        assert mixed.local_index is not None and mixed.local_index.count() == 0
        assert mixed.bundled is None and mixed.cache is not None
    finally:
        await mixed.aclose()

    # A home where the index cannot be created: the in-memory bundled corpus, as before.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    fallback = build_services(Settings(extract_workers=0))
    try:
        assert isinstance(fallback.search, BundledCorpus) and fallback.fetcher is fallback.search
        assert fallback.local_index is None
    finally:
        await fallback.aclose()


def test_plan_lets_only_rare_terms_select_candidates() -> None:
    from retrieval.index.query import common_threshold, plan_expression

    total = 100_000
    common = common_threshold(total) + 1
    assert common_threshold(1_000) == 200, "small indexes are never pruned"
    # Rare terms select; common ones only rank, so rows with only "film" are not ranked.
    assert plan_expression(
        ["ozu", "yasujiro", "film"], {"ozu": 3, "yasujiro": 2, "film": common}, total
    ) == ('("ozu" OR "yasujiro") AND ("ozu" OR "yasujiro" OR "film")')
    # One rare term: rows with both of the two rarest common terms are candidates too.
    assert (
        plan_expression(
            ["ozu", "film", "japan", "year"],
            {"ozu": 3, "film": common + 5, "japan": common, "year": common + 9},
            total,
        )
        == '("ozu" OR ("japan" AND "film")) AND ("ozu" OR "japan" OR "film" OR "year")'
    )
    assert plan_expression(["film", "year"], {"film": common, "year": common}, total) == (
        '"film" AND "year"'
    )
    assert plan_expression(["absent"], {"absent": 0}, total) is None
    assert plan_expression(["ozu", "nope"], {"ozu": 1, "nope": 0}, total) == '"ozu"'
