"""Footnote's simulated-web benchmarks: numbers, tables and a plot, never pass/fail.

``python -m bench --help`` lists the sub-benchmarks; ``bench/README.md`` says what each one
measures and how.
"""
