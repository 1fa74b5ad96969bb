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

from socred.store.codes import codes_of

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
#: Rows per Arrow batch streamed out of the database.
STREAM_ROWS = 262_144

#: The columns as the database holds them (codes, day numbers), in the order both readers give them.
_RAW_SCHEMA = pa.schema(
    [
        ("source", pa.int32()),
        ("record_id", pa.string()),
        ("subject_id", pa.string()),
        ("kind", pa.int32()),
        ("category", pa.int32()),
        ("occurred_on", pa.int32()),
        ("retracted", pa.bool_()),
        ("repaired_on", pa.int32()),
    ]
)
_RAW_SELECT = "SELECT " + ", ".join(_RAW_SCHEMA.names) + " FROM records"
_KIND_NAMES = pa.array(["person", "organization"], pa.string())


# ------------------------------------------------------------------ streaming the projection


def stream_records(engine: Engine, rows: int = STREAM_ROWS) -> Iterator[pa.RecordBatch]:
    """The records projection as Arrow batches of :data:`RECORD_SCHEMA`, in bounded memory."""
    with engine.connect() as conn:
        names = _names(codes_of(conn).values(conn))
        raw = conn.connection.driver_connection
        if conn.dialect.name == "postgresql":
            stream = _stream_postgresql(raw, rows)
        else:
            stream = _stream_sqlite(raw, rows)
        for batch in stream:
            yield _finish(batch, names)


def _names(values: dict[int, str]) -> pa.Array:
    """The dictionary as an array indexed by code (null where no code was given)."""
    top = max(values, default=0)
    return pa.array([values.get(i) for i in range(top + 1)], pa.string())


def _finish(raw: pa.RecordBatch, names: pa.Array) -> pa.RecordBatch:
    """Codes and day numbers as :data:`RECORD_SCHEMA` has them: texts, the region, dates."""
    sid = raw.column("subject_id")
    org = pc.equal(raw.column("kind"), 1)
    region = pc.if_else(org, pc.utf8_slice_codeunits(sid, 2, 8), pc.utf8_slice_codeunits(sid, 0, 6))
    return pa.RecordBatch.from_arrays(
        [
            raw.column("record_id"),
            names.take(raw.column("source")),
            sid,
            _KIND_NAMES.take(raw.column("kind")),
            region,
            names.take(raw.column("category")),
            raw.column("occurred_on").cast(pa.date32()),
            raw.column("retracted"),
            raw.column("repaired_on").cast(pa.date32()),
        ],
        schema=RECORD_SCHEMA,
    )


# One text per row, the fields joined by the unit separator (U+001F): SQLite builds it in C and Arrow
# splits a whole chunk at once, instead of eight Python objects per row. No column can hold U+001F
# (codes, day numbers, and identifiers validated on the way in).
_SEP = "\x1f"
_SQLITE_JOINED = (
    "SELECT "
    + " || char(31) || ".join(
        [
            "source",
            "record_id",
            "subject_id",
            "kind",
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
            if len(fields) != 8 * k:
                raise ValueError("a records row holds the unit separator (U+001F): the projection is damaged")
            col = [fields.take(pa.array(np.arange(i, 8 * k, 8))) for i in range(8)]
            repaired = pc.if_else(pc.equal(col[7], ""), pa.scalar(None, pa.string()), col[7])
            yield pa.RecordBatch.from_arrays(
                [
                    col[0].cast(pa.int32()),
                    col[1],
                    col[2],
                    col[3].cast(pa.int32()),
                    col[4].cast(pa.int32()),
                    col[5].cast(pa.int32()),
                    pc.not_equal(col[6], "0"),
                    repaired.cast(pa.int32()),
                ],
                schema=_RAW_SCHEMA,
            )
    finally:
        chunks.close()  # stops and joins the reading thread before the cursor goes
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

    with raw.cursor() as cur, cur.copy(f"COPY ({_RAW_SELECT}) TO STDOUT (FORMAT csv)") as copy:
        stream = io.BufferedReader(_CopyStream(iter(copy)), buffer_size=1 << 20)
        reader = pcsv.open_csv(
            stream,
            read_options=pcsv.ReadOptions(column_names=_RAW_SCHEMA.names, block_size=16 << 20),
            convert_options=pcsv.ConvertOptions(
                column_types=_RAW_SCHEMA,
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
                yield from pa.Table.from_batches(pending, _RAW_SCHEMA).to_batches()
                pending, size = [], 0
        if pending:
            yield from pa.Table.from_batches(pending, _RAW_SCHEMA).to_batches()


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
