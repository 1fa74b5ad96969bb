"""Batch use cases: score every subject (``score-all``) and export the records projection.

Bounded memory at national scale:

* the records projection is streamed out of the database in large Arrow batches — SQLite through
  the DBAPI cursor (``fetchmany``, columns converted by Arrow kernels), PostgreSQL through
  ``COPY (SELECT ...) TO STDOUT`` parsed by Arrow's streaming CSV reader — never as Python objects
  per row through SQLAlchemy;
* while streaming, each row's (region, kind) group is assigned its catalog (region by longest
  prefix, version by date: the same rule as the per-subject path, evaluated once per group) and
  the row is written to that catalog's Parquet part;
* one relational pass per catalog runs on the chosen engine (DuckDB with a memory limit, or Spark);
* the per-catalog results are merged in subject order by an external sort when there are several.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as _pc
import pyarrow.parquet as pq

from socred.domain import clock
from socred.domain.catalog import Catalog
from socred.domain.scoring import ScoringError, select_catalog

if TYPE_CHECKING:
    from socred.engines import BatchBackend
    from socred.service.platform import Platform

pc: Any = _pc  # pyarrow's stubs do not declare the generated compute functions

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
_SELECT = (
    "SELECT record_id, source, subject_id, kind, subject_region, category, occurred_on, retracted, "
    "repaired_on FROM records"
)
#: Rows per Arrow batch streamed out of the database.
STREAM_ROWS = 262_144
#: DuckDB's memory limit for the batch (environment: SOCRED_DUCKDB_MEMORY).
DUCKDB_MEMORY = "3GB"


# ------------------------------------------------------------------ streaming the projection


def stream_records(platform: Platform, rows: int = STREAM_ROWS) -> Iterator[pa.RecordBatch]:
    """The records projection as Arrow batches of :data:`RECORD_SCHEMA`, in bounded memory."""
    with platform.engine.connect() as conn:
        raw = conn.connection.driver_connection
        if conn.dialect.name == "postgresql":
            yield from _stream_postgresql(raw, rows)
        else:
            yield from _stream_sqlite(raw, rows)


def _stream_sqlite(raw: Any, rows: int) -> Iterator[pa.RecordBatch]:
    cur = raw.execute(_SELECT)
    try:
        while True:
            part = cur.fetchmany(rows)
            if not part:
                return
            cols = list(zip(*part, strict=True))
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(cols[0], pa.string()),
                    pa.array(cols[1], pa.string()),
                    pa.array(cols[2], pa.string()),
                    pa.array(cols[3], pa.string()),
                    pa.array(cols[4], pa.string()),
                    pa.array(cols[5], pa.string()),
                    pa.array(cols[6], pa.string()).cast(pa.date32()),  # ISO text, as SQLAlchemy stores dates
                    pa.array(cols[7], pa.int64()).cast(pa.bool_()),
                    pa.array(cols[8], pa.string()).cast(pa.date32()),
                ],
                schema=RECORD_SCHEMA,
            )
    finally:
        cur.close()


class _CopyStream(io.RawIOBase):
    """A read-only file over the chunks of a psycopg ``COPY ... TO STDOUT``."""

    def __init__(self, chunks: Iterator[Any]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = bytes(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _stream_postgresql(raw: Any, rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pcsv

    names = RECORD_SCHEMA.names
    with raw.cursor() as cur, cur.copy(f"COPY ({_SELECT}) TO STDOUT (FORMAT csv)") as copy:
        stream = io.BufferedReader(_CopyStream(iter(copy)), buffer_size=1 << 20)
        reader = pcsv.open_csv(
            stream,
            read_options=pcsv.ReadOptions(column_names=names, block_size=16 << 20),
            convert_options=pcsv.ConvertOptions(
                column_types=RECORD_SCHEMA,
                true_values=["t"],
                false_values=["f"],
                strings_can_be_null=True,  # NULL is an unquoted empty field; "" stays an empty string
                quoted_strings_can_be_null=False,
            ),
        )
        pending: list[pa.RecordBatch] = []
        size = 0
        for batch in reader:
            pending.append(batch)
            size += batch.num_rows
            if size >= rows:
                yield from pa.Table.from_batches(pending, RECORD_SCHEMA).to_batches()
                pending, size = [], 0
        if pending:
            yield from pa.Table.from_batches(pending, RECORD_SCHEMA).to_batches()


def write_records_parquet(platform: Platform, path: Path, chunk: int = STREAM_ROWS) -> int:
    """Stream the records projection into one Parquet file; returns the row count."""
    n = 0
    with pq.ParquetWriter(path, RECORD_SCHEMA) as writer:
        for batch in stream_records(platform, chunk):
            writer.write_batch(batch)
            n += batch.num_rows
    return n


def export_records(platform: Platform, out_dir: Path) -> dict[str, Any]:
    """Write the records projection as a Parquet dataset partitioned by kind (``kind=<kind>/``)."""
    platform.ensure_schema()
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("kind=*"):
        if old.is_dir():
            shutil.rmtree(old)
    schema = pa.schema([f for f in RECORD_SCHEMA if f.name != "kind"])
    writers: dict[str, pq.ParquetWriter] = {}
    n = 0
    try:
        for batch in stream_records(platform):
            n += batch.num_rows
            kinds = batch.column("kind")
            for kind in pc.unique(kinds).to_pylist():
                part = batch.filter(pc.equal(kinds, kind)).drop_columns(["kind"])
                w = writers.get(kind)
                if w is None:
                    d = out_dir / f"kind={kind}"
                    d.mkdir(exist_ok=True)
                    w = writers[kind] = pq.ParquetWriter(d / "part-00000.parquet", schema)
                w.write_batch(part)
    finally:
        for w in writers.values():
            w.close()
    return {"records": n, "out": str(out_dir), "partitioned_by": ["kind"]}


def _sql_path(p: Path) -> str:
    return str(p).replace("'", "''")


# ------------------------------------------------------------------ catalogs


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


class _Splitter:
    """Writes each streamed row to the Parquet part of the catalog that scores its (region, kind)."""

    def __init__(self, tmp: Path, versions: list[Catalog], as_of: date, catalog_id: str | None) -> None:
        self.tmp = tmp
        self.versions = versions
        self.as_of = as_of
        self.catalog_id = catalog_id
        self.group_part: dict[str, int] = {}  # "region|kind" -> part index (-1: not scored)
        self.catalogs: list[Catalog] = []
        self.writers: list[pq.ParquetWriter] = []
        self.unassigned: pq.ParquetWriter | None = None
        self.unserved_groups = 0
        self.records = 0

    def _part_of(self, key: str) -> int:
        got = self.group_part.get(key)
        if got is not None:
            return got
        region, kind = key.split("|", 1)
        assigned, unserved = assign_catalogs(self.versions, [(region, kind)], self.as_of, self.catalog_id)
        self.unserved_groups += unserved
        cat = assigned.get((region, kind))
        part = -1
        if cat is not None:
            refs = [c.ref for c in self.catalogs]
            if cat.ref in refs:
                part = refs.index(cat.ref)
            else:
                part = len(self.catalogs)
                self.catalogs.append(cat)
                self.writers.append(pq.ParquetWriter(self.tmp / f"part-{part}.parquet", RECORD_SCHEMA))
        self.group_part[key] = part
        return part

    def write(self, batch: pa.RecordBatch) -> None:
        import numpy as np

        self.records += batch.num_rows
        keys = pc.binary_join_element_wise(batch.column("region"), batch.column("kind"), "|")
        encoded = pc.dictionary_encode(keys)
        parts = np.array([self._part_of(k) for k in encoded.dictionary.to_pylist()], dtype=np.int64)
        row_part = parts[encoded.indices.to_numpy(zero_copy_only=False)]
        for part in np.unique(row_part).tolist():
            mask = pa.array(row_part == part)
            rows = batch.filter(mask)
            if part >= 0:
                self.writers[part].write_batch(rows)
            else:
                if self.unassigned is None:
                    self.unassigned = pq.ParquetWriter(self.tmp / "unassigned.parquet", RECORD_SCHEMA)
                self.unassigned.write_batch(rows)

    def close(self) -> None:
        for w in self.writers:
            w.close()
        if self.unassigned is not None:
            self.unassigned.close()

    def unserved_subjects(self) -> int:
        """Subjects of the groups no catalog scores (counted per group), when some group is unserved."""
        if not self.unserved_groups or self.catalog_id is not None or self.unassigned is None:
            return 0
        import duckdb

        con = duckdb.connect()
        try:
            src = f"read_parquet('{_sql_path(self.tmp / 'unassigned.parquet')}')"
            query = (
                "SELECT COALESCE(SUM(n), 0) FROM "
                f"(SELECT COUNT(DISTINCT subject_id) AS n FROM {src} GROUP BY region, kind)"
            )
            row = con.execute(query).fetchone()
        finally:
            con.close()
        return int(row[0]) if row else 0


# ------------------------------------------------------------------ score-all


def _backend(engine: str) -> BatchBackend:
    if engine == "duckdb":
        from socred.engines.duckdb_engine import DuckDBBackend

        return DuckDBBackend(memory_limit=os.environ.get("SOCRED_DUCKDB_MEMORY", DUCKDB_MEMORY))
    from socred.engines import get_backend

    return get_backend(engine)  # type: ignore[arg-type]


def _merge_sorted(parts: list[Path], out: Path) -> int:
    """Write the per-catalog results (each sorted, subjects disjoint) to ``out`` in subject order."""
    from socred.engines.sql import OUTPUT_SCHEMA

    out.parent.mkdir(parents=True, exist_ok=True)
    if not parts:
        pq.write_table(OUTPUT_SCHEMA.empty_table(), out)
        return 0
    if len(parts) == 1:
        shutil.copyfile(parts[0], out)
        return int(pq.ParquetFile(out).metadata.num_rows)
    import duckdb

    con = duckdb.connect(config={"memory_limit": os.environ.get("SOCRED_DUCKDB_MEMORY", DUCKDB_MEMORY)})
    n = 0
    try:
        files = ", ".join(f"'{_sql_path(p)}'" for p in parts)
        reader = con.sql(f"SELECT * FROM read_parquet([{files}]) ORDER BY subject_id").to_arrow_reader(
            STREAM_ROWS
        )
        with pq.ParquetWriter(out, OUTPUT_SCHEMA) as writer:
            for batch in reader:
                table = pa.Table.from_batches([batch]).cast(OUTPUT_SCHEMA)
                writer.write_table(table)
                n += table.num_rows
    finally:
        con.close()
    return n


def score_batches(
    batches: Iterator[pa.RecordBatch],
    versions: list[Catalog],
    out: Path,
    as_of: date,
    catalog_id: str | None,
    engine: str,
) -> dict[str, Any]:
    """Score the records of ``batches`` (:data:`RECORD_SCHEMA`) into ``out``; the summary of score-all."""
    if catalog_id is not None and not any(c.id == catalog_id for c in versions):
        raise ScoringError(f"no active catalog with id {catalog_id!r} is loaded")
    started = time.perf_counter()
    backend = _backend(engine)
    per_catalog: dict[str, int] = {}
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="socred-batch-") as tmp_name:
        tmp = Path(tmp_name)
        splitter = _Splitter(tmp, versions, as_of, catalog_id)
        try:
            for batch in batches:
                splitter.write(batch)
        finally:
            splitter.close()
        timings["stream_and_split"] = round(time.perf_counter() - started, 3)
        unserved = splitter.unserved_subjects()
        results: list[Path] = []
        order = sorted(range(len(splitter.catalogs)), key=lambda i: splitter.catalogs[i].ref)
        t0 = time.perf_counter()
        for i in order:
            cat = splitter.catalogs[i]
            table = backend.score(tmp / f"part-{i}.parquet", cat, as_of)
            per_catalog[cat.ref] = table.num_rows
            if table.num_rows:
                path = tmp / f"result-{i}.parquet"
                pq.write_table(table, path)
                results.append(path)
            del table
        timings["score"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        subjects = _merge_sorted(results, out)
        timings["write"] = round(time.perf_counter() - t0, 3)
    return {
        "as_of": as_of.isoformat(),
        "engine": engine,
        "records": splitter.records,
        "subjects": subjects,
        "catalogs": per_catalog,
        "unserved_subjects": unserved,
        "out": str(out),
        "seconds": round(time.perf_counter() - started, 3),
        "timings": timings,
    }


def score_all(
    platform: Platform, out: Path, as_of: date | None, catalog_id: str | None, engine: str
) -> dict[str, Any]:
    """``socred score-all``: every subject with a record, scored by its catalog, into one Parquet file."""
    platform.ensure_schema()
    as_of = as_of or clock.today()
    versions = platform.catalogs()
    if catalog_id is not None and not any(c.id == catalog_id for c in versions):
        raise ScoringError(f"no active catalog with id {catalog_id!r} is loaded")
    return score_batches(stream_records(platform), versions, out, as_of, catalog_id, engine)


def dataset_batches(path: Path, rows: int = STREAM_ROWS) -> Iterator[pa.RecordBatch]:
    """Records from an exported dataset (``socred export``, kind partitions) or any Parquet of the schema."""
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(path), format="parquet", partitioning="hive")
    for batch in dataset.to_batches(columns=RECORD_SCHEMA.names, batch_size=rows):
        yield pa.RecordBatch.from_arrays(
            [batch.column(name).cast(RECORD_SCHEMA.field(name).type) for name in RECORD_SCHEMA.names],
            schema=RECORD_SCHEMA,
        )


def score_dataset(
    path: Path, versions: list[Catalog], out: Path, as_of: date, catalog_id: str | None, engine: str
) -> dict[str, Any]:
    """score-all over an exported Parquet dataset instead of the database (a Spark cluster's input)."""
    return score_batches(dataset_batches(path), versions, out, as_of, catalog_id, engine)
