"""Numbered sources: the documents the answer may cite, with the passages shown for each."""

from __future__ import annotations

import msgspec

from retrieval.types import Document, Evidence, Passage


class Source(msgspec.Struct, frozen=True, kw_only=True):
    """Source ``number`` (1-based, the ``[n]`` the model cites) and its ranked passages."""

    number: int
    document: Document
    passages: tuple[Passage, ...]


def number_sources(evidence: Evidence) -> list[Source]:
    """Group the ranked passages by document, numbering documents by their best passage."""
    order: list[int] = []
    grouped: dict[int, list[Passage]] = {}
    for passage in evidence.passages:
        if passage.doc not in grouped:
            order.append(passage.doc)
            grouped[passage.doc] = []
        grouped[passage.doc].append(passage)
    return [
        Source(
            number=i,
            document=evidence.documents[doc],
            # Shown in document order so the model reads each page as written.
            passages=tuple(sorted(grouped[doc], key=lambda p: p.start)),
        )
        for i, doc in enumerate(order, start=1)
    ]
