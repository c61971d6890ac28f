"""Search providers, one module each, built by name through ``registry.build_provider``.

``bundled`` (offline default, also a ``Fetcher``), ``searxng``, the key-based APIs (``brave``,
``tavily``, ``exa``, ``duckduckgo``) and ``fallback`` (a chain of providers).
"""
