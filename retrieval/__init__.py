"""Evidence gathering for Footnote: search, fetch, extract, chunk and rank.

This package knows nothing of HTTP serving or of the upstream LLM; ``app`` imports it,
never the reverse.
"""
