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
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
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
#: Records per engine call at most, about (environment: SOCRED_BATCH_BUCKET_RECORDS).
BUCKET_RECORDS = 25_000_000


# ------------------------------------------------------------------ streaming the projection


def stream_records(platform: Platform, rows: int = STREAM_ROWS) -> Iterator[pa.RecordBatch]:
    """The records projection as Arrow batches of :data:`RECORD_SCHEMA`, in bounded memory."""
    with platform.engine.connect() as conn:
        raw = conn.connection.driver_connection
        if conn.dialect.name == "postgresql":
            yield from _stream_postgresql(raw, rows)
        else:
            yield from _stream_sqlite(raw, rows)


# One text per row, the fields joined by the unit separator (U+001F): SQLite builds it in C and Arrow
# splits a whole chunk at once, instead of nine Python objects per row. None of these columns can
# hold U+001F (identifiers, codes and ISO dates, all validated on the way in); a chunk that does
# anyway is read again row by row (by rowid).
_SEP = "\x1f"
_SQLITE_JOINED = (
    "SELECT "
    + " || char(31) || ".join(
        [
            "rowid",
            "record_id",
            "source",
            "subject_id",
            "kind",
            "subject_region",
            "category",
            "occurred_on",
            "retracted",
            "coalesce(repaired_on, '')",
        ]
    )
    + " FROM records"
)


def _prefetch(fetch: Callable[[], Any], depth: int = 2) -> Generator[Any, None, None]:
    """Items of ``fetch()`` (until it returns None), fetched by a thread ahead of the consumer.

    SQLite releases the GIL while it steps through rows, so reading the next chunk overlaps
    with the Arrow work on the current one.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def run() -> None:
        try:
            while not stop.is_set():
                item = fetch()
                put(item)
                if item is None:
                    return
        except BaseException as e:  # handed to the consumer
            put(e)

    worker = threading.Thread(target=run, name="socred-stream", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _stream_sqlite(raw: Any, rows: int) -> Iterator[pa.RecordBatch]:
    cur = raw.execute(_SQLITE_JOINED)

    def fetch() -> pa.Array | None:
        part = cur.fetchmany(rows)
        return pa.array([r[0] for r in part], pa.string()) if part else None

    chunks = _prefetch(fetch)
    try:
        for joined in chunks:
            k = len(joined)
            fields = pc.split_pattern(joined, _SEP).flatten()
            if len(fields) != 10 * k:
                yield _sqlite_slow(raw, [int(t.split(_SEP, 1)[0]) for t in joined.to_pylist()])
                continue
            col = [fields.take(pa.array(np.arange(i, 10 * k, 10))) for i in range(1, 10)]
            repaired = pc.if_else(pc.equal(col[8], ""), pa.scalar(None, pa.string()), col[8])
            yield pa.RecordBatch.from_arrays(
                [
                    *col[:6],
                    col[6].cast(pa.date32()),  # ISO text, as SQLAlchemy stores dates on SQLite
                    pc.not_equal(col[7], "0"),
                    repaired.cast(pa.date32()),
                ],
                schema=RECORD_SCHEMA,
            )
    finally:
        chunks.close()  # stops and joins the reading thread before the cursor goes
        cur.close()


def _sqlite_slow(raw: Any, rowids: list[int]) -> pa.RecordBatch:
    """A chunk whose fields could not be split safely: the same rows again, field by field."""
    rows: list[Any] = []
    for i in range(0, len(rowids), 4000):
        chunk = rowids[i : i + 4000]
        rows.extend(raw.execute(f"{_SELECT} WHERE rowid IN ({','.join('?' * len(chunk))})", chunk).fetchall())
    cols = list(zip(*rows, strict=True))
    return pa.RecordBatch.from_arrays(
        [
            *(pa.array(cols[i], pa.string()) for i in range(6)),
            pa.array(cols[6], pa.string()).cast(pa.date32()),
            pa.array(cols[7], pa.int64()).cast(pa.bool_()),
            pa.array(cols[8], pa.string()).cast(pa.date32()),
        ],
        schema=RECORD_SCHEMA,
    )


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
    return score_batches(stream_records(platform), versions, out, as_of, catalog_id, engine, entries)


def dataset_batches(path: Path, rows: int = STREAM_ROWS) -> Iterator[pa.RecordBatch]:
    """Records from an exported dataset (``socred export``, kind partitions) or any Parquet of the schema."""
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(path), format="parquet", partitioning="hive")
    # little read-ahead: the scanner's defaults (4 files, 16 batches) hold gigabytes at national scale
    for batch in dataset.to_batches(
        columns=RECORD_SCHEMA.names, batch_size=rows, batch_readahead=2, fragment_readahead=1
    ):
        yield pa.RecordBatch.from_arrays(
            [batch.column(name).cast(RECORD_SCHEMA.field(name).type) for name in RECORD_SCHEMA.names],
            schema=RECORD_SCHEMA,
        )


def score_dataset(
    path: Path, versions: list[Catalog], out: Path, as_of: date, catalog_id: str | None, engine: str
) -> dict[str, Any]:
    """score-all over an exported Parquet dataset instead of the database (a Spark cluster's input)."""
    import pyarrow.dataset as ds

    expected = ds.dataset(str(path), format="parquet", partitioning="hive").count_rows()
    return score_batches(dataset_batches(path), versions, out, as_of, catalog_id, engine, expected)
