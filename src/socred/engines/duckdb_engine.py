"""The DuckDB runner of the batch query (embedded, in-process, no server)."""

from __future__ import annotations

import glob as _glob
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa

from socred.domain.catalog import Catalog
from socred.engines.sql import RECORD_COLUMNS, build_query, check_effective, finalize

__all__ = ["DuckDBBackend", "parquet_source"]

_GLOB_CHARS = set("*?[")


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def parquet_source(path: str | Path) -> str:
    """A ``read_parquet(...)`` expression for a Parquet file, glob or (hive-partitioned) directory.

    Partition values are read as strings (no type guessing: ``subject_id=0123`` stays
    ``'0123'``); the query casts the columns it uses.
    """
    p = str(path)
    if not (_GLOB_CHARS & set(p)):
        if Path(p).is_dir():
            p = str(Path(p) / "**" / "*.parquet")
        elif not Path(p).exists():
            raise ValueError(f"records file {p} does not exist.")
    elif not _glob.glob(p, recursive=True):
        raise ValueError(f"no records file matches {p}.")
    return f"read_parquet({_quote(p)}, union_by_name = true, hive_types_autocast = false)"


def _missing(columns: list[str]) -> list[str]:
    have = set(columns)
    return [c for c in RECORD_COLUMNS if c not in have]


class DuckDBBackend:
    """Runs the batch query on a fresh in-memory DuckDB connection per call."""

    name = "duckdb"

    def __init__(self, threads: int | None = None, memory_limit: str | None = None) -> None:
        self.threads = threads
        self.memory_limit = memory_limit

    def _connect(self) -> duckdb.DuckDBPyConnection:
        # Materialized steps need not keep their rows in order: the result is sorted at the end.
        config: dict[str, str | bool | int | float | list[str]] = {"preserve_insertion_order": False}
        if self.threads is not None:
            config["threads"] = self.threads
        if self.memory_limit is not None:
            config["memory_limit"] = self.memory_limit
        return duckdb.connect(":memory:", config=config)

    def score(self, records: pa.Table | str | Path, catalog: Catalog, as_of: date) -> pa.Table:
        check_effective(catalog, as_of)
        query = build_query(catalog, as_of)
        con = self._connect()
        try:
            if isinstance(records, pa.Table):
                columns = records.column_names
                con.register(query.records, records)
            else:
                con.sql(f"CREATE VIEW {query.records} AS SELECT * FROM {parquet_source(records)}")
                columns = [str(r[0]) for r in con.sql(f"DESCRIBE {query.records}").fetchall()]
            missing = _missing(columns)
            if missing:
                raise ValueError(f"the records lack the column(s) {', '.join(missing)}.")
            for rel_name, table in query.relations.items():
                con.register(rel_name, table)
            for step in query.steps:
                con.sql(f"CREATE TEMP {'TABLE' if step.materialize else 'VIEW'} {step.name} AS {step.sql}")
            rows = con.sql(query.rows_sorted).to_arrow_table()
            combos = con.sql(query.combos).to_arrow_table()
        finally:
            con.close()
        return finalize(rows, combos)
