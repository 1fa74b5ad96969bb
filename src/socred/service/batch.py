"""Batch use cases: score every subject (``score-all``).

Bounded memory at national scale:

* the records projection is streamed out of the database in large Arrow batches
  (:mod:`socred.store.export`);
* while streaming, each row's (region, kind) group is assigned its catalog (region by longest
  prefix, version by date: the same rule as the per-subject path, evaluated once per group) and
  the row is written to that catalog's Parquet part;
* one relational pass per catalog runs on the chosen engine (DuckDB with a memory limit, or Spark);
* the per-catalog results are merged in subject order by an external sort when there are several.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc
import pyarrow.parquet as pq

from socred.domain import clock
from socred.domain.catalog import Catalog
from socred.domain.scoring import ScoringError, select_catalog
from socred.store.export import RECORD_SCHEMA, STREAM_ROWS, dataset_batches, stream_records

#: DuckDB's memory limit for the batch (environment: SOCRED_DUCKDB_MEMORY).
DUCKDB_MEMORY = "3GB"
#: Records per engine call at most, about (environment: SOCRED_BATCH_BUCKET_RECORDS).
BUCKET_RECORDS = 25_000_000

if TYPE_CHECKING:
    from socred.engines import BatchBackend
    from socred.service.platform import Platform

pc: Any = _pc  # pyarrow's stubs do not declare the generated compute functions


def _sql_path(p: Path) -> str:
    return str(p).replace("'", "''")


# ------------------------------------------------------------------ catalogs


def assign_catalogs(
    versions: list[Catalog], groups: list[tuple[str, str]], as_of: date, catalog_id: str | None
) -> tuple[dict[tuple[str, str], Catalog], int]:
    """Map (region, kind) groups to the catalog that scores them (:func:`select_catalog`, the rule of
    every path); count the groups no catalog serves. With ``catalog_id``, the groups are those its
    version in effect at ``as_of`` serves (region and kind), and no group counts as unserved."""
    assigned: dict[tuple[str, str], Catalog] = {}
    unserved = 0
    for region, kind in groups:
        if catalog_id is not None:
            cat = select_catalog(versions, region, kind, as_of, catalog_id)  # raises if none in effect
            if cat.serves_region(region) is not None and cat.serves_kind(kind):
                assigned[(region, kind)] = cat
            continue
        try:
            assigned[(region, kind)] = select_catalog(versions, region, kind, as_of)
        except ScoringError:
            unserved += 1
    return assigned, unserved


_HASH_WEIGHTS = (np.arange(1, 129, 2, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)


def subject_buckets(ids: pa.Array | pa.ChunkedArray, k: int) -> np.ndarray[Any, Any]:
    """A bucket in [0, k) per subject_id: a hash of its bytes, the same in every batch and run."""
    arr = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    n = len(arr)
    if k <= 1 or n == 0:
        return np.zeros(n, dtype=np.int64)
    arr = arr.cast(pa.string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1].astype(
        np.int64
    )
    lo, hi = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[lo:hi]
    lengths = np.diff(offsets)
    width = int(lengths[0])
    if 0 < width <= len(_HASH_WEIGHTS) and bool((lengths == width).all()):
        # the usual case: every identifier has 18 characters
        h = (data.reshape(n, width).astype(np.uint64) * _HASH_WEIGHTS[:width]).sum(axis=1, dtype=np.uint64)
    else:
        pos = np.arange(hi - lo, dtype=np.int64) - np.repeat(offsets[:-1] - lo, lengths)
        weighted = data.astype(np.uint64) * _HASH_WEIGHTS[pos % len(_HASH_WEIGHTS)]
        h = np.zeros(n, dtype=np.uint64)
        nonempty = lengths > 0
        if len(weighted):
            h[nonempty] = np.add.reduceat(weighted, (offsets[:-1] - lo)[nonempty])
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(29)
    return (h % np.uint64(k)).astype(np.int64)


class _Splitter:
    """Writes each streamed row to the Parquet part that scores it: its (region, kind) group's catalog,
    and one of ``buckets`` slices of that catalog's subjects (by a hash of subject_id), so that no
    engine call holds more than about :data:`BUCKET_RECORDS` records, however large the country."""

    def __init__(
        self, tmp: Path, versions: list[Catalog], as_of: date, catalog_id: str | None, buckets: int
    ) -> None:
        self.tmp = tmp
        self.versions = versions
        self.as_of = as_of
        self.catalog_id = catalog_id
        self.buckets = max(1, buckets)
        self.group_catalog: dict[str, int] = {}  # "region|kind" -> catalog index (-1: not scored)
        self.catalogs: list[Catalog] = []
        self.writers: dict[int, pq.ParquetWriter] = {}  # catalog index * buckets + bucket
        self.unassigned: pq.ParquetWriter | None = None
        self.pending: dict[int, list[pa.RecordBatch]] = {}
        self.pending_rows: dict[int, int] = {}
        self.unserved_groups = 0
        self.records = 0

    def path(self, part: int) -> Path:
        return self.tmp / f"part-{part}.parquet"

    def parts(self) -> list[tuple[Catalog, Path]]:
        """(catalog, part file) of every part written, by catalog ref then bucket."""
        out = [(self.catalogs[p // self.buckets], self.path(p)) for p in self.writers]
        return sorted(out, key=lambda cp: (cp[0].ref, cp[1].name))

    def _catalog_of(self, key: str) -> int:
        got = self.group_catalog.get(key)
        if got is not None:
            return got
        region, kind = key.split("|", 1)
        assigned, unserved = assign_catalogs(self.versions, [(region, kind)], self.as_of, self.catalog_id)
        self.unserved_groups += unserved
        cat = assigned.get((region, kind))
        index = -1
        if cat is not None:
            refs = [c.ref for c in self.catalogs]
            if cat.ref in refs:
                index = refs.index(cat.ref)
            else:
                index = len(self.catalogs)
                self.catalogs.append(cat)
        self.group_catalog[key] = index
        return index

    def write(self, batch: pa.RecordBatch) -> None:
        self.records += batch.num_rows
        keys = pc.binary_join_element_wise(batch.column("region"), batch.column("kind"), "|")
        encoded = pc.dictionary_encode(keys)
        cats = np.array([self._catalog_of(k) for k in encoded.dictionary.to_pylist()], dtype=np.int64)
        row_cat = cats[encoded.indices.to_numpy(zero_copy_only=False)]
        row_part = np.where(
            row_cat >= 0,
            row_cat * self.buckets + subject_buckets(batch.column("subject_id"), self.buckets),
            -1,
        )
        # one sort of the row numbers, then one take per part (not one filter pass per part). Each part
        # gets buffers of its own: a slice of a shared reordered batch would keep that whole batch alive
        # while the part waits to fill a row group, and a small part would keep every batch alive.
        order = np.argsort(row_part, kind="stable")
        sorted_parts = row_part[order]
        present = np.unique(sorted_parts)
        starts = np.searchsorted(sorted_parts, present, side="left")
        ends = np.searchsorted(sorted_parts, present, side="right")
        for part, lo, hi in zip(present.tolist(), starts.tolist(), ends.tolist(), strict=True):
            self._add(part, batch.take(pa.array(order[lo:hi])))

    def _add(self, part: int, rows: pa.RecordBatch) -> None:
        """Buffer a part's rows and write them in row groups of at least :data:`STREAM_ROWS`."""
        pending = self.pending.setdefault(part, [])
        pending.append(rows)
        self.pending_rows[part] = self.pending_rows.get(part, 0) + rows.num_rows
        if self.pending_rows[part] >= STREAM_ROWS:
            self._flush(part)

    def _flush(self, part: int) -> None:
        pending = self.pending.pop(part, [])
        self.pending_rows.pop(part, None)
        if not pending:
            return
        table = pa.Table.from_batches(pending, RECORD_SCHEMA)
        if part < 0:
            if self.unassigned is None:
                self.unassigned = pq.ParquetWriter(self.tmp / "unassigned.parquet", RECORD_SCHEMA)
            self.unassigned.write_table(table)
            return
        w = self.writers.get(part)
        if w is None:
            w = self.writers[part] = pq.ParquetWriter(self.path(part), RECORD_SCHEMA, compression="lz4")
        w.write_table(table, row_group_size=table.num_rows)

    def close(self) -> None:
        for part in list(self.pending):
            self._flush(part)
        for w in self.writers.values():
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


def _backend(engine: str, spill: Path) -> BatchBackend:
    """The runner; DuckDB with a memory limit and a directory to spill to, so memory stays bounded."""
    if engine == "duckdb":
        import duckdb

        from socred.engines.duckdb_engine import DuckDBBackend

        class SpillingDuckDB(DuckDBBackend):
            def _connect(self) -> duckdb.DuckDBPyConnection:
                con = super()._connect()
                con.execute(f"SET temp_directory = '{_sql_path(spill)}'")
                return con

        return SpillingDuckDB(memory_limit=os.environ.get("SOCRED_DUCKDB_MEMORY", DUCKDB_MEMORY))
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

    con = duckdb.connect(
        config={
            "memory_limit": os.environ.get("SOCRED_DUCKDB_MEMORY", DUCKDB_MEMORY),
            "temp_directory": str(parts[0].parent / "spill"),
        }
    )
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
    expected_records: int = 0,
) -> dict[str, Any]:
    """Score the records of ``batches`` (:data:`RECORD_SCHEMA`) into ``out``; the summary of score-all.

    ``expected_records`` (an estimate is enough) decides how many subject buckets each catalog's
    records are cut into, so that one engine call scores at most about :data:`BUCKET_RECORDS`.
    """
    if catalog_id is not None and not any(c.id == catalog_id for c in versions):
        raise ScoringError(f"no active catalog with id {catalog_id!r} is loaded")
    started = time.perf_counter()
    per_catalog: dict[str, int] = {}
    timings: dict[str, float] = {}
    per_bucket = int(os.environ.get("SOCRED_BATCH_BUCKET_RECORDS", BUCKET_RECORDS))
    buckets = max(1, -(-expected_records // per_bucket))
    # On a Spark cluster the per-catalog parts must be readable by every executor: point
    # SOCRED_BATCH_TMP at a file system they share (the default is the local temp directory).
    with tempfile.TemporaryDirectory(
        prefix="socred-batch-", dir=os.environ.get("SOCRED_BATCH_TMP")
    ) as tmp_name:
        tmp = Path(tmp_name)
        backend = _backend(engine, tmp / "spill")
        splitter = _Splitter(tmp, versions, as_of, catalog_id, buckets)
        try:
            for batch in batches:
                splitter.write(batch)
        finally:
            splitter.close()
        timings["stream_and_split"] = round(time.perf_counter() - started, 3)
        unserved = splitter.unserved_subjects()
        results: list[Path] = []
        t0 = time.perf_counter()
        for i, (cat, part) in enumerate(splitter.parts()):
            table = backend.score(part, cat, as_of)
            per_catalog[cat.ref] = per_catalog.get(cat.ref, 0) + table.num_rows
            if table.num_rows:
                path = tmp / f"result-{i}.parquet"
                pq.write_table(table, path)
                results.append(path)
            del table
            part.unlink()
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
        "buckets": buckets,
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
    with platform.engine.connect() as conn:
        from socred.store import repo

        entries = repo.head(conn)[0]  # at least as many ledger entries as records: enough to size buckets
    return score_batches(stream_records(platform.engine), versions, out, as_of, catalog_id, engine, entries)


def score_dataset(
    path: Path, versions: list[Catalog], out: Path, as_of: date, catalog_id: str | None, engine: str
) -> dict[str, Any]:
    """score-all over an exported Parquet dataset instead of the database (a Spark cluster's input)."""
    import pyarrow.dataset as ds

    expected = ds.dataset(str(path), format="parquet", partitioning="hive").count_rows()
    return score_batches(dataset_batches(path), versions, out, as_of, catalog_id, engine, expected)
