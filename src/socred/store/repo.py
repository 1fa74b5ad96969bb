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
    conn.execute(
        insert(t.ledger),
        [
            {
                "seq": e.seq,
                "recorded_at": e.recorded_at,
                "actor": e.actor,
                "kind": e.kind,
                "body": e.body,
                "prev_hash": e.prev_hash,
                "hash": e.hash,
            }
            for e in entries
        ],
    )
    last = entries[-1]
    conn.execute(update(t.ledger_head).where(t.ledger_head.c.id == 1).values(seq=last.seq, hash=last.hash))
    return entries


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
    v = ChainVerifier()
    for e in iter_entries(conn):
        if not v.feed(e):
            return v.result()
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


def load_states(conn: Connection, source: str, record_ids: Iterable[str]) -> dict[str, RecordState]:
    ids = list(set(record_ids))
    out: dict[str, RecordState] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        rows = conn.execute(
            select(t.records).where(and_(t.records.c.source == source, t.records.c.record_id.in_(chunk)))
        ).all()
        for r in rows:
            out[r.record_id] = _state_from_row(r)
    return out


def _state_row(s: RecordState, seq: int) -> dict[str, Any]:
    return {
        "source": s.source,
        "record_id": s.record_id,
        "subject_id": s.subject_id,
        "kind": s.kind,
        "subject_region": s.subject_region,
        "subject_name": s.subject_name,
        "category": s.category,
        "occurred_on": s.occurred_on,
        "case_number": s.case_number,
        "summary": s.summary,
        "region": s.region,
        "attributes": json.dumps(s.attributes, ensure_ascii=False, sort_keys=True) if s.attributes else None,
        "retracted": s.retracted,
        "retract_reason": s.retract_reason,
        "repaired_on": s.repaired_on,
        "repair_reason": s.repair_reason,
        "submit_body": s.submit_body,
        "last_seq": seq,
    }


def _upsert(
    conn: Connection, table: Any, rows: list[dict[str, Any]], keys: list[str], keep: tuple[str, ...]
) -> None:
    """INSERT ... ON CONFLICT DO UPDATE, in one executemany, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    from sqlalchemy.dialects import postgresql, sqlite

    stmt: Any = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    updates = {c: stmt.excluded[c] for c in rows[0] if c not in keys and c not in keep}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), rows)


def save_states(
    conn: Connection, new: Sequence[tuple[RecordState, int]], changed: Sequence[tuple[RecordState, int]]
) -> None:
    """Write new and changed records (one upsert) and keep the subjects table current."""
    all_rows = [{**_state_row(s, seq), "first_seq": seq} for s, seq in list(new) + list(changed)]
    _upsert(conn, t.records, all_rows, ["source", "record_id"], keep=("first_seq",))
    touched: dict[str, dict[str, Any]] = {}
    for s, seq in list(new) + list(changed):
        touched[s.subject_id] = {
            "subject_id": s.subject_id,
            "kind": s.kind,
            "region": s.subject_region,
            "name": s.subject_name,
            "first_seq": seq,
            "last_seq": seq,
        }
    _upsert(conn, t.subjects, list(touched.values()), ["subject_id"], keep=("first_seq", "kind", "region"))


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
