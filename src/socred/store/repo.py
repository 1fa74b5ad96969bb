"""Reads and writes of the ledger and its projections (SQLite and PostgreSQL alike).

Everything that changes state goes through :func:`append`, inside the caller's
transaction, together with the projection rows it implies: an accepted
operation is in the ledger and in the projections in full, or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, text, update

from socred.domain.records import RecordState
from socred.ledger.chain import ChainVerifier, Entry, VerifyResult, chain, utc_timestamp
from socred.store import schema as t

# ------------------------------------------------------------------ ledger


def lock_head(conn: Connection) -> tuple[int, str]:
    """Take the ledger's append lock for this transaction and return (seq, hash) of its head."""
    if conn.dialect.name == "postgresql":
        row = conn.execute(
            select(t.ledger_head.c.seq, t.ledger_head.c.hash).where(t.ledger_head.c.id == 1).with_for_update()
        ).one()
    else:  # SQLite: the transaction already holds the write lock (BEGIN IMMEDIATE)
        row = conn.execute(
            select(t.ledger_head.c.seq, t.ledger_head.c.hash).where(t.ledger_head.c.id == 1)
        ).one()
    return int(row[0]), str(row[1])


def append(
    conn: Connection, items: Sequence[tuple[str, str, str]], recorded_at: str | None = None
) -> list[Entry]:
    """Append ``(actor, kind, body_json)`` items to the ledger; returns the sealed entries."""
    if not items:
        return []
    seq, head = lock_head(conn)
    ts = recorded_at or utc_timestamp()
    entries = list(chain(seq + 1, head, ((ts, a, k, b) for a, k, b in items)))
    insert_rows(
        conn,
        "ledger",
        LEDGER_COLUMNS,
        [(e.seq, e.recorded_at, e.actor, e.kind, e.body, e.prev_hash, e.hash) for e in entries],
    )
    last = entries[-1]
    set_head(conn, last.seq, last.hash)
    return entries


def set_head(conn: Connection, seq: int, hash_hex: str) -> None:
    """Move the recorded head of the ledger (inside the transaction that holds the append lock)."""
    conn.execute(update(t.ledger_head).where(t.ledger_head.c.id == 1).values(seq=seq, hash=hash_hex))


# ------------------------------------------------------------------ raw bulk writes
#
# The hot path of ingestion writes through the DBAPI driver of the caller's connection (so inside its
# transaction): ``executemany`` on SQLite, ``COPY ... FROM STDIN`` on PostgreSQL. Values are stored
# exactly as the SQLAlchemy types would store them (SQLite: dates as ISO text, booleans as 0/1).

LEDGER_COLUMNS = ("seq", "recorded_at", "actor", "kind", "body", "prev_hash", "hash")
RECORD_COLUMNS = (
    "source",
    "record_id",
    "subject_id",
    "kind",
    "subject_region",
    "subject_name",
    "category",
    "occurred_on",
    "case_number",
    "summary",
    "region",
    "attributes",
    "retracted",
    "retract_reason",
    "repaired_on",
    "repair_reason",
    "submit_body",
    "first_seq",
    "last_seq",
)
SUBJECT_COLUMNS = ("subject_id", "kind", "region", "name", "first_seq", "last_seq")
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
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET update_columns, for tuples or an Arrow table."""
    import pyarrow as pa

    n = rows.num_rows if isinstance(rows, pa.Table) else len(rows)
    if n == 0:
        return
    raw = driver(conn)
    cols = ", ".join(columns)
    conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET " + ", ".join(
        f"{c} = excluded.{c}" for c in update_columns
    )
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


def head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(select(t.ledger_head.c.seq, t.ledger_head.c.hash).where(t.ledger_head.c.id == 1)).one()
    return int(row[0]), str(row[1])


def iter_entries(conn: Connection, after: int = 0, batch: int = 5000) -> Iterator[Entry]:
    """Entries in storage order (by seq), streamed in pages."""
    last = after
    while True:
        rows = conn.execute(
            select(t.ledger).where(t.ledger.c.seq > last).order_by(t.ledger.c.seq).limit(batch)
        ).all()
        if not rows:
            return
        for r in rows:
            yield Entry(int(r.seq), r.recorded_at, r.actor, r.kind, r.body, r.prev_hash, r.hash)
        last = int(rows[-1].seq)


def verify(conn: Connection) -> VerifyResult:
    from socred.ledger import merkle
    from socred.store import merkle_store

    v = ChainVerifier()
    chunk: list[bytes] = []
    chunk_roots: list[bytes] = []  # the Merkle roots of complete 256-entry chunks, for the cache check
    for e in iter_entries(conn):
        if not v.feed(e):
            return v.result()
        chunk.append(bytes.fromhex(e.hash))
        if len(chunk) == merkle_store.CHUNK:
            chunk_roots.append(merkle.root_of(chunk))
            chunk = []
    result = v.result()
    head_seq, head_hash = head(conn)
    if head_seq > result.entries:
        return VerifyResult(
            False,
            result.entries,
            result.head,
            result.entries + 1,
            f"entries {result.entries + 1}..{head_seq} are missing: the ledger was truncated",
        )
    if head_seq == result.entries and head_seq > 0 and head_hash != result.head:
        return VerifyResult(
            False,
            result.entries,
            result.head,
            head_seq,
            f"entry {head_seq} does not match the recorded head hash",
        )
    if result.entries and merkle_store.has_cache(conn):
        bad = merkle_store.first_bad_chunk(conn, chunk_roots)
        if bad is not None:
            return VerifyResult(
                False,
                result.entries,
                result.head,
                bad * merkle_store.CHUNK + 1,
                f"the cached Merkle tree disagrees with the chain from entry {bad * merkle_store.CHUNK + 1}: "
                "its nodes were edited (signed checkpoints would carry a wrong Merkle root)",
            )
    return result


# ------------------------------------------------------------------ records


def _state_from_row(r: Any) -> RecordState:
    return RecordState(
        source=r.source,
        record_id=r.record_id,
        subject_id=r.subject_id,
        kind=r.kind,
        subject_region=r.subject_region,
        subject_name=r.subject_name,
        category=r.category,
        occurred_on=_as_date(r.occurred_on),
        case_number=r.case_number,
        summary=r.summary,
        region=r.region,
        attributes=json.loads(r.attributes) if r.attributes else None,
        retracted=bool(r.retracted),
        retract_reason=r.retract_reason,
        repaired_on=_as_date(r.repaired_on) if r.repaired_on else None,
        repair_reason=r.repair_reason,
        submit_body=r.submit_body,
    )


def _as_date(v: Any) -> date:
    return v if isinstance(v, date) else date.fromisoformat(str(v))


_STATE_SELECT = (
    "source, record_id, subject_id, kind, subject_region, subject_name, category, occurred_on, "
    "case_number, summary, region, attributes, retracted, retract_reason, repaired_on, repair_reason, submit_body"
)
_SQLITE_IN_CHUNK = 4000  # bound parameters per query (SQLite allows 32766 since 3.32)


def _state_from_raw(r: Sequence[Any]) -> RecordState:
    occurred, repaired = r[7], r[14]
    return RecordState(
        source=r[0],
        record_id=r[1],
        subject_id=r[2],
        kind=r[3],
        subject_region=r[4],
        subject_name=r[5],
        category=r[6],
        occurred_on=occurred if isinstance(occurred, date) else date.fromisoformat(occurred),
        case_number=r[8],
        summary=r[9],
        region=r[10],
        attributes=json.loads(r[11]) if r[11] else None,
        retracted=bool(r[12]),
        retract_reason=r[13],
        repaired_on=None
        if repaired is None
        else repaired
        if isinstance(repaired, date)
        else date.fromisoformat(repaired),
        repair_reason=r[15],
        submit_body=r[16],
    )


def load_states(conn: Connection, source: str, record_ids: Iterable[str]) -> dict[str, RecordState]:
    """The current state of those of ``source``'s records that exist, by record_id (one or few queries)."""
    ids = list(set(record_ids))
    out: dict[str, RecordState] = {}
    if not ids:
        return out
    raw = driver(conn)
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cur:
            cur.execute(
                f"SELECT {_STATE_SELECT} FROM records WHERE source = %s AND record_id = ANY(%s)",
                (source, ids),
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
                (source, ids[0], ids[-1], cap + 1),
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
                    f"SELECT {_STATE_SELECT} FROM records WHERE source = ? AND record_id IN ({marks})",
                    [source, *chunk],
                ).fetchall()
            )
    for r in rows:
        out[r[1]] = _state_from_raw(r)
    return out


def _db_date(d: date | None, sqlite: bool) -> Any:
    if d is None:
        return None
    return d.isoformat() if sqlite else d


def state_row(s: RecordState, first_seq: int, last_seq: int, *, sqlite: bool) -> tuple[Any, ...]:
    """A records row (:data:`RECORD_COLUMNS` order) for a record's state, as the store keeps it."""
    return (
        s.source,
        s.record_id,
        s.subject_id,
        s.kind,
        s.subject_region,
        s.subject_name,
        s.category,
        _db_date(s.occurred_on, sqlite),
        s.case_number,
        s.summary,
        s.region,
        json.dumps(s.attributes, ensure_ascii=False, sort_keys=True) if s.attributes else None,
        (1 if s.retracted else 0) if sqlite else s.retracted,
        s.retract_reason,
        _db_date(s.repaired_on, sqlite),
        s.repair_reason,
        s.submit_body,
        first_seq,
        last_seq,
    )


def state_rows(
    new: Sequence[tuple[RecordState, int]], changed: Sequence[tuple[RecordState, int]], *, sqlite: bool
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[str, str, str, str, int]]]:
    """Records rows to insert (new) and to upsert (changed), and (subject, kind, region, name, seq) touches.

    Each item is a record's state and the seq of the ledger entry that produced it. A record listed
    several times keeps its last state; a new record's ``first_seq`` is its first seq here.
    """
    firsts: dict[tuple[str, str], int] = {}
    finals: dict[tuple[str, str], tuple[RecordState, int]] = {}
    for s, seq in new:
        k = (s.source, s.record_id)
        firsts.setdefault(k, seq)
        finals[k] = (s, seq)
    for s, seq in changed:
        finals[(s.source, s.record_id)] = (s, seq)
    new_rows = []
    changed_rows = []
    touched = []
    for k, (s, seq) in finals.items():
        if k in firsts:
            new_rows.append(state_row(s, firsts[k], seq, sqlite=sqlite))
            touched.append((s.subject_id, s.kind, s.subject_region, s.subject_name, firsts[k]))
        else:
            changed_rows.append(state_row(s, seq, seq, sqlite=sqlite))
        touched.append((s.subject_id, s.kind, s.subject_region, s.subject_name, seq))
    return new_rows, changed_rows, touched


def write_records(
    conn: Connection, new_rows: Sequence[tuple[Any, ...]], changed_rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert new records rows, upsert changed ones (all columns but the key and first_seq)."""
    insert_rows(conn, "records", RECORD_COLUMNS, sorted(new_rows, key=lambda r: (r[0], r[1])))
    upsert_rows(
        conn,
        "records",
        RECORD_COLUMNS,
        ("source", "record_id"),
        (*RECORD_COLUMNS[2:-2], "last_seq"),
        sorted(changed_rows, key=lambda r: (r[0], r[1])),
    )


def subject_rows(touched: Iterable[tuple[str, str, str, str, int]]) -> list[tuple[Any, ...]]:
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


def save_states(
    conn: Connection, new: Sequence[tuple[RecordState, int]], changed: Sequence[tuple[RecordState, int]]
) -> None:
    """Write new records (plain inserts) and changed ones (upserts), and keep the subjects table current.

    Each item is a record's state and the seq of the ledger entry that produced it (see
    :func:`state_rows`). A subject takes the name of its record with the highest seq,
    ``first_seq``/``last_seq`` the lowest/highest seq seen.
    """
    sqlite = conn.dialect.name != "postgresql"
    new_rows, changed_rows, touched = state_rows(new, changed, sqlite=sqlite)
    write_records(conn, new_rows, changed_rows)
    upsert_subjects(conn, subject_rows(touched))


def upsert_subjects(conn: Connection, rows: Any) -> None:
    """Insert subjects or update their name and last_seq (kind, region and first_seq never change)."""
    upsert_rows(conn, "subjects", SUBJECT_COLUMNS, ("subject_id",), ("name", "last_seq"), rows)


def subject_records(conn: Connection, subject_id: str) -> list[RecordState]:
    rows = conn.execute(select(t.records).where(t.records.c.subject_id == subject_id)).all()
    return [_state_from_row(r) for r in rows]


def subject_row(conn: Connection, subject_id: str) -> Any:
    return conn.execute(select(t.subjects).where(t.subjects.c.subject_id == subject_id)).first()


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
    conn.execute(delete(t.subjects))


def count(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
