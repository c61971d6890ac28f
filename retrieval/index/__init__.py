"""The local index: private documents on disk, searched with SQLite FTS5 (BM25), no server.

Public surface:

* ``LocalIndex(path)``: the ``local`` search provider and an in-process fetcher of its own
  documents (``retrieval.index.store``);
* ``ingest(paths, index_path, base_url=None) -> IngestReport``: add, update and remove
  files of HTML, Markdown, text and PDF, incrementally (``retrieval.index.ingestion``);
* ``default_index_path()``: the one default location, shared by server and CLI;
* ``seed_bundled(index_path, base_url)``: the bundled demo corpus into an empty index;
* ``MixedProvider`` (web and index together), ``RoutingFetcher`` (index URLs from the
  index, the rest from the web), ``IndexedExtractor`` (reads the index's pages back).
"""

from retrieval.index.ingestion import IngestReport, ingest
from retrieval.index.mixed import MixedProvider
from retrieval.index.paths import default_index_path
from retrieval.index.routing import RoutingFetcher
from retrieval.index.schema import NotAnIndex
from retrieval.index.seed import seed_bundled
from retrieval.index.store import INDEX_CONTENT_TYPE, IndexedExtractor, LocalIndex

__all__ = [
    "INDEX_CONTENT_TYPE",
    "IndexedExtractor",
    "IngestReport",
    "LocalIndex",
    "MixedProvider",
    "NotAnIndex",
    "RoutingFetcher",
    "default_index_path",
    "ingest",
    "seed_bundled",
]
