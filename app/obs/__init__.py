"""Observability: request ids, structured logs, Prometheus metrics (see ``middleware``).

``context`` holds the per-request record (request id, tier, stage timings, tokens) in a
``ContextVar``; ``logs`` formats log records as JSON lines or text; ``metrics`` owns the
Prometheus collectors; ``middleware`` ties them together around every HTTP request.
"""
