"""One extractor for every content type the fetcher accepts: PDF to pypdf, the rest to HTML/text.

It holds only the wrapped extractor, so it pickles into a process pool like the one it wraps.
"""

from __future__ import annotations

from retrieval.pdf import extract_pdf, is_pdf
from retrieval.protocols import Extractor
from retrieval.types import Document, Page


class AnyExtractor:
    """``Extractor`` that sends PDFs to ``extract_pdf`` and everything else to ``html``."""

    def __init__(self, html: Extractor) -> None:
        self.html = html

    def extract(self, page: Page) -> Document | None:
        """Extract ``page`` with the extractor its content type needs."""
        if is_pdf(page):
            return extract_pdf(page)
        return self.html.extract(page)
