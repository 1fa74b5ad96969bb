"""The access log: every read of a subject's non-public data by anyone but the subject.

Each entry says who (the kind of caller and its code or user name), when (UTC),
what (the action: a check, a report, ledger entries, a receipt, the access log
itself) and why (the activity checked, or the reason the reader stated). The
subject reads its own log; auditors and administrators read anyone's (and that
read is logged too). Entries are only ever appended.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, insert, or_, select

from socred.ledger.chain import utc_timestamp
from socred.store import repo
from socred.store import schema_api as ta

MAX_PURPOSE = 500


@dataclass(frozen=True, slots=True)
class Access:
    subject_id: str
    actor_kind: str
    actor: str
    action: str
    purpose: str
    detail: dict[str, Any] | None = None
    at: str | None = None

    def row(self, now: str) -> dict[str, Any]:
        return {
            "subject_id": self.subject_id,
            "at": self.at or now,
            "actor_kind": self.actor_kind,
            "actor": self.actor[:128],
            "action": self.action[:64],
            "purpose": self.purpose[:MAX_PURPOSE],
            "detail": json.dumps(self.detail, ensure_ascii=False, sort_keys=True) if self.detail else None,
        }


def append(conn: Connection, entries: Iterable[Access], now: str | None = None) -> int:
    """Append entries inside the caller's transaction; returns how many."""
    ts = now or utc_timestamp()
    rows = [e.row(ts) for e in entries]
    if rows:
        conn.execute(insert(ta.access_log), rows)
    return len(rows)


def record(engine: Engine, entries: Sequence[Access]) -> int:
    if not entries:
        return 0
    with engine.begin() as conn:
        return append(conn, entries)


CURSOR_RE = re.compile(r"^([0-9T:.Z-]{1,32})\|([ar])\|([A-Za-z0-9_.]{1,40})$")


def parse_cursor(cursor: str) -> tuple[str, str, int | str]:
    """``at|a|<access id>`` or ``at|r|<receipt id>``; ValueError when malformed."""
    m = CURSOR_RE.match(cursor)
    if not m:
        raise ValueError("must be an entry id from a previous page (next_before)")
    at, src, ident = m.groups()
    if src == "a":
        if not ident.isdigit():
            raise ValueError("must be an entry id from a previous page (next_before)")
        return at, src, int(ident)
    return at, src, ident


def _before(table_src: str, at_col: Any, id_col: Any, cursor: tuple[str, str, int | str]) -> Any:
    """Rows of a table whose entries are keyed ``(at, table_src, id)`` that sort before the cursor."""
    ca, cs, cid = cursor
    if table_src < cs:
        return at_col <= ca
    if table_src > cs:
        return at_col < ca
    return or_(at_col < ca, and_(at_col == ca, id_col < cid))


def read(
    conn: Connection, subject_id: str, *, limit: int = 100, before: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """The subject's entries, newest first, and the cursor of the next page (None at the end).

    Two append-only sources make the log: this table (reports, ledger and access-log reads,
    receipts read by staff) and the check receipts (a relying party's check: the party, the
    activity, the decision; :func:`socred.service.receipts.subject_checks`). Entries are ordered by
    ``(at, source, id)``.
    """
    from socred.service.receipts import subject_checks

    cursor = parse_cursor(before) if before else None
    al = ta.access_log
    q1 = select(al).where(al.c.subject_id == subject_id)
    if cursor is not None:
        q1 = q1.where(_before("a", al.c.at, al.c.id, cursor))
    entries: list[tuple[tuple[str, str, Any], dict[str, Any]]] = []
    for r in conn.execute(q1.order_by(al.c.at.desc(), al.c.id.desc()).limit(limit + 1)):
        key = (r.at, "a", int(r.id))
        entries.append(
            (
                key,
                {
                    "id": f"{r.at}|a|{int(r.id)}",
                    "at": r.at,
                    "who": {"kind": r.actor_kind, "id": r.actor},
                    "what": r.action,
                    "why": r.purpose,
                    "detail": json.loads(r.detail) if r.detail else None,
                },
            )
        )
    checks = subject_checks(
        conn, subject_id, limit=2 * limit + 2, before=None if cursor is None else (cursor[0], "\U0010ffff")
    )
    for a in checks:
        key = (a["issued_at"], "r", a["id"])
        if cursor is not None and not _sorts_before(key, cursor):
            continue
        entries.append(
            (
                key,
                {
                    "id": f"{a['issued_at']}|r|{a['id']}",
                    "at": a["issued_at"],
                    "who": {"kind": "party", "id": a["party"]},
                    "what": "check",
                    "why": f"activity check: {a['activity']}",
                    "detail": {"activity": a["activity"], "decision": a["decision"], "receipt": a["id"]},
                },
            )
        )
    entries.sort(key=lambda e: e[0], reverse=True)
    page = [e for _, e in entries[:limit]]
    more = len(entries) > limit
    return page, (page[-1]["id"] if page and more else None)


def _sorts_before(key: tuple[str, str, Any], cursor: tuple[str, str, int | str]) -> bool:
    """Whether an entry keyed ``(at, source, id)`` sorts strictly before the cursor."""
    at, src, ident = key
    ca, cs, cid = cursor
    if at != ca:
        return at < ca
    if src != cs:
        return src < cs
    return str(ident) < str(cid) if src == "r" else int(ident) < int(cid)


def subjects_of_entries(conn: Connection, entries: list[dict[str, Any]]) -> dict[str, list[int]]:
    """The subjects whose data the entries show: named in a submit, or owning the record operated on."""
    found: dict[str, list[int]] = {}
    pending: dict[tuple[str, str], list[int]] = {}
    for e in entries:
        body = e["body"]
        if not isinstance(body, dict) or e["kind"] not in ("submit", "correct", "retract", "repair"):
            continue
        if isinstance(body.get("subject_id"), str):
            found.setdefault(body["subject_id"], []).append(e["seq"])
        elif isinstance(body.get("source"), str) and isinstance(body.get("record_id"), str):
            pending.setdefault((body["source"], body["record_id"]), []).append(e["seq"])
    by_source: dict[str, list[str]] = {}
    for src, rid in pending:
        by_source.setdefault(src, []).append(rid)
    for src, rids in by_source.items():
        for rid, row in repo.record_rows(conn, src, rids).items():
            found.setdefault(row.subject_id, []).extend(pending[(src, rid)])
    return found
