"""The records projection as a stream of Arrow batches, out of the database or an exported dataset.

Bounded memory at national scale: the projection is streamed out of the database in large Arrow
batches — SQLite through the DBAPI cursor (one joined text per row, split by Arrow kernels),
PostgreSQL through ``COPY (SELECT ...) TO STDOUT`` parsed by Arrow's streaming CSV reader — never as
Python objects per row through SQLAlchemy. ``socred score-all``, ``socred export`` and
``socred catalog diff`` read it through here.
"""

from __future__ import annotations

import io
import queue
import shutil
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc
import pyarrow.parquet as pq
from sqlalchemy import Engine

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


# ------------------------------------------------------------------ streaming the projection


def stream_records(engine: Engine, rows: int = STREAM_ROWS) -> Iterator[pa.RecordBatch]:
    """The records projection as Arrow batches of :data:`RECORD_SCHEMA`, in bounded memory."""
    with engine.connect() as conn:
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


def write_records_parquet(engine: Engine, path: Path, chunk: int = STREAM_ROWS) -> int:
    """Stream the records projection into one Parquet file; returns the row count."""
    n = 0
    with pq.ParquetWriter(path, RECORD_SCHEMA) as writer:
        for batch in stream_records(engine, chunk):
            writer.write_batch(batch)
            n += batch.num_rows
    return n


def export_records(engine: Engine, out_dir: Path) -> dict[str, Any]:
    """Write the records projection as a Parquet dataset partitioned by kind (``kind=<kind>/``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("kind=*"):
        if old.is_dir():
            shutil.rmtree(old)
    schema = pa.schema([f for f in RECORD_SCHEMA if f.name != "kind"])
    writers: dict[str, pq.ParquetWriter] = {}
    n = 0
    try:
        for batch in stream_records(engine):
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
