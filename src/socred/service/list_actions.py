"""Manual list actions: an administrator adds or removes a subject on a list outside the rules.

Four eyes: one administrator proposes (``pending``), **another** administrator approves or refuses;
the proposer deciding its own proposal is refused (403). Approval appends one ledger entry of kind
``list_action`` (actor: the approver; body: the proposer, the approver, the reason, the list, the
action, ``effective_from`` = the approval date in Asia/Shanghai and the optional ``until``), and the
``list_actions`` row is written in the same transaction, so the check index (which follows the
ledger head) and every per-subject score answer with it at once.

The effect is an **overlay** on the catalog's rule-based lists, applied by :func:`apply` — the one
place, used by :meth:`Platform.score` / :meth:`Platform.check`, the relying parties' check index
(:mod:`socred.service.checks`), receipt reproduction and the notice sweep. An action is live at T
when ``effective_from <= T`` and (no ``until`` or ``T < until``); among live actions on one list the
latest approved wins. ``add`` puts the subject on the list (``since`` = effective_from, ``until`` =
the action's until), ``remove`` takes it off; measures follow the lists. The **score never
changes** (nothing but records moves a score); the explanation names the action (``list_actions``
in the score object, ``manual`` on each list membership it made or kept).

The batch engines (``socred score-all``) report rule-based lists only; see docs/due-process.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from socred.domain import clock
from socred.domain.ids import IdentifierError, parse_subject_id
from socred.domain.list_actions import ListAction, ManualMembership, OverlaidResult, apply
from socred.domain.records import canonical
from socred.domain.scoring import ScoringError, select_catalog
from socred.ledger.chain import Entry, utc_timestamp
from socred.service import common
from socred.service.platform import Platform
from socred.store import repo
from socred.store import schema_due as td

KIND = "list_action"
MAX_TEXT = 2000
ACTIONS = ("add", "remove")


def new_id(prefix: str = "la_") -> str:
    """A time-ordered unique id (ULID layout), as the other case files use."""
    return common.new_id(prefix)


class ListActionError(Exception):
    """A refused request: an HTTP status, an error code, the field and a sentence."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field
        self.extra: dict[str, Any] = {}


def _invalid(field: str, message: str) -> ListActionError:
    return ListActionError(422, "invalid_request", message, field)


def _name(actor: str) -> str:
    """``admin:alice`` -> ``alice`` (the user name, for sentences)."""
    return actor.split(":", 1)[1] if ":" in actor else actor


_day = common.as_day
_iso = common.iso_day


# ---------------------------------------------------------------- reading the projection


def _from_row(r: Any) -> ListAction:
    return ListAction(
        r.id,
        r.subject_id,
        r.list_code,
        "add" if r.action == "add" else "remove",
        _day(r.effective_from),
        None if r.until is None else _day(r.until),
        r.reason,
        r.proposed_by,
        r.decided_by,
        int(r.ledger_seq),
    )


def approved(
    conn: Connection, subject_ids: Iterable[str] | None = None, after_seq: int = 0
) -> list[ListAction]:
    """Approved actions (of these subjects; with ledger seq above ``after_seq``), in ledger order."""
    q = select(td.list_actions).where(td.list_actions.c.status == "approved")
    if subject_ids is not None:
        ids = sorted(set(subject_ids))
        if not ids:
            return []
        q = q.where(td.list_actions.c.subject_id.in_(ids))
    if after_seq:
        q = q.where(td.list_actions.c.ledger_seq > after_seq)
    return [_from_row(r) for r in conn.execute(q.order_by(td.list_actions.c.ledger_seq))]


def by_subject(actions: Iterable[ListAction]) -> dict[str, list[ListAction]]:
    out: dict[str, list[ListAction]] = {}
    for a in actions:
        out.setdefault(a.subject_id, []).append(a)
    return out


def replay(conn: Connection, entries: Sequence[tuple[int, Mapping[str, Any]]]) -> int:
    """Rebuild the approved rows from ``list_action`` ledger entries ``(seq, body)``; pending and
    refused proposals (case files, not on the ledger) are kept."""
    conn.execute(delete(td.list_actions).where(td.list_actions.c.status == "approved"))
    for seq, body in entries:
        conn.execute(delete(td.list_actions).where(td.list_actions.c.id == str(body["id"])))
        conn.execute(insert(td.list_actions).values(**_row_from_body(seq, body)))
    return len(entries)


def _row_from_body(seq: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(body["id"]),
        "subject_id": str(body["subject_id"]),
        "list_code": str(body["list"]),
        "action": str(body["action"]),
        "reason": str(body["reason"]),
        "until": None if body.get("until") is None else _day(body["until"]),
        "status": "approved",
        "proposed_by": str(body["proposed_by"]),
        "proposed_at": str(body.get("proposed_at") or ""),
        "decided_by": str(body["approved_by"]),
        "decided_at": str(body.get("approved_at") or ""),
        "decision_reason": body.get("approval_reason"),
        "effective_from": _day(body["effective_from"]),
        "ledger_seq": seq,
    }


def view(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "subject_id": r.subject_id,
        "list": r.list_code,
        "action": r.action,
        "reason": r.reason,
        "until": _iso(r.until),
        "status": r.status,
        "proposed_by": r.proposed_by,
        "proposed_at": r.proposed_at,
        "decided_by": r.decided_by,
        "decided_at": r.decided_at,
        "decision_reason": r.decision_reason,
        "effective_from": _iso(r.effective_from),
        "ledger_seq": None if r.ledger_seq is None else int(r.ledger_seq),
    }


# ---------------------------------------------------------------- the use cases


class ListActions:
    """Propose, decide and list manual list actions over one :class:`Platform`."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def _text(self, value: str, field: str) -> str:
        s = (value or "").strip()
        if not s:
            raise _invalid(field, f"{field} must not be empty")
        if len(s) > MAX_TEXT:
            raise _invalid(field, f"{field} is {len(s)} characters long; at most {MAX_TEXT} are allowed")
        if "\x00" in s:
            raise _invalid(field, f"{field} contains a NUL character")
        return s

    def propose(
        self,
        actor: str,
        subject_id: str,
        list_code: str,
        action: str,
        reason: str,
        until: date | None = None,
        today: date | None = None,
    ) -> dict[str, Any]:
        today = today or clock.today()
        try:
            sid = parse_subject_id(subject_id)
        except IdentifierError as e:
            raise _invalid("subject_id", e.reason) from None
        if action not in ACTIONS:
            raise _invalid("action", f"action must be 'add' or 'remove', got {action!r}")
        reason = self._text(reason, "reason")
        code = (list_code or "").strip().upper()
        try:
            catalog = select_catalog(self.platform.catalogs(), sid.region, sid.kind, today)
        except ScoringError as e:
            raise _invalid("subject_id", str(e)) from None
        if code not in catalog.lists:
            raise _invalid(
                "list", f"catalog {catalog.ref}, which scores this subject, defines no list {code!r}"
            )
        if until is not None and until <= today:
            raise _invalid("until", f"until must be after today ({today.isoformat()})")
        aid = new_id()
        row = {
            "id": aid,
            "subject_id": sid.value,
            "list_code": code,
            "action": action,
            "reason": reason,
            "until": until,
            "status": "pending",
            "proposed_by": actor,
            "proposed_at": utc_timestamp(),
        }
        with self.platform.engine.begin() as conn:
            conn.execute(insert(td.list_actions).values(**row))
            out = conn.execute(select(td.list_actions).where(td.list_actions.c.id == aid)).one()
        return view(out)

    def decide(
        self, action_id: str, actor: str, outcome: str, reason: str, today: date | None = None
    ) -> dict[str, Any]:
        """Approve (one ``list_action`` ledger entry naming both administrators) or refuse."""
        today = today or clock.today()
        if outcome not in ("approved", "refused"):
            raise _invalid("outcome", f"outcome must be 'approved' or 'refused', got {outcome!r}")
        reason = self._text(reason, "reason")
        with self.platform.engine.begin() as conn:
            repo.lock_head(conn)  # serialises decisions: one decision per proposal
            row = conn.execute(select(td.list_actions).where(td.list_actions.c.id == action_id)).first()
            if row is None:
                raise ListActionError(404, "not_found", f"no list action {action_id!r}")
            if row.proposed_by == actor:
                raise ListActionError(
                    403,
                    "forbidden",
                    "a list action must be decided by another administrator than its proposer",
                )
            if row.status != "pending":
                raise ListActionError(
                    409, "conflict", f"list action {action_id!r} was already decided ({row.status})"
                )
            if outcome == "approved" and row.until is not None and _day(row.until) <= today:
                raise ListActionError(
                    409,
                    "conflict",
                    f"the action would end on {_iso(row.until)}, before it takes effect today",
                )
            decided_at = utc_timestamp()
            seq: int | None = None
            effective: date | None = None
            if outcome == "approved":
                effective = today
                body = {
                    "id": row.id,
                    "subject_id": row.subject_id,
                    "list": row.list_code,
                    "action": row.action,
                    "reason": row.reason,
                    "until": _iso(row.until),
                    "effective_from": today.isoformat(),
                    "proposed_by": row.proposed_by,
                    "proposed_at": row.proposed_at,
                    "approved_by": actor,
                    "approved_at": decided_at,
                    "approval_reason": reason,
                }
                (entry,) = repo.append(conn, [(actor, KIND, canonical(body))])
                seq = entry.seq
            conn.execute(
                update(td.list_actions)
                .where(td.list_actions.c.id == row.id)
                .values(
                    status=outcome,
                    decided_by=actor,
                    decided_at=decided_at,
                    decision_reason=reason,
                    effective_from=effective,
                    ledger_seq=seq,
                )
            )
            out = conn.execute(select(td.list_actions).where(td.list_actions.c.id == row.id)).one()
        if outcome == "approved":
            from socred.service.due_process import DueProcess  # imports checks, which imports this module

            DueProcess(self.platform).sync_subject(row.subject_id, today)
        return view(out)

    def find(
        self, status: str | None = None, subject_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        q = select(td.list_actions)
        if status is not None:
            q = q.where(td.list_actions.c.status == status)
        if subject_id is not None:
            q = q.where(td.list_actions.c.subject_id == subject_id)
        q = q.order_by(td.list_actions.c.proposed_at, td.list_actions.c.id).limit(limit)
        with self.platform.engine.connect() as conn:
            return [view(r) for r in conn.execute(q)]


def entries_of(entries: Iterable[Entry]) -> list[tuple[int, dict[str, Any]]]:
    """``(seq, body)`` of the ``list_action`` entries among ``entries``."""
    return [(e.seq, e.decoded()) for e in entries if e.kind == KIND]


__all__ = [
    "KIND",
    "ListAction",
    "ListActionError",
    "ListActions",
    "ManualMembership",
    "OverlaidResult",
    "apply",
    "approved",
    "by_subject",
    "replay",
]
