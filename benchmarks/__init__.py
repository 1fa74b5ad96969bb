"""socred's benchmark suite (``make bench``): every figure beside its floor.

``python -m benchmarks --records N --subjects N`` generates a synthetic national population
(``socred demo --out``), then measures ingestion (SQLite, PostgreSQL), score-all (DuckDB, Spark),
the per-subject evaluator, the HTTP check endpoint and the public search, each beside the floor of
the same work done raw (the same rows written by bare ``executemany``/``COPY``, the same aggregate
in bare DuckDB or Spark, bare SHA-256 chaining) or a naive baseline, and prints one table. See
``docs/performance.md`` for figures and ``python -m benchmarks --help`` for options.
"""
