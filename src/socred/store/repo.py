"""Reads and writes of the projections (records, subjects), providers and catalogs.

Everything that changes state appends to the ledger (:mod:`socred.store.ledger`, re-exported here)
inside the caller's transaction, together with the projection rows it implies: an accepted
operation is in the ledger and in the projections in full, or not at all.

The records projection (schema.py) keeps what scoring needs; a record's full state — names,
summaries, attributes, reasons, the text of its submission — is replayed from its ledger entries
(``first_seq`` and ``record_ops``) when a page or a validation needs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, text, update

from socred.domain.records import RecordState, apply_body
from socred.domain.scoring import ScoringRecord
from socred.ledger.chain import utc_timestamp
from socred.store import schema as t
from socred.store.codes import codes_of
from socred.store.ledger import (
    BlockCache,
    append,
    head,
    iter_entries,
    lock_head,
    set_head,
    verify,
)

__all__ = [
    "BlockCache",
    "Provider",
    "Row",
    "append",
    "head",
    "iter_entries",
    "load_states",
    "lock_head",
    "project",
    "record_rows",
    "replay",
    "save_ops",
    "scoring_records",
    "set_head",
    "subject_records",
    "verify",
]

# ------------------------------------------------------------------ raw bulk writes
#
# The hot paths write through the DBAPI driver of the caller's connection (so inside its
# transaction): ``executemany`` on SQLite, ``COPY ... FROM STDIN`` on PostgreSQL.

_COPY_MIN_ROWS = 64  # below this, a plain executemany is cheaper than a COPY on PostgreSQL


def driver(conn: Connection) -> Any:
    """The DBAPI connection under ``conn`` (sqlite3 or psycopg), in ``conn``'s transaction."""
    return conn.connection.driver_connection


def _copy_csv(table: Any) -> bytes:
    import io

    import pyarrow.csv as pcsv

    buf = io.BytesIO()
    # every non-null value quoted, NULL as an unquoted empty field: PostgreSQL's CSV convention
    pcsv.write_csv(table, buf, pcsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    return buf.getvalue()


def _pylist(col: Any) -> list[Any]:
    import pyarrow as pa

    typ = col.type
    if pa.types.is_string(typ) or (
        col.null_count == 0 and (pa.types.is_integer(typ) or pa.types.is_boolean(typ))
    ):
        return col.to_numpy(zero_copy_only=False).tolist()  # several times faster than to_pylist()
    return col.to_pylist()


def tuples(table: Any) -> list[tuple[Any, ...]]:
    """An Arrow table's rows as tuples, as the SQLite driver binds them."""
    return _tuples(table)


def _tuples(table: Any) -> list[tuple[Any, ...]]:
    return list(zip(*(_pylist(col) for col in table.columns), strict=True))


def insert_rows(conn: Connection, table: str, columns: Sequence[str], rows: Any) -> None:
    """INSERT ``rows`` (a sequence of tuples, or an Arrow table with ``columns`` in order) into ``table``.

    Rows must be new (a duplicate key raises and so rolls the caller's transaction back).
    """
    import pyarrow as pa

    n = rows.num_rows if isinstance(rows, pa.Table) else len(rows)
    if n == 0:
        return
    raw = driver(conn)
    cols = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur:
            if isinstance(rows, pa.Table):
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                    copy.write(_copy_csv(rows))
            elif n >= _COPY_MIN_ROWS:
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(columns))
                cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)
        return
    marks = ", ".join(["?"] * len(columns))
    data = _tuples(rows) if isinstance(rows, pa.Table) else rows
    raw.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", data)


def upsert_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    keys: Sequence[str],
    update_columns: Sequence[str],
    rows: Any,
    where: str | None = None,
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET update_columns [WHERE where], for tuples or an Arrow
    table. ``where`` may compare ``{table}.col`` with ``excluded.col`` (update only what changed)."""
    import pyarrow as pa

    n = rows.num_rows if isinstance(rows, pa.Table) else len(rows)
    if n == 0:
        return
    raw = driver(conn)
    cols = ", ".join(columns)
    conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET " + ", ".join(
        f"{c} = excluded.{c}" for c in update_columns
    )
    if where:
        conflict += f" WHERE {where}"
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur:
            if n < _COPY_MIN_ROWS and not isinstance(rows, pa.Table):
                marks = ", ".join(["%s"] * len(columns))
                cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks}) {conflict}", rows)
                return
            tmp = f"socred_tmp_{table}"
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {tmp} "
                f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            if isinstance(rows, pa.Table):
                with cur.copy(f"COPY {tmp} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                    copy.write(_copy_csv(rows))
            else:
                with cur.copy(f"COPY {tmp} ({cols}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {tmp} {conflict}")
            cur.execute(f"DELETE FROM {tmp}")
        return
    marks = ", ".join(["?"] * len(columns))
    data = _tuples(rows) if isinstance(rows, pa.Table) else rows
    raw.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks}) {conflict}", data)


# ------------------------------------------------------------------ records: reading

#: Columns of a ``records`` row in the order :class:`Row` reads them, and as ingestion writes them.
RECORD_COLUMNS = (
    "source",
    "record_id",
    "subject_id",
    "kind",
    "category",
    "occurred_on",
    "retracted",
    "repaired_on",
    "first_seq",
    "last_seq",
    "case_number",
    "region",
)
_SELECT = ", ".join(RECORD_COLUMNS)
_SQLITE_IN_CHUNK = 4000  # bound parameters per query (SQLite allows 32766 since 3.32)


@dataclass(frozen=True, slots=True)
class Row:
    """A ``records`` row, decoded: what scoring needs, and where the record's ledger entries are."""

    source: str
    record_id: str
    subject_id: str
    kind: str
    category: str
    occurred_on: date
    retracted: bool
    repaired_on: date | None
    first_seq: int
    last_seq: int
    case_number: str | None
    region: str | None

    @property
    def subject_region(self) -> str:
        return self.subject_id[2:8] if self.kind == "organization" else self.subject_id[:6]

    def scoring(self) -> ScoringRecord:
        return ScoringRecord(
            self.record_id, self.source, self.category, self.occurred_on, self.retracted, self.repaired_on
        )


def _decoder(conn: Connection) -> Any:
    values = codes_of(conn).values(conn)
    fromday = t.from_day_number

    def decode(r: Sequence[Any]) -> Row:
        src, cat = values.get(r[0]), values.get(r[4])
        if src is None or cat is None:  # a code given after the cache was read
            fresh = codes_of(conn)
            src, cat = fresh.value(conn, r[0]), fresh.value(conn, r[4])
        return Row(
            src,
            r[1],
            r[2],
            t.KINDS[r[3]],
            cat,
            fromday(r[5]),
            bool(r[6]),
            None if r[7] is None else fromday(r[7]),
            int(r[8]),
            int(r[9]),
            r[10],
            r[11],
        )

    return decode


def record_rows(conn: Connection, source: str, record_ids: Iterable[str]) -> dict[str, Row]:
    """The rows of those of ``source``'s records that exist, by record_id (one or few queries)."""
    ids = list(set(record_ids))
    out: dict[str, Row] = {}
    code = codes_of(conn).get(conn, "source", source) if ids else None
    if code is None:
        return out
    raw = driver(conn)
    decode = _decoder(conn)
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur:
            cur.execute(
                f"SELECT {_SELECT} FROM records WHERE source = %s AND record_id = ANY(%s)", (code, ids)
            )
            rows = cur.fetchall()
    else:
        if len(ids) > 64:
            # Files usually carry a provider's new ids in ascending runs: one range scan of the
            # primary key tells which of them may exist (often none) far cheaper than a probe per id.
            # SQLite compares text as UTF-8 bytes, which orders like Python's str.
            ids.sort()
            cap = 2 * len(ids)
            found = raw.execute(
                "SELECT record_id FROM records WHERE source = ? AND record_id >= ? AND record_id <= ? LIMIT ?",
                (code, ids[0], ids[-1], cap + 1),
            ).fetchall()
            if len(found) <= cap:
                wanted = set(ids)
                ids = [r[0] for r in found if r[0] in wanted]
        rows = []
        for i in range(0, len(ids), _SQLITE_IN_CHUNK):
            chunk = ids[i : i + _SQLITE_IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows.extend(
                raw.execute(
                    f"SELECT {_SELECT} FROM records WHERE source = ? AND record_id IN ({marks})",
                    [code, *chunk],
                ).fetchall()
            )
    for r in rows:
        out[r[1]] = decode(r)
    return out


def op_seqs(conn: Connection, rows: Sequence[Row]) -> dict[tuple[str, str], list[int]]:
    """The seqs of the later operations of those rows that had any (last_seq above first_seq)."""
    changed = [r for r in rows if r.last_seq != r.first_seq]
    out: dict[tuple[str, str], list[int]] = {}
    if not changed:
        return out
    codes = codes_of(conn)
    by_source: dict[str, list[str]] = {}
    for r in changed:
        by_source.setdefault(r.source, []).append(r.record_id)
    for source, rids in by_source.items():
        code = codes.get(conn, "source", source)
        for i in range(0, len(rids), 500):
            q = select(t.record_ops.c.record_id, t.record_ops.c.seq).where(
                t.record_ops.c.source == code, t.record_ops.c.record_id.in_(rids[i : i + 500])
            )
            for rid, seq in conn.execute(q):
                out.setdefault((source, rid), []).append(int(seq))
    for seqs in out.values():
        seqs.sort()
    return out


def replay(
    conn: Connection, rows: Sequence[Row], cache: BlockCache | None = None
) -> dict[tuple[str, str], RecordState]:
    """The full states of those records, replayed from their ledger entries (submission, then the later
    operations in ledger order) with the one definition of :func:`socred.domain.records.apply_body`."""
    cache = cache or BlockCache()
    later = op_seqs(conn, rows)
    out: dict[tuple[str, str], RecordState] = {}
    for r in sorted(rows, key=lambda r: r.first_seq):
        e = cache.entry(conn, r.first_seq)
        if e is None:
            raise LookupError(
                f"record {r.record_id!r} of {r.source!r}: ledger entry {r.first_seq} is missing"
            )
        state = apply_body(None, json.loads(e.body), submit_body=e.body)
        for seq in later.get((r.source, r.record_id), ()):
            op = cache.entry(conn, seq)
            if op is not None:
                state = apply_body(state, json.loads(op.body))
        out[(r.source, r.record_id)] = state
    return out


def load_states(
    conn: Connection, source: str, record_ids: Iterable[str], cache: BlockCache | None = None
) -> dict[str, RecordState]:
    """The full current state of those of ``source``'s records that exist, by record_id."""
    rows = record_rows(conn, source, record_ids)
    return {rid: st for (_s, rid), st in replay(conn, list(rows.values()), cache).items()}


def subject_rows(
    conn: Connection, subject_ids: Iterable[str], categories: Iterable[str] | None = None
) -> dict[str, list[Row]]:
    """Each subject's records rows (only those of ``categories`` when given): one indexed read."""
    ids = sorted(set(subject_ids))
    out: dict[str, list[Row]] = {i: [] for i in ids}
    if not ids:
        return out
    decode = _decoder(conn)
    raw = driver(conn)
    cat_codes: list[int] | None = None
    if categories is not None:
        cat_codes = sorted(codes_of(conn).ids(conn, "category", categories).values())
        if not cat_codes:
            return out
    pg = conn.dialect.name == "postgresql"
    step = 5000 if not pg else 10_000  # SQLite binds at most 32,766 values
    for i in range(0, len(ids), step):
        chunk = ids[i : i + step]
        if pg:
            where = "subject_id = ANY(%s)"
            params: list[Any] = [chunk]
        else:
            where = f"subject_id IN ({','.join('?' * len(chunk))})"
            params = list(chunk)
        if cat_codes is not None:
            if pg:
                where += " AND category = ANY(%s)"
                params.append(cat_codes)
            else:
                where += f" AND category IN ({','.join('?' * len(cat_codes))})"
                params.extend(cat_codes)
        cur = raw.cursor()
        try:
            cur.execute(f"SELECT {_SELECT} FROM records WHERE {where}", params)
            for r in cur.fetchall():
                out[r[2]].append(decode(r))
        finally:
            cur.close()
    return out


def scoring_records(conn: Connection, subject_ids: Iterable[str]) -> dict[str, list[ScoringRecord]]:
    """Each subject's records as the scorer sees them (no ledger read)."""
    return {sid: [r.scoring() for r in rows] for sid, rows in subject_rows(conn, subject_ids).items()}


def subject_records(conn: Connection, subject_id: str, cache: BlockCache | None = None) -> list[RecordState]:
    """A subject's records in full (texts and reasons from the ledger), in ledger order."""
    rows = subject_rows(conn, [subject_id])[subject_id]
    states = replay(conn, rows, cache)
    return [states[(r.source, r.record_id)] for r in sorted(rows, key=lambda r: r.first_seq)]


def subjects_touched(
    conn: Connection, after: int, source: str | None = None, limit: int | None = None
) -> tuple[list[str], int]:
    """The subjects of the record operations after ledger seq ``after`` (of ``source``'s records only),
    in the order first touched, and the seq read up to (short of the head when ``limit`` cut it)."""
    found: dict[str, None] = {}
    pending: dict[str, list[str]] = {}
    upto = after
    for e in iter_entries(conn, after):
        if limit is not None and len(found) + sum(len(v) for v in pending.values()) >= limit:
            break
        upto = e.seq
        if e.kind not in ("submit", "correct", "retract", "repair"):
            continue
        body = json.loads(e.body)
        if source is not None and body.get("source") != source:
            continue
        if isinstance(body.get("subject_id"), str):
            found[body["subject_id"]] = None
        else:
            pending.setdefault(str(body.get("source")), []).append(str(body.get("record_id")))
    for src, rids in pending.items():
        for row in record_rows(conn, src, rids).values():
            found.setdefault(row.subject_id, None)
    return list(found), upto


def subject_row(conn: Connection, subject_id: str) -> Any:
    return conn.execute(select(t.subjects).where(t.subjects.c.subject_id == subject_id)).first()


# ------------------------------------------------------------------ records: writing

SUBJECT_COLUMNS = ("subject_id", "kind", "region", "name", "first_seq", "last_seq")


def record_row(s: RecordState, first_seq: int, last_seq: int, source: int, category: int) -> tuple[Any, ...]:
    """A ``records`` row (:data:`RECORD_COLUMNS` order, as the driver stores it) of a record's state."""
    return (
        source,
        s.record_id,
        s.subject_id,
        t.KINDS.index(s.kind),
        category,
        t.day_number(s.occurred_on),
        s.retracted,
        None if s.repaired_on is None else t.day_number(s.repaired_on),
        first_seq,
        last_seq,
        s.case_number,
        None if s.region in (None, s.subject_region) else s.region,
    )


def project(conn: Connection, ops: Sequence[tuple[str, RecordState, int]]) -> None:
    """Project accepted operations into ``records``, ``record_ops`` and ``subjects`` (:func:`save_ops`
    and the subjects they touch), in the caller's transaction."""
    upsert_subjects(conn, subject_upserts(save_ops(conn, ops)))


def save_ops(
    conn: Connection, ops: Sequence[tuple[str, RecordState, int]]
) -> list[tuple[str, str, str, str, int]]:
    """Project accepted operations — (op name, the record's state after it, its ledger seq), in ledger
    order — into ``records`` and ``record_ops``, in the caller's transaction; returns the subjects they
    touch as (subject_id, kind, region, name, seq) for :func:`subject_upserts`.

    A submission inserts its record; any later operation updates the row and is listed in
    ``record_ops``. A subject takes the name of the record state with the highest seq.
    """
    if not ops:
        return []
    codes = codes_of(conn)
    sources = codes.ensure(conn, "source", {s.source for _, s, _ in ops})
    cats = codes.ensure(conn, "category", {s.category for _, s, _ in ops})
    final: dict[tuple[str, str], tuple[RecordState, int | None, int]] = {}
    op_rows: list[tuple[int, str, int]] = []
    touched: list[tuple[str, str, str, str, int]] = []
    for op, st, seq in ops:
        k = (st.source, st.record_id)
        cur = final.get(k)
        first = seq if op == "submit" else (cur[1] if cur is not None else None)
        final[k] = (st, first, seq)
        if op != "submit":
            op_rows.append((sources[st.source], st.record_id, seq))
        touched.append((st.subject_id, st.kind, st.subject_region, st.subject_name, seq))
    new = []
    changed = []
    for (source, _rid), (st, first, last) in final.items():
        if first is not None:
            new.append(record_row(st, first, last, sources[source], cats[st.category]))
        else:
            row = record_row(st, 0, last, sources[source], cats[st.category])
            changed.append((row[4], row[5], row[6], row[7], row[9], row[10], row[0], row[1]))
    new.sort(key=lambda r: (r[0], r[1]))
    insert_rows(conn, "records", RECORD_COLUMNS, new)
    if changed:
        mark = "%s" if conn.dialect.name == "postgresql" else "?"
        sql = (
            f"UPDATE records SET category = {mark}, occurred_on = {mark}, retracted = {mark}, "
            f"repaired_on = {mark}, last_seq = {mark}, case_number = {mark} "
            f"WHERE source = {mark} AND record_id = {mark}"
        )
        cur = driver(conn).cursor()
        try:
            cur.executemany(sql, changed)
        finally:
            cur.close()
    insert_rows(conn, "record_ops", ("source", "record_id", "seq"), sorted(op_rows))
    return touched


def subject_upserts(touched: Iterable[tuple[str, str, str, str, int]]) -> list[tuple[Any, ...]]:
    """One subjects row per subject: the name at its highest seq, first_seq and last_seq; sorted."""
    out: dict[str, list[Any]] = {}
    for sid, kind, region, name, seq in touched:
        cur = out.get(sid)
        if cur is None:
            out[sid] = [sid, kind, region, name, seq, seq]
            continue
        if seq >= cur[5]:
            cur[3], cur[5] = name, seq
        if seq < cur[4]:
            cur[4] = seq
    return [tuple(r) for _, r in sorted(out.items())]


def upsert_subjects(conn: Connection, rows: Any) -> None:
    """Insert new subjects; of known ones, write only a changed name (with the seq that changed it).
    Kind, region and first_seq never change."""
    upsert_rows(
        conn,
        "subjects",
        SUBJECT_COLUMNS,
        ("subject_id",),
        ("name", "last_seq"),
        rows,
        where="subjects.name <> excluded.name",
    )


# ------------------------------------------------------------------ providers


@dataclass(frozen=True, slots=True)
class Provider:
    code: str
    name: str
    categories: frozenset[str]
    revoked: bool


def add_provider(conn: Connection, code: str, name: str, key_hash: str, categories: Sequence[str]) -> None:
    conn.execute(
        insert(t.providers).values(
            code=code,
            name=name,
            key_hash=key_hash,
            categories=json.dumps(sorted(set(categories))),
            created_at=utc_timestamp(),
            revoked_at=None,
        )
    )


def _provider(r: Any) -> Provider:
    return Provider(r.code, r.name, frozenset(json.loads(r.categories)), r.revoked_at is not None)


def get_provider(conn: Connection, code: str) -> Provider | None:
    r = conn.execute(select(t.providers).where(t.providers.c.code == code)).first()
    return _provider(r) if r else None


def provider_by_key_hash(conn: Connection, key_hash: str) -> Provider | None:
    r = conn.execute(select(t.providers).where(t.providers.c.key_hash == key_hash)).first()
    return _provider(r) if r else None


def list_providers(conn: Connection) -> list[Provider]:
    return [_provider(r) for r in conn.execute(select(t.providers).order_by(t.providers.c.code))]


# ------------------------------------------------------------------ catalogs


def catalog_exists(conn: Connection, cat_id: str, version: int) -> str | None:
    r = conn.execute(
        select(t.catalogs.c.digest).where(and_(t.catalogs.c.id == cat_id, t.catalogs.c.version == version))
    ).first()
    return str(r[0]) if r else None


def store_catalog(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(t.catalogs).values(**row))


def set_catalog_active(conn: Connection, cat_id: str, active: bool) -> int:
    res = conn.execute(update(t.catalogs).where(t.catalogs.c.id == cat_id).values(active=active))
    return int(res.rowcount or 0)


def catalog_documents(conn: Connection, *, active_only: bool = True) -> list[Any]:
    q = select(t.catalogs).order_by(t.catalogs.c.id, t.catalogs.c.version)
    if active_only:
        q = q.where(t.catalogs.c.active.is_(True))
    return list(conn.execute(q).all())


# ------------------------------------------------------------------ rebuild


def clear_projections(conn: Connection) -> None:
    conn.execute(delete(t.records))
    conn.execute(delete(t.record_ops))
    conn.execute(delete(t.subjects))


def count(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
