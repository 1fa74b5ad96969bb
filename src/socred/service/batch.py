"""Batch use cases: score every subject (``score-all``) and export the records projection.

The records projection is streamed out of SQLite or PostgreSQL into Parquet in
bounded memory; each subject is assigned its catalog (region by longest prefix,
version by date — the same rule as the per-subject path); then one relational
pass per catalog runs on the chosen engine (DuckDB or Spark).
"""

from __future__ import annotations

import tempfile
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from socred.domain import clock
from socred.domain.catalog import Catalog
from socred.domain.scoring import ScoringError, select_catalog
from socred.store import schema as t

if TYPE_CHECKING:
    from socred.service.platform import Platform

RECORD_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("source", pa.string()),
        ("subject_id", pa.string()),
        ("kind", pa.string()),
        ("region", pa.string()),
        ("category", pa.string()),
        ("occurred_on", pa.date32()),
        ("retracted", pa.bool_()),
        ("repaired_on", pa.date32()),
    ]
)


def _as_date(v: Any) -> date | None:
    if v is None or isinstance(v, date):
        return v
    return date.fromisoformat(str(v))


def write_records_parquet(platform: Platform, path: Path, chunk: int = 100_000) -> int:
    """Stream the records projection into one Parquet file; returns the row count."""
    cols = [
        t.records.c.record_id,
        t.records.c.source,
        t.records.c.subject_id,
        t.records.c.kind,
        t.records.c.subject_region,
        t.records.c.category,
        t.records.c.occurred_on,
        t.records.c.retracted,
        t.records.c.repaired_on,
    ]
    n = 0
    with platform.engine.connect() as conn, pq.ParquetWriter(path, RECORD_SCHEMA) as writer:
        result = conn.execution_options(yield_per=chunk).execute(select(*cols))
        for part in result.partitions(chunk):
            columns: list[Any] = list(zip(*part, strict=True)) if part else [() for _ in cols]
            arrays = [
                pa.array(columns[0], pa.string()),
                pa.array(columns[1], pa.string()),
                pa.array(columns[2], pa.string()),
                pa.array(columns[3], pa.string()),
                pa.array(columns[4], pa.string()),
                pa.array(columns[5], pa.string()),
                pa.array([_as_date(v) for v in columns[6]], pa.date32()),
                pa.array([bool(v) for v in columns[7]], pa.bool_()),
                pa.array([_as_date(v) for v in columns[8]], pa.date32()),
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=RECORD_SCHEMA))
            n += len(part)
    return n


def export_records(platform: Platform, out_dir: Path) -> dict[str, Any]:
    """Write the records projection as a Parquet dataset partitioned by kind."""
    import duckdb

    platform.ensure_schema()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        flat = Path(tmp) / "records.parquet"
        n = write_records_parquet(platform, flat)
        con = duckdb.connect()
        try:
            con.sql(
                f"COPY (SELECT * FROM read_parquet('{_sql_path(flat)}')) TO '{_sql_path(out_dir)}' "
                "(FORMAT parquet, PARTITION_BY (kind), OVERWRITE_OR_IGNORE true)"
            )
        finally:
            con.close()
    return {"records": n, "out": str(out_dir), "partitioned_by": ["kind"]}


def _sql_path(p: Path) -> str:
    return str(p).replace("'", "''")


def serves_kind(catalog: Catalog, kind: str) -> bool:
    return any(kind in c.subjects for c in catalog.categories.values())


def assign_catalogs(
    versions: list[Catalog], groups: list[tuple[str, str]], as_of: date, catalog_id: str | None
) -> tuple[dict[tuple[str, str], Catalog], int]:
    """Map (region, kind) groups to the catalog that scores them; count groups no catalog serves."""
    assigned: dict[tuple[str, str], Catalog] = {}
    unserved = 0
    for region, kind in groups:
        try:
            cat = select_catalog(versions, region, as_of, catalog_id)
        except ScoringError:
            if catalog_id is not None and any(
                c.id == catalog_id and c.serves_region(region) is not None for c in versions
            ):
                raise
            unserved += 1
            continue
        if catalog_id is not None and cat.serves_region(region) is None:
            continue
        if not serves_kind(cat, kind):
            continue
        assigned[(region, kind)] = cat
    return assigned, unserved


def score_all(
    platform: Platform, out: Path, as_of: date | None, catalog_id: str | None, engine: str
) -> dict[str, Any]:
    import duckdb

    from socred.engines import get_backend

    platform.ensure_schema()
    as_of = as_of or clock.today()
    versions = platform.catalogs()
    if catalog_id is not None and not any(c.id == catalog_id for c in versions):
        raise ScoringError(f"no active catalog with id {catalog_id!r} is loaded")
    started = time.perf_counter()
    backend = get_backend(engine)  # type: ignore[arg-type]
    results: list[pa.Table] = []
    per_catalog: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        flat = Path(tmp) / "records.parquet"
        n_records = write_records_parquet(platform, flat)
        con = duckdb.connect()
        try:
            src = f"read_parquet('{_sql_path(flat)}')"
            groups = [
                (str(r), str(k)) for r, k in con.sql(f"SELECT DISTINCT region, kind FROM {src}").fetchall()
            ]
            assigned, unserved_groups = assign_catalogs(versions, groups, as_of, catalog_id)
            by_ref: dict[str, tuple[Catalog, list[tuple[str, str]]]] = {}
            for g, cat in assigned.items():
                by_ref.setdefault(cat.ref, (cat, []))[1].append(g)
            unserved = 0
            if unserved_groups:
                keys = set(assigned)
                rows = con.sql(
                    f"SELECT region, kind, COUNT(DISTINCT subject_id) FROM {src} GROUP BY 1, 2"
                ).fetchall()
                unserved = sum(int(c) for r, k, c in rows if (r, k) not in keys and catalog_id is None)
            for ref, (cat, gs) in sorted(by_ref.items()):
                part = Path(tmp) / f"part-{len(results)}.parquet"
                con.execute("CREATE OR REPLACE TEMP TABLE g (region VARCHAR, kind VARCHAR)")
                con.executemany("INSERT INTO g VALUES (?, ?)", gs)
                con.sql(
                    f"COPY (SELECT r.* FROM {src} r JOIN g USING (region, kind)) TO '{_sql_path(part)}' "
                    "(FORMAT parquet)"
                )
                table = backend.score(part, cat, as_of)
                per_catalog[ref] = table.num_rows
                results.append(table)
        finally:
            con.close()
    final = pa.concat_tables(results).sort_by("subject_id") if results else _empty_result()
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(final, out)
    return {
        "as_of": as_of.isoformat(),
        "engine": engine,
        "records": n_records,
        "subjects": final.num_rows,
        "catalogs": per_catalog,
        "unserved_subjects": unserved,
        "out": str(out),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _empty_result() -> pa.Table:
    schema = pa.schema(
        [
            ("subject_id", pa.string()),
            ("kind", pa.string()),
            ("catalog", pa.string()),
            ("as_of", pa.date32()),
            ("score", pa.int64()),
            ("grade", pa.string()),
            ("government", pa.int64()),
            ("commercial", pa.int64()),
            ("social", pa.int64()),
            ("judicial", pa.int64()),
            ("lists", pa.list_(pa.string())),
            ("measures", pa.list_(pa.string())),
        ]
    )
    return schema.empty_table()
