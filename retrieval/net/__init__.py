"""Network access for retrieval: the SSRF-guarded page fetcher and its address policy.

The public surface is ``HttpFetcher`` and ``FetchConfig``; ``Resolver`` is the seam tests use
to simulate DNS answers, and ``is_public`` / ``may_connect`` expose the address policy.
"""

from __future__ import annotations

from retrieval.net.addresses import decode_embedded_ipv4, is_public, may_connect
from retrieval.net.fetcher import FetchConfig, HttpFetcher
from retrieval.net.guard import Resolver, system_resolver

__all__ = [
    "FetchConfig",
    "HttpFetcher",
    "Resolver",
    "decode_embedded_ipv4",
    "is_public",
    "may_connect",
    "system_resolver",
]
