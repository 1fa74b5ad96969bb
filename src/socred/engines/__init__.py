"""Batch scoring engines: one relational formulation (``sql.py``), two runners.

The scoring semantics of scoring.md are written once, as the SQL of
:func:`socred.engines.sql.build_query` over small catalog relations, and executed by a
:class:`BatchBackend`: embedded DuckDB (``"duckdb"``) or Apache Spark (``"spark"``, needs
the ``socred[spark]`` extra and a JVM). Both return the same Arrow table, one row per
subject, described by :data:`socred.engines.sql.OUTPUT_SCHEMA`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

    from socred.domain.catalog import Catalog

__all__ = ["ENGINES", "BatchBackend", "get_backend"]

ENGINES: tuple[str, ...] = ("duckdb", "spark")


class BatchBackend(Protocol):
    """A batch runner: scores every subject of ``records`` under ``catalog`` as of ``as_of``.

    ``records`` is an Arrow table or a Parquet file, glob or (partitioned) directory with the
    columns of :data:`socred.engines.sql.RECORD_COLUMNS`; extra columns are ignored. The
    result has one row per distinct ``subject_id``, sorted by it, typed as
    :data:`socred.engines.sql.OUTPUT_SCHEMA`. Raises ValueError when the catalog takes effect
    after ``as_of``.
    """

    name: str

    def score(self, records: pa.Table | str | Path, catalog: Catalog, as_of: date) -> pa.Table: ...


def get_backend(name: Literal["duckdb", "spark"]) -> BatchBackend:
    """The runner called ``name``: ``"duckdb"`` or ``"spark"``."""
    if name == "duckdb":
        from socred.engines.duckdb_engine import DuckDBBackend

        return DuckDBBackend()
    if name == "spark":
        from socred.engines.spark_engine import SparkBackend

        return SparkBackend()
    raise ValueError(f"unknown batch engine {name!r}; choose one of: {', '.join(ENGINES)}.")
