"""The ingestion engine: vectorised pre-validation of Arrow batches and the one transaction per batch.

Two ways in, one way to the database:

* **row by row** (JSONL, CSV, HTTP, any iterable of rows): every operation goes through
  :func:`socred.domain.records.validate`, the one definition of what is valid;
* **Arrow batches** (a Parquet file, an Arrow table: :class:`ArrowOperations`): the columns are
  checked all at once — identifier checksums, dates, categories, sizes, white space, the JSON
  text of the ledger body — to find the rows that are certainly fresh, valid submissions. Those
  rows never become Python objects: their canonical ledger body is assembled column-wise, byte for
  byte what :func:`~socred.domain.records.canonical` would write. Every other row — anything
  unusual, any rejection, any correction, retraction or repair, any record that already exists
  or occurs twice in the batch — is handed to :func:`~socred.domain.records.validate` like in the
  row-by-row path. So the vectorised checks only decide *which path* a row takes; what a row gets
  (accepted with which body, duplicate, rejected with which field and message) is always what
  ``validate`` says. ``tests/ingest`` proves the two paths equal on random operations.

Both paths then share :func:`apply_batch`: one transaction takes the ledger's append lock, reads
the current state of the records the batch touches, seals the accepted operations into the hash
chain (column-wise: entry bytes by Arrow, SHA-256 in one tight loop) and writes the ledger, the
records and the subjects through the raw driver (``executemany`` on SQLite, ``COPY`` on
PostgreSQL). Everything commits together or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc
from sqlalchemy import Connection, Engine

from socred.domain.records import (
    KNOWN_FIELDS,
    MAX_ATTRIBUTES,
    MAX_CASE_NUMBER,
    MAX_NAME,
    MAX_SUMMARY,
    Accepted,
    Context,
    Duplicate,
    RecordState,
    Rejection,
    canonical,
    record_key,
    validate,
)
from socred.ingest.readers import BadRow, Row, UnreadableFile
from socred.ledger.chain import utc_timestamp
from socred.store import ledger, repo
from socred.store.codes import codes_of

pc: Any = _pc  # pyarrow's stubs do not declare the generated compute functions

__all__ = [
    "ArrowOperations",
    "BatchOutcome",
    "Prepared",
    "Sealed",
    "apply_batch",
    "ingest_arrow",
    "prepare_rows",
    "prevalidate",
    "seal",
]

Array = np.ndarray[Any, Any]
OnReject = Callable[[int, Mapping[str, Any] | None, str, str], None]

#: Rows per Arrow batch read from a Parquet file.
READ_BATCH = 65_536
#: WAL pages after which SQLite checkpoints, on connections that ingest (16 KiB pages: 512 MiB).
SQLITE_WAL_AUTOCHECKPOINT = 32_768
#: Page cache of a connection that ingests (KiB): the indexes a bulk load touches at random stay in it.
SQLITE_INGEST_CACHE_KIB = 1_048_576
#: Operations per transaction of a bulk (Parquet) load. Random index inserts dirty one page each; a large
#: transaction writes each dirty page once for many inserts (measured: 4 x fewer bytes to the WAL).
PARQUET_BATCH = 100_000

# ------------------------------------------------------------------ sources


class ArrowOperations:
    """Operations held as Arrow record batches: a Parquet file, or an in-memory table.

    Iterating yields ``(line, operation)`` rows exactly like :func:`socred.ingest.readers.read` does
    for Parquet (row numbers from 1, null fields left out), so any consumer of rows can use it;
    :meth:`socred.service.platform.Platform.ingest` recognises it and takes the vectorised path.
    """

    def __init__(self, batches: Callable[[], Iterator[pa.RecordBatch]], name: str) -> None:
        self._batches = batches
        self.name = name
        self._rows: Iterator[Row] | None = None

    @classmethod
    def parquet(cls, path: Path, batch_rows: int = READ_BATCH) -> ArrowOperations:
        def batches() -> Iterator[pa.RecordBatch]:
            import pyarrow.parquet as pq

            try:
                pf = pq.ParquetFile(path)
            except Exception as e:  # pyarrow raises several kinds here
                raise UnreadableFile(f"{path.name} is not a readable Parquet file: {e}") from None
            yield from pf.iter_batches(batch_size=batch_rows)

        return cls(batches, path.name)

    @classmethod
    def table(cls, table: pa.Table, batch_rows: int = READ_BATCH) -> ArrowOperations:
        return cls(lambda: iter(table.to_batches(max_chunksize=batch_rows)), "table")

    def batches(self) -> Iterator[pa.RecordBatch]:
        return self._batches()

    def __iter__(self) -> Iterator[Row]:
        return self

    def __next__(self) -> Row:
        if self._rows is None:
            self._rows = self._iter_rows()
        return next(self._rows)

    def _iter_rows(self) -> Iterator[Row]:
        n = 0
        for batch in self.batches():
            for row in batch.to_pylist():
                n += 1
                yield n, {k: v for k, v in row.items() if v is not None}


# ------------------------------------------------------------------ vectorised pre-validation

# Python's str.strip() removes exactly the characters for which str.isspace() is true.
_PY_SPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
_SPACE_CLASS = "".join(f"\\x{{{ord(c):x}}}" for c in _PY_SPACE)
#: Non-empty, and neither starts nor ends with white space: ``s.strip() == s != ""``.
_TRIMMED = f"(?s)^[^{_SPACE_CLASS}](?:.*[^{_SPACE_CLASS}])?$"
#: Characters json.dumps(..., ensure_ascii=False) escapes.
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'
_RECORD_ID = r"^[A-Za-z0-9._:/-]{1,128}$"
_ID_SHAPE = r"^[0-9A-Za-z]{18}$"
_DATE_SHAPE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_REGION = r"^[0-9]{6}$"

_RES_WEIGHTS = np.array([pow(2, 18 - i, 11) for i in range(1, 18)], dtype=np.int64)
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = np.array([pow(3, i - 1, 31) for i in range(1, 18)], dtype=np.int64)
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_USCC_INDEX = np.full(256, -1, dtype=np.int64)
for _i, _ch in enumerate(_USCC_ALPHABET):
    _USCC_INDEX[ord(_ch)] = _i
_BASE36 = np.full(256, -1, dtype=np.int64)
for _ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _BASE36[ord(_ch)] = int(_ch, 36)
_DAYS_IN_MONTH = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_FILLER_ID = "0" * 18
_FILLER_DATE = "0000-00-00"


def _mask(arr: pa.Array | pa.ChunkedArray) -> Array:
    """An Arrow boolean array as numpy, null counted as False."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _matches(arr: pa.Array, pattern: str) -> Array:
    return _mask(pc.match_substring_regex(arr, pattern))


def _ascii_matrix(arr: pa.Array, width: int) -> Array:
    """The bytes of a string array whose values all have ``width`` ASCII characters, as (n, width)."""
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    n = len(arr)
    if n == 0:
        return np.zeros((0, width), dtype=np.uint8)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return data.reshape(n, width)


def _digits_value(m: Array) -> Array:
    return (m.astype(np.int64) - 48) @ (10 ** np.arange(m.shape[1] - 1, -1, -1, dtype=np.int64))


def _real_date(y: Array, mo: Array, d: Array) -> Array:
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    month_ok = (mo >= 1) & (mo <= 12)
    dim = _DAYS_IN_MONTH[np.clip(mo, 0, 12)] - ((mo == 2) & ~leap)
    return month_ok & (d >= 1) & (d <= dim)


def _subject_ids(values: pa.Array, candidate: Array, today_ymd: int) -> tuple[Array, Array, pa.Array]:
    """(is person, is organization, normalised value) as parse_subject_id reads each candidate.

    A value is a person when valid as a resident number (digits, MOD 11-2, a real date of birth
    from 1900 to today), else an organization when valid as a unified social credit code (the
    alphabet, MOD 31, the GB 11714 check of characters 9-17) — the order of parse_subject_id.
    """
    upper = pc.utf8_upper(pc.if_else(pa.array(candidate), values, _FILLER_ID))
    m = _ascii_matrix(upper, 18)
    d = m.astype(np.int64) - 48
    head_digits = np.all((m[:, :17] >= 48) & (m[:, :17] <= 57), axis=1)
    last = m[:, 17]
    last_digit = (last >= 48) & (last <= 57)
    check = np.where(last == ord("X"), 10, d[:, 17])
    res_sum = (d[:, :17] @ _RES_WEIGHTS + check) % 11 == 1
    y = d[:, 6:10] @ np.array([1000, 100, 10, 1])
    mo = d[:, 10:12] @ np.array([10, 1])
    dd = d[:, 12:14] @ np.array([10, 1])
    ymd = y * 10000 + mo * 100 + dd
    birth = (ymd >= 19000101) & (ymd <= today_ymd) & _real_date(y, mo, dd)
    person = candidate & head_digits & (last_digit | (last == ord("X"))) & res_sum & birth
    idx = _USCC_INDEX[m]
    in_alphabet = np.all(idx >= 0, axis=1)
    uscc_sum = (idx[:, :17] @ _USCC_WEIGHTS + idx[:, 17]) % 31 == 0
    org_check = np.where(m[:, 16] == ord("X"), 10, d[:, 16])
    org_check_ok = ((m[:, 16] >= 48) & (m[:, 16] <= 57)) | (m[:, 16] == ord("X"))
    org_sum = (_BASE36[m[:, 8:16]] @ _ORG_WEIGHTS + org_check) % 11 == 0
    org = candidate & ~person & in_alphabet & uscc_sum & org_check_ok & org_sum
    return person, org, upper


def _json_str(arr: pa.Array) -> pa.Array:
    """Each (non-null) string as json.dumps(s, ensure_ascii=False) writes it."""
    quoted = pc.binary_join_element_wise('"', arr, '"', "")
    needs = _matches(arr, _NEEDS_ESCAPE)
    if needs.any():
        where = np.flatnonzero(needs)
        escaped = [json.dumps(s, ensure_ascii=False) for s in arr.take(pa.array(where)).to_pylist()]
        quoted = pc.replace_with_mask(quoted, pa.array(needs), pa.array(escaped, pa.string()))
    return quoted


@dataclass
class Prepared:
    """A batch of rows, each either *fast* (a certainly valid fresh submission, body prepared) or not.

    ``fast`` holds, for the fast rows only and in row order, the columns of the records row and
    ``body`` (the canonical ledger body). ``ops`` holds the operation of every other row
    (a mapping, or a :class:`BadRow` the reader could not read) and ``None`` for fast rows;
    :meth:`op` builds a fast row's mapping when it is needed after all.
    """

    lines: list[int]
    keys: list[str | None]
    ops: list[Mapping[str, Any] | BadRow | None]
    fast_pos: Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    fast: pa.Table | None = None
    batch: pa.RecordBatch | None = None

    def __len__(self) -> int:
        return len(self.lines)

    def op(self, pos: int) -> Mapping[str, Any] | BadRow:
        got = self.ops[pos]
        if got is not None:
            return got
        assert self.batch is not None
        row = self.batch.slice(pos, 1).to_pylist()[0]
        return {k: v for k, v in row.items() if v is not None}

    def slice(self, lo: int, hi: int) -> Prepared:
        sel = (self.fast_pos >= lo) & (self.fast_pos < hi)
        fast = None
        if self.fast is not None:
            first = int(np.searchsorted(self.fast_pos, lo))
            fast = self.fast.slice(first, int(sel.sum()))
        return Prepared(
            self.lines[lo:hi],
            self.keys[lo:hi],
            self.ops[lo:hi],
            self.fast_pos[sel] - lo,
            fast,
            self.batch.slice(lo, hi - lo) if self.batch is not None else None,
        )


def prepare_rows(rows: list[Row]) -> Prepared:
    """Rows read one by one: every row takes the path of validate()."""
    ops: list[Mapping[str, Any] | BadRow | None] = [op for _, op in rows]
    keys = [None if isinstance(op, BadRow) or op is None else record_key(op) for op in ops]
    return Prepared([line for line, _ in rows], keys, ops)


def _string_column(batch: pa.RecordBatch, name: str, ok: Array) -> pa.Array | None:
    """The column as plain strings; None when absent or all null. Non-string values clear ``ok``."""
    i = batch.schema.get_field_index(name)
    if i < 0:
        return None
    col = batch.column(i)
    typ = col.type
    if pa.types.is_null(typ):
        return None
    if (
        (pa.types.is_dictionary(typ) and pa.types.is_string(typ.value_type))
        or pa.types.is_large_string(typ)
        or pa.types.is_string_view(typ)
    ):
        col = col.cast(pa.string())
    elif not pa.types.is_string(typ):
        ok &= _mask(pc.is_null(col))
        return None
    return col


def _optional_text(batch: pa.RecordBatch, name: str, limit: int, ok: Array) -> tuple[Array, pa.Array | None]:
    """(present, column) of an optional text field; rows it would reject or change leave the fast path."""
    col = _string_column(batch, name, ok)
    if col is None:
        return np.zeros(batch.num_rows, dtype=bool), None
    absent = _mask(pc.is_null(col)) | _mask(pc.equal(col, ""))
    fine = _matches(col, _TRIMMED) & _mask(pc.less_equal(pc.utf8_length(col), limit))
    ok &= absent | fine
    return ~absent, col


def prevalidate(batch: pa.RecordBatch, ctx: Context, first_line: int) -> Prepared:
    """Sort the rows of ``batch`` into fast ones (body and records row prepared) and the others.

    A row is fast only if :func:`~socred.domain.records.validate` would accept it as a submission
    of a record that does not exist yet, with exactly the body built here; whether the record
    exists is decided later, under the ledger lock (:func:`apply_batch`).
    """
    n = batch.num_rows
    lines = list(range(first_line, first_line + n))
    ok = np.ones(n, dtype=bool)
    for name in batch.schema.names:
        if name not in KNOWN_FIELDS:
            ok &= _mask(pc.is_null(batch.column(name)))
    op = _string_column(batch, "op", ok)
    if op is not None:
        ok &= _mask(pc.is_null(op)) | _mask(pc.equal(op, "submit"))
    src = _string_column(batch, "source", ok)
    if src is not None:
        ok &= _mask(pc.is_null(src)) | _mask(pc.equal(src, ctx.source))
    rid = _string_column(batch, "record_id", ok)
    sid = _string_column(batch, "subject_id", ok)
    name = _string_column(batch, "subject_name", ok)
    cat = _string_column(batch, "category", ok)
    if rid is None or sid is None or name is None or cat is None:
        ok[:] = False
    else:
        ok &= _matches(rid, _RECORD_ID)
        ok &= _matches(name, _TRIMMED) & _mask(pc.less_equal(pc.utf8_length(name), MAX_NAME))
    # occurred_on: ISO text or an Arrow date, a real date, not after today
    occ_text: pa.Array | None = None
    i_occ = batch.schema.get_field_index("occurred_on")
    today_iso = ctx.today.isoformat()
    if i_occ >= 0 and pa.types.is_date32(batch.column(i_occ).type):
        dcol = batch.column(i_occ)
        ok &= _mask(pc.less_equal(dcol, pa.scalar(ctx.today, pa.date32())))
        ok &= _mask(pc.greater_equal(dcol, pa.scalar(date(1000, 1, 1), pa.date32())))
        occ_text = dcol.cast(pa.string())
    else:
        col = _string_column(batch, "occurred_on", ok)
        if col is None:
            ok[:] = False
        else:
            shaped = _matches(col, _DATE_SHAPE)
            m = _ascii_matrix(pc.if_else(pa.array(shaped), col, _FILLER_DATE), 10)
            y, mo, d = _digits_value(m[:, 0:4]), _digits_value(m[:, 5:7]), _digits_value(m[:, 8:10])
            ok &= shaped & (y >= 1) & _real_date(y, mo, d) & _mask(pc.less_equal(col, today_iso))
            occ_text = col
    case_present, case = _optional_text(batch, "case_number", MAX_CASE_NUMBER, ok)
    summary_present, summary = _optional_text(batch, "summary", MAX_SUMMARY, ok)
    region = _string_column(batch, "region", ok)
    region_present = np.zeros(n, dtype=bool)
    if region is not None:
        region_absent = _mask(pc.is_null(region)) | _mask(pc.equal(region, ""))
        ok &= region_absent | _matches(region, _REGION)
        region_present = ~region_absent
    # subject identifiers and, by kind, the categories this provider may submit for it
    person = org = np.zeros(n, dtype=bool)
    sid_norm: pa.Array | None = None
    if sid is not None and cat is not None:
        shaped = ok & _matches(sid, _ID_SHAPE)
        today_ymd = ctx.today.year * 10000 + ctx.today.month * 100 + ctx.today.day
        person, org, sid_norm = _subject_ids(sid, shaped, today_ymd)
        ok &= person | org
        for kind, rows in (("person", person), ("organization", org)):
            allowed = sorted(
                c
                for c in ctx.authorized
                if kind in ctx.kinds_by_category.get(c, ()) and len(c) <= 64 and c == c.strip().upper()
            )
            bad = rows & ~_mask(pc.is_in(cat, value_set=pa.array(allowed, pa.string())))
            ok &= ~bad
    # attributes: JSON objects, parsed and re-serialised by the same functions validate uses
    attr_canon: dict[int, str] = {}
    attr_record: dict[int, str | None] = {}
    attrs = _string_column(batch, "attributes", ok)
    if attrs is not None:
        absent = _mask(pc.is_null(attrs)) | _mask(pc.equal(attrs, ""))
        todo = np.flatnonzero(ok & ~absent)
        for pos, text in zip(todo.tolist(), attrs.take(pa.array(todo)).to_pylist(), strict=True):
            try:
                value = json.loads(text)
            except ValueError:
                ok[pos] = False
                continue
            if not isinstance(value, dict):
                ok[pos] = False
                continue
            c = canonical(value)
            if len(c.encode()) > MAX_ATTRIBUTES:
                ok[pos] = False
                continue
            attr_canon[pos] = c
            attr_record[pos] = json.dumps(value, ensure_ascii=False, sort_keys=True) if value else None

    fast_pos = np.flatnonzero(ok)
    ops: list[Mapping[str, Any] | BadRow | None] = [None] * n
    keys: list[str | None] = [None] * n
    slow = np.flatnonzero(~ok)
    if len(slow):
        for pos, row in zip(slow.tolist(), batch.take(pa.array(slow)).to_pylist(), strict=True):
            op_row = {k: v for k, v in row.items() if v is not None}
            ops[pos] = op_row
            keys[pos] = record_key(op_row)
    if not len(fast_pos):
        return Prepared(lines, keys, ops, fast_pos, None, batch)
    assert rid is not None and sid_norm is not None and name is not None and cat is not None
    assert occ_text is not None
    take = pa.array(fast_pos)
    f_rid = rid.take(take)
    for pos, key in zip(fast_pos.tolist(), f_rid.to_pylist(), strict=True):
        keys[pos] = key
    f_sid = sid_norm.take(take)
    f_org = org[fast_pos]
    f_kind = pc.if_else(pa.array(f_org), "organization", "person")
    f_subject_region = pc.if_else(
        pa.array(f_org), pc.utf8_slice_codeunits(f_sid, 2, 8), pc.utf8_slice_codeunits(f_sid, 0, 6)
    )
    f_name = name.take(take)
    f_cat = cat.take(take)
    f_occ = occ_text.take(take)
    nf = len(fast_pos)
    null = pa.nulls(nf, pa.string())
    f_case = pc.if_else(pa.array(case_present[fast_pos]), case.take(take), null) if case is not None else null
    f_summary = (
        pc.if_else(pa.array(summary_present[fast_pos]), summary.take(take), null)
        if summary is not None
        else null
    )
    f_region = (
        pc.if_else(pa.array(region_present[fast_pos]), region.take(take), f_subject_region)
        if region is not None
        else f_subject_region
    )
    canon = [attr_canon.get(p) for p in fast_pos.tolist()] if attr_canon else None
    f_attr_canon = pa.array(canon, pa.string()) if canon is not None else null
    f_attr_record = (
        pa.array([attr_record.get(p) for p in fast_pos.tolist()], pa.string()) if attr_record else null
    )
    empty = ""
    body = pc.binary_join_element_wise(
        "{",
        pc.if_else(
            pc.is_null(f_attr_canon),
            empty,
            pc.binary_join_element_wise('"attributes":', f_attr_canon, ",", ""),
        ),
        pc.if_else(
            pc.is_null(f_case),
            empty,
            pc.binary_join_element_wise('"case_number":', _json_str(f_case), ",", ""),
        ),
        '"category":',
        _json_str(f_cat),
        ',"occurred_on":"',
        f_occ,
        '","op":"submit","record_id":"',
        f_rid,
        '","region":"',
        f_region,
        '","source":',
        json.dumps(ctx.source, ensure_ascii=False),
        ',"subject_id":"',
        f_sid,
        '","subject_name":',
        _json_str(f_name),
        pc.if_else(
            pc.is_null(f_summary), empty, pc.binary_join_element_wise(',"summary":', _json_str(f_summary), "")
        ),
        "}",
        "",
    )
    fast = pa.table(
        {
            "record_id": f_rid,
            "subject_id": f_sid,
            "kind": f_kind,
            "subject_region": f_subject_region,
            "subject_name": f_name,
            "category": f_cat,
            "occurred_on": f_occ,
            "case_number": f_case,
            "summary": f_summary,
            "region": f_region,
            "attributes": f_attr_record,
            "body": body,
        }
    )
    return Prepared(lines, keys, ops, fast_pos, fast, batch)


# ------------------------------------------------------------------ the hash chain, column-wise


@dataclass
class Sealed:
    """Entries sealed into the chain: each entry's bytes (what its hash covers) and 32-byte hash."""

    first_seq: int
    lines: list[bytes]
    digests: list[bytes]

    @property
    def last_hash(self) -> str:
        return self.digests[-1].hex()


def seal(
    start_seq: int, prev_hash: str, recorded_at: str, actor: str, kinds: pa.Array, bodies: pa.Array
) -> Sealed:
    """Entries ``start_seq, start_seq + 1, ...`` after ``prev_hash``, sealed.

    Byte for byte :func:`socred.ledger.chain.chain`: each entry hashes ``prev_hash`` (32 raw bytes)
    followed by the canonical JSON of ``{actor, body, kind, recorded_at, seq}`` (built here by Arrow
    string kernels with the keys in sorted order); those bytes are also what the ledger stores.
    """
    n = len(bodies)
    seq = pa.array(np.arange(start_seq, start_seq + n, dtype=np.int64))
    kind_json = pc.binary_join_element_wise('"', kinds, '"', "")  # op names: nothing to escape
    entries = pc.binary_join_element_wise(
        '{"actor":' + json.dumps(actor, ensure_ascii=False) + ',"body":',
        bodies,
        ',"kind":',
        kind_json,
        ',"recorded_at":' + json.dumps(recorded_at) + ',"seq":',
        seq.cast(pa.string()),
        "}",
        "",
    ).cast(pa.binary())
    prev = bytes.fromhex(prev_hash)
    sha = hashlib.sha256
    lines: list[bytes] = entries.to_pylist()
    digests: list[bytes] = []
    append = digests.append
    for e in lines:
        prev = sha(prev + e).digest()
        append(prev)
    return Sealed(start_seq, lines, digests)


# ------------------------------------------------------------------ one transaction


@dataclass
class BatchOutcome:
    accepted: int = 0
    duplicates: int = 0
    errors: list[tuple[int, Mapping[str, Any] | None, str, str]] = field(default_factory=list)


def _subjects_table(
    ids: pa.Array, kinds: pa.Array, regions: pa.Array, names: pa.Array, seqs: pa.Array
) -> pa.Table:
    """One row per subject: the name of its highest seq, first_seq and last_seq; sorted by subject_id."""
    t = pa.table({"subject_id": ids, "kind": kinds, "region": regions, "name": names, "seq": seqs})
    order = pc.sort_indices(t, [("subject_id", "ascending"), ("seq", "ascending")])
    t = t.take(order)
    sid = t.column("subject_id").combine_chunks()
    n = len(sid)
    starts = np.ones(n, dtype=bool)
    if n > 1:
        starts[1:] = _mask(pc.not_equal(sid.slice(1), sid.slice(0, n - 1)))
    first = np.flatnonzero(starts)
    last = np.append(first[1:] - 1, n - 1)
    seq = t.column("seq").to_numpy()
    last_t = t.take(pa.array(last))
    return pa.table(
        {
            "subject_id": last_t.column("subject_id"),
            "kind": t.column("kind").take(pa.array(first)),
            "region": t.column("region").take(pa.array(first)),
            "name": last_t.column("name"),
            "first_seq": pa.array(seq[first]),
            "last_seq": pa.array(seq[last]),
        }
    )


def _coded(column: pa.Array | pa.ChunkedArray, codes: Mapping[str, int]) -> pa.Array:
    """A string column as its dictionary codes (every value has one)."""
    keys = list(codes)
    index = pc.index_in(column, value_set=pa.array(keys, pa.string()))
    values = np.asarray([codes[k] for k in keys], dtype=np.int64)
    return pa.array(values[index.to_numpy(zero_copy_only=False)])


def _fast_records(
    fast: pa.Table, source_code: int, category_codes: Mapping[str, int], seqs: pa.Array
) -> pa.Table:
    """The ``records`` rows of fresh submissions, in :data:`socred.store.repo.RECORD_COLUMNS` order."""
    nf = fast.num_rows
    day = pc.cast(pc.cast(fast.column("occurred_on"), pa.date32()), pa.int32())
    own_region = pc.if_else(
        pc.equal(fast.column("region"), fast.column("subject_region")),
        pa.scalar(None, pa.string()),
        fast.column("region"),
    )
    return pa.table(
        {
            "source": pa.array(np.full(nf, source_code, dtype=np.int64)),
            "record_id": fast.column("record_id"),
            "subject_id": fast.column("subject_id"),
            "kind": pa.array(_mask(pc.equal(fast.column("kind"), "organization")).astype(np.int64)),
            "category": _coded(fast.column("category"), category_codes),
            "occurred_on": day,
            "retracted": pa.array(np.zeros(nf, dtype=bool)),
            "repaired_on": pa.nulls(nf, pa.int32()),
            "first_seq": seqs,
            "last_seq": seqs,
            "case_number": fast.column("case_number"),
            "region": own_region,
        }
    )


def _sqlite_ingest_pragmas(conn: Connection) -> None:
    raw = repo.driver(conn)
    raw.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT}")
    raw.execute(f"PRAGMA cache_size=-{SQLITE_INGEST_CACHE_KIB}")


def apply_batch(engine: Engine, ctx: Context, prep: Prepared) -> BatchOutcome:
    """Validate and apply one batch in one transaction (the ledger lock is held throughout)."""
    with engine.begin() as conn:
        return apply_in(conn, ctx, prep)


def apply_in(conn: Connection, ctx: Context, prep: Prepared) -> BatchOutcome:
    """:func:`apply_batch` inside the caller's transaction (federation applies a page of several sources
    and its provenance in one transaction)."""
    out = BatchOutcome()
    sqlite = conn.dialect.name != "postgresql"
    if sqlite:
        # Checkpoint the WAL every 128 MB rather than every 4 MB: a batch dirties thousands of
        # random index pages, and fewer, larger checkpoints write each of them once.
        _sqlite_ingest_pragmas(conn)
    seq0, head = ledger.lock_head(conn)
    keys = prep.keys
    existing = repo.record_rows(conn, ctx.source, {k for k in keys if k is not None})
    # fast rows stay fast only for records that do not exist and occur once in the batch
    fast_pos = prep.fast_pos
    keep = np.ones(len(fast_pos), dtype=bool)
    present = [k for k in keys if k is not None]
    repeated: set[str] = set()
    if len(set(present)) != len(present):
        seen: set[str] = set()
        for k in present:
            if k in seen:
                repeated.add(k)
            seen.add(k)
    if len(fast_pos) and (existing or repeated):
        for i, p in enumerate(fast_pos.tolist()):
            k = keys[p]
            if k in existing or k in repeated:
                keep[i] = False
    ops = list(prep.ops)
    for i in np.flatnonzero(~keep).tolist():
        p = int(fast_pos[i])
        ops[p] = prep.op(p)
    # every other row: validate() against the state after the rows before it (existing records'
    # states replayed from the ledger)
    states: dict[str, RecordState] = (
        {rid: st for (_s, rid), st in repo.replay(conn, list(existing.values())).items()} if existing else {}
    )
    acc_pos: list[int] = []
    acc: list[Accepted] = []
    for p, op in enumerate(ops):
        if op is None:
            continue
        if isinstance(op, BadRow):
            out.errors.append((prep.lines[p], None, op.field, op.message))
            continue
        key = keys[p]
        outcome = validate(op, states.get(key) if key else None, ctx)
        if isinstance(outcome, Rejection):
            out.errors.append((prep.lines[p], op, outcome.field, outcome.message))
        elif isinstance(outcome, Duplicate):
            out.duplicates += 1
        else:
            states[outcome.state.record_id] = outcome.state
            acc_pos.append(p)
            acc.append(outcome)
    kept = fast_pos[keep]
    fast = prep.fast.filter(pa.array(keep)) if prep.fast is not None and len(kept) else None
    nf = len(kept)
    total = nf + len(acc)
    out.accepted = total
    if total == 0:
        return out
    # ledger entries in row order
    slow_bodies = pa.array(
        [a.state.submit_body if a.op == "submit" else canonical(a.body) for a in acc], pa.string()
    )
    slow_kinds = pa.array([a.op for a in acc], pa.string())
    if fast is not None and acc:
        order = np.argsort(np.concatenate([kept, np.asarray(acc_pos, dtype=np.int64)]), kind="stable")
        bodies = pa.concat_arrays([fast.column("body").combine_chunks(), slow_bodies]).take(pa.array(order))
        kinds = pa.concat_arrays([pa.array(["submit"] * nf, pa.string()), slow_kinds]).take(pa.array(order))
        rank = np.empty(total, dtype=np.int64)
        rank[order] = np.arange(total)
    elif fast is not None:
        bodies = fast.column("body").combine_chunks()
        kinds = pa.array(["submit"] * nf, pa.string())
        rank = np.arange(total)
    else:
        bodies, kinds, rank = slow_bodies, slow_kinds, np.arange(total)
    sealed = seal(seq0 + 1, head, utc_timestamp(), ctx.source, kinds, bodies)
    ledger.write_entries(conn, seq0 + 1, sealed.lines, sealed.digests)
    seq_np = np.arange(seq0 + 1, seq0 + 1 + total, dtype=np.int64)
    subject_parts: list[pa.Table] = []
    if fast is not None:
        codes = codes_of(conn)
        source_code = codes.ensure(conn, "source", [ctx.source])[ctx.source]
        category_codes = codes.ensure(conn, "category", pc.unique(fast.column("category")).to_pylist())
        fseq = pa.array(seq_np[rank[:nf]])
        repo.insert_rows(
            conn, "records", repo.RECORD_COLUMNS, _fast_records(fast, source_code, category_codes, fseq)
        )
        subject_parts.append(
            pa.table(
                {
                    "subject_id": fast.column("subject_id"),
                    "kind": fast.column("kind"),
                    "region": fast.column("subject_region"),
                    "name": fast.column("subject_name"),
                    "seq": fseq,
                }
            )
        )
    if acc:
        aseq = seq_np[rank[nf:]].tolist()
        touched = repo.save_ops(conn, [(a.op, a.state, s) for a, s in zip(acc, aseq, strict=True)])
        subject_parts.append(
            pa.table(
                {
                    "subject_id": pa.array([r[0] for r in touched], pa.string()),
                    "kind": pa.array([r[1] for r in touched], pa.string()),
                    "region": pa.array([r[2] for r in touched], pa.string()),
                    "name": pa.array([r[3] for r in touched], pa.string()),
                    "seq": pa.array([r[4] for r in touched], pa.int64()),
                }
            )
        )
    s = pa.concat_tables(subject_parts)
    subjects = _subjects_table(s["subject_id"], s["kind"], s["region"], s["name"], s["seq"])
    repo.upsert_subjects(conn, subjects)
    ledger.set_head(conn, int(seq_np[-1]), sealed.last_hash)
    return out


# ------------------------------------------------------------------ the vectorised path


@dataclass
class Speculation:
    """A part of fresh submissions made ready to write off the lock: sealed as if it follows the ledger
    head ``(seq0, head)`` and no record of it exists yet. :func:`apply_speculated` checks both under the
    append lock and writes it as it is, or declines (then the part takes :func:`apply_in`)."""

    seq0: int
    head: str
    keys: list[str]
    blocks: list[tuple[Any, ...]]
    records: Any  # rows for the driver: tuples (SQLite) or CSV bytes for COPY (PostgreSQL)
    subjects: Any
    last_seq: int
    last_hash: str


def speculate(
    part: Prepared,
    ctx: Context,
    seq0: int,
    head: str,
    codes: Mapping[str, int],
    source_code: int,
    postgres: bool,
) -> Speculation | None:
    """The payload of a part made only of fresh submissions (None when it has any other row)."""
    fast = part.fast
    if fast is None or fast.num_rows != len(part) or any(op is not None for op in part.ops):
        return None
    keys = [k for k in part.keys if k is not None]
    if len(keys) != len(part) or len(set(keys)) != len(keys):
        return None
    categories = pc.unique(fast.column("category")).to_pylist()
    if any(c not in codes for c in categories):
        return None
    n = fast.num_rows
    sealed = seal(
        seq0 + 1,
        head,
        utc_timestamp(),
        ctx.source,
        pa.array(["submit"] * n, pa.string()),
        fast.column("body").combine_chunks(),
    )
    seqs = pa.array(np.arange(seq0 + 1, seq0 + 1 + n, dtype=np.int64))
    records = _fast_records(fast, source_code, codes, seqs)
    subjects = _subjects_table(
        fast.column("subject_id"),
        fast.column("kind"),
        fast.column("subject_region"),
        fast.column("subject_name"),
        seqs,
    )
    if postgres:
        rec_payload: Any = records
        subj_payload: Any = subjects
    else:
        order = pc.sort_indices(records, [("source", "ascending"), ("record_id", "ascending")])
        rec_payload = repo.tuples(records.take(order))
        subj_payload = repo.tuples(subjects)
    return Speculation(
        seq0,
        head,
        keys,
        ledger.block_rows(seq0 + 1, sealed.lines, sealed.digests),
        rec_payload,
        subj_payload,
        seq0 + n,
        sealed.last_hash,
    )


def apply_speculated(conn: Connection, ctx: Context, spec: Speculation) -> BatchOutcome | None:
    """Write a speculated part if the ledger head is still where it was sealed and none of its records
    exists; None (nothing written) otherwise."""
    if conn.dialect.name != "postgresql":
        _sqlite_ingest_pragmas(conn)
    seq0, head = ledger.lock_head(conn)
    if (seq0, head) != (spec.seq0, spec.head) or repo.record_rows(conn, ctx.source, spec.keys):
        return None
    ledger.insert_blocks(conn, spec.blocks)
    repo.insert_rows(conn, "records", repo.RECORD_COLUMNS, spec.records)
    repo.upsert_subjects(conn, spec.subjects)
    ledger.set_head(conn, spec.last_seq, spec.last_hash)
    return BatchOutcome(accepted=len(spec.keys))


def ingest_arrow(
    engine: Engine,
    ctx: Context,
    source: ArrowOperations,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[BatchOutcome]:
    """Pre-validate ``source`` batch by batch and apply it ``batch_size`` operations per transaction.

    Two threads share the work: a producer reads, pre-validates and — for parts made only of fresh
    submissions — seals them ahead (as if each follows the one before on the ledger) and builds their
    rows; this thread takes the append lock, checks that the head and the records are as the producer
    assumed, and writes (:func:`apply_speculated`). Whatever was assumed wrongly (another writer came
    first, a record exists, the part has corrections) goes the ordinary way (:func:`apply_in`). The
    database's own work runs with the GIL released, so the two overlap on two cores.
    """
    import queue
    import threading

    with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        predicted = ledger.head(conn)
        codes = codes_of(conn)
        category_codes = codes.ids(conn, "category", ctx.kinds_by_category)
        source_code = codes.get(conn, "source", ctx.source)
    actual: list[tuple[int, str] | None] = [None]  # the head after the writer's last commit, when it resynced
    q: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        nonlocal predicted
        try:
            line = 1
            for batch in source.batches():
                if batch.num_rows == 0:
                    continue
                prep = prevalidate(batch, ctx, line)
                line += batch.num_rows
                for lo in range(0, len(prep), batch_size):
                    part = prep.slice(lo, min(len(prep), lo + batch_size))
                    if actual[0] is not None:
                        predicted, actual[0] = actual[0], None
                    spec = None
                    if source_code is not None:
                        spec = speculate(
                            part, ctx, predicted[0], predicted[1], category_codes, source_code, postgres
                        )
                        if spec is not None:
                            predicted = (spec.last_seq, spec.last_hash)
                    while not stop.is_set():
                        try:
                            q.put((part, spec), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            q.put(None)
        except BaseException as e:  # handed to the writer
            q.put(e)

    producer = threading.Thread(target=produce, name="socred-ingest-prepare", daemon=True)
    producer.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            part, spec = item
            with engine.begin() as conn:
                outcome = apply_speculated(conn, ctx, spec) if spec is not None else None
                if outcome is None:
                    outcome = apply_in(conn, ctx, part)
                    actual[0] = ledger.head(conn)  # the producer seals what follows from here
            yield outcome
            if on_batch:
                on_batch(len(part))
    finally:
        stop.set()
        while producer.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                producer.join(0.05)
