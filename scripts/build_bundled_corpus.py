"""Build ``retrieval/data/`` (the offline corpus) from the simulated-web corpus, deterministically.

Usage: ``.venv/bin/python scripts/build_bundled_corpus.py [--source DIR] [--out DIR]``

Selection (every choice ordered by a SHA-256 of a stable key, so reruns give the same bytes):

* 40 HotpotQA questions and both gold pages of each;
* their distractors: HotpotQA's own distractors were retrieved by TF-IDF against the
  question, so the 8 best BM25 matches of each question over the whole corpus stand in
  for them (the questions file does not list them);
* 10 SQuAD articles with up to 3 answerable and 1 unanswerable question each;
* 10 real pages (site 5): English, 10-90 KB of HTML, at least 1,500 characters of text.

Outputs: ``bundled.jsonl.gz`` (pages, sorted by site and path, gzip mtime 0),
``questions.jsonl`` (the sampled questions with answers and gold sentences) and
``LICENSE.md`` (attribution and licenses of the source data sets).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from rank_bm25 import BM25Okapi

from retrieval.search.bundled import ROUTE_PREFIX, SITE_NAMES
from retrieval.text import tokenize

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = Path("/work/shared/data/webcorpus")
HOTPOT_QUESTIONS = 40
SQUAD_ARTICLES = 10
SQUAD_PER_ARTICLE = 3
DISTRACTORS_PER_QUESTION = 8
REAL_PAGES = 10
PAGE_FIELDS = ("site", "path", "title", "html", "text", "published", "origin")

LICENSE_TEXT = """\
# Bundled corpus: attribution and licenses

`bundled.jsonl.gz` and `questions.jsonl` are a sample of Footnote's simulated-web test corpus,
built by `scripts/build_bundled_corpus.py`. They contain text from the following sources,
under the following terms.

## HotpotQA

Yang, Qi, Zhang, Bengio, Cohen, Salakhutdinov and Manning (2018), *HotpotQA: A Dataset for
Diverse, Explainable Multi-hop Question Answering*, https://hotpotqa.github.io.
Licensed under the Creative Commons Attribution-ShareAlike 4.0 International license
(CC BY-SA 4.0, https://creativecommons.org/licenses/by-sa/4.0/). Its paragraphs are text
from English Wikipedia (CC BY-SA).

## SQuAD v1.1 / v2.0

Rajpurkar, Zhang, Lopyrev and Liang (2016); Rajpurkar, Jia and Liang (2018), *SQuAD: The
Stanford Question Answering Dataset*, https://rajpurkar.github.io/SQuAD-explorer/.
Licensed under CC BY-SA 4.0. Its paragraphs are text from English Wikipedia (CC BY-SA).

## Wikipedia

Article text quoted by HotpotQA and SQuAD comes from English Wikipedia, whose text is
available under the Creative Commons Attribution-ShareAlike license; its authors are the
Wikipedia contributors (see each article's history on https://en.wikipedia.org).

## Mozilla Readability test pages (pages under `/corpus/pages/`)

Real web pages saved for the test suite of Mozilla Readability,
https://github.com/mozilla/readability (the repository is licensed Apache-2.0). The pages
are third-party content, included unchanged for testing; their rights remain with their
respective owners.

## Derived pages

The page templates around the HotpotQA and SQuAD text (navigation, sidebars, comments,
cookie banners and other generated boilerplate) are under the same CC BY-SA 4.0 terms as
the text they wrap. Anyone redistributing these files must keep this notice and share
adaptations under the same license.
"""


def _key(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def select(
    pages: list[dict[str, Any]], questions: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Choose the pages and questions of the bundled corpus (see module doc)."""
    by_path = {p["path"]: p for p in pages}
    chosen: set[str] = set()
    sampled: list[dict[str, Any]] = []

    hotpot = sorted(
        (q for q in questions if q["source"] == "hotpotqa"), key=lambda q: _key(q["id"])
    )
    hotpot = hotpot[:HOTPOT_QUESTIONS]
    candidates = [p for p in pages if p["origin"] == "hotpotqa"]
    index = BM25Okapi([tokenize(p["title"] + "\n" + p["text"]) for p in candidates])
    for q in hotpot:
        chosen.update(q["gold_pages"])
        scores = index.get_scores(tokenize(q["question"]))
        best = sorted(range(len(candidates)), key=lambda i: (-scores[i], candidates[i]["path"]))
        chosen.update(candidates[i]["path"] for i in best[:DISTRACTORS_PER_QUESTION])
        sampled.append(q)

    squad = [q for q in questions if q["source"].startswith("squad")]
    articles = sorted({q["gold_pages"][0] for q in squad if q["answerable"]}, key=_key)
    for article in articles[:SQUAD_ARTICLES]:
        chosen.add(article)
        mine = sorted(
            (q for q in squad if q["gold_pages"][0] == article), key=lambda q: _key(q["id"])
        )
        sampled.extend([q for q in mine if q["answerable"]][:SQUAD_PER_ARTICLE])
        sampled.extend([q for q in mine if not q["answerable"]][:1])

    real = [
        p
        for p in pages
        if p["site"] == 5
        and 10_000 <= len(p["html"]) <= 90_000
        and len(p["text"]) >= 1_500
        and sum(ch.isascii() for ch in p["text"]) >= 0.98 * len(p["text"])
    ]
    chosen.update(p["path"] for p in sorted(real, key=lambda p: _key(p["path"]))[:REAL_PAGES])

    selected = sorted((by_path[path] for path in chosen), key=lambda p: (p["site"], p["path"]))
    return selected, sampled


def _question_record(q: dict[str, Any], by_path: dict[str, dict[str, Any]]) -> dict[str, Any]:
    record = {
        k: q[k]
        for k in (
            "id",
            "source",
            "question",
            "answers",
            "answerable",
            "gold_pages",
            "gold_sentences",
        )
    }
    record["gold_routes"] = [
        f"{ROUTE_PREFIX}/{SITE_NAMES[by_path[p]['site']]}{p}" for p in q["gold_pages"]
    ]
    record["gold_titles"] = q.get("gold_titles", [])
    record["type"] = q.get("type")
    return record


def write_outputs(
    selected: list[dict[str, Any]], sampled: list[dict[str, Any]], out: Path
) -> dict[str, int]:
    """Write the three output files into ``out``; return their sizes in bytes."""
    out.mkdir(parents=True, exist_ok=True)
    lines = "".join(
        json.dumps({k: p.get(k) for k in PAGE_FIELDS}, ensure_ascii=False) + "\n" for p in selected
    )
    buffer = io.BytesIO()
    # mtime=0 and no file name in the header keep the archive byte-for-byte reproducible.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(lines.encode("utf-8"))
    (out / "bundled.jsonl.gz").write_bytes(buffer.getvalue())

    by_path = {p["path"]: p for p in selected}
    questions = "".join(
        json.dumps(_question_record(q, by_path), ensure_ascii=False) + "\n" for q in sampled
    )
    (out / "questions.jsonl").write_text(questions, encoding="utf-8")
    (out / "LICENSE.md").write_text(LICENSE_TEXT, encoding="utf-8")
    return {f.name: f.stat().st_size for f in sorted(out.iterdir()) if f.is_file()}


def main(argv: list[str] | None = None) -> None:
    """Build the bundled corpus from ``--source`` into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=ROOT / "retrieval" / "data")
    args = parser.parse_args(argv)
    pages = _read_jsonl(args.source / "pages.jsonl.gz")
    questions = _read_jsonl(args.source / "questions.jsonl")
    selected, sampled = select(pages, questions)
    sizes = write_outputs(selected, sampled, args.out)
    sites: dict[int, int] = {}
    for p in selected:
        sites[p["site"]] = sites.get(p["site"], 0) + 1
    print(
        f"pages: {len(selected)} by site {dict(sorted(sites.items()))}; questions: {len(sampled)}"
    )
    for name, size in sizes.items():
        print(f"  {name}: {size:,} bytes")


if __name__ == "__main__":
    main()
