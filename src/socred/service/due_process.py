"""Due process: objections and appeals, credit repair, notices (docs/due-process.md).

Every outcome goes through the ledger: an upheld objection appends a ``retract`` operation and an
approved repair a ``repair`` operation, validated by :func:`socred.domain.records.validate` and
projected by :func:`socred.store.repo.save_states` exactly like ingestion, with the deciding
reviewer as the ledger actor; every decision is also a ledger entry of its own
(``objection.decided``, ``repair.decided``). Scores and checks read the projection (the check
index refreshes when the ledger head moves), so the change applies at once.

Callers are identified by ``actor`` strings ``kind:id`` (``reviewer:alice``, ``admin:bob``,
``provider:court``) so that user names never pass for provider codes in the ledger.
"""

from __future__ import annotations

import json
import os
import smtplib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from sqlalchemy import Connection, and_, delete, insert, select, update

from socred.domain import clock, due_process, scoring
from socred.domain.catalog import Catalog
from socred.domain.ids import SubjectId
from socred.domain.records import MAX_REASON, Accepted, Context, Duplicate, RecordState, canonical, validate
from socred.domain.scoring import ScoreResult, ScoringError, ScoringRecord, select_catalog
from socred.ledger.chain import utc_timestamp
from socred.service import common, list_actions
from socred.service.common import new_id
from socred.service.platform import Platform, UsageError
from socred.store import repo
from socred.store import schema_due as td

MAX_TEXT = 2000
NOTICE_CURSOR = "notices.seq"


class DueProcessError(Exception):
    """A refused due-process request: an HTTP status, an error code, the field and a sentence."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field
        self.extra = extra


def _invalid(field: str, message: str, **extra: Any) -> DueProcessError:
    return DueProcessError(422, "invalid_request", message, field, **extra)


def _not_found(message: str) -> DueProcessError:
    return DueProcessError(404, "not_found", message)


def _conflict(message: str) -> DueProcessError:
    return DueProcessError(409, "conflict", message)


def _forbidden(message: str) -> DueProcessError:
    return DueProcessError(403, "forbidden", message)


def _text(value: str, field: str, limit: int = MAX_TEXT) -> str:
    s = (value or "").strip()
    if not s:
        raise _invalid(field, f"{field} must not be empty")
    if len(s) > limit:
        raise _invalid(field, f"{field} is {len(s)} characters long; at most {limit} are allowed")
    if "\x00" in s:
        raise _invalid(field, f"{field} contains a NUL character")
    return s


_day = common.as_day
_iso = common.iso_day


@dataclass(frozen=True, slots=True)
class Filed:
    id: str
    status: str
    due_by: date

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "due_by": self.due_by.isoformat()}


class DueProcess:
    """Objections, repairs and notices over one :class:`Platform`."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    @property
    def engine(self) -> Any:
        return self.platform.engine

    # ------------------------------------------------------------ helpers

    def _catalog(self, sid: SubjectId, today: date) -> Catalog | None:
        try:
            return self.platform.choose_catalog(sid, today, None)
        except ScoringError:
            return None

    def _objection_days(self, sid: SubjectId, today: date) -> int:
        cat = self._catalog(sid, today)
        return cat.objection_days if cat is not None else due_process.DEFAULT_OBJECTION_DAYS

    def _find_record(
        self, conn: Connection, subject_id: str, record_id: str, source: str | None
    ) -> RecordState:
        """The subject's record with this provider record id (and source, when two providers share the id)."""
        rid = _text(record_id, "record_id", 128)
        wanted = source.strip() if source is not None and source.strip() else None
        sources = sorted(
            r.source
            for r in repo.subject_rows(conn, [subject_id])[subject_id]
            if r.record_id == rid and (wanted is None or r.source == wanted)
        )
        if not sources:
            raise _not_found(f"no record {rid!r} about you is on file")
        if len(sources) > 1:
            raise _invalid(
                "source",
                f"record id {rid!r} was used by several providers ({', '.join(sources)}): "
                "name the provider in 'source'",
            )
        return repo.load_states(conn, sources[0], [rid])[rid]

    def _ledger_op(
        self,
        conn: Connection,
        kinds: Mapping[str, frozenset[str]],
        op: Mapping[str, Any],
        source: str,
        today: date,
    ) -> tuple[Accepted | None, str | None]:
        """Validate ``op`` on ``source``'s record like ingestion does; (accepted, None) or (None, message).

        ``kinds`` (:meth:`Platform.kinds_by_category`) must be read before the write transaction:
        on SQLite every transaction is IMMEDIATE, so a second connection inside it would wait.
        """
        ctx = Context(source=source, authorized=frozenset(kinds), kinds_by_category=kinds, today=today)
        cur = repo.load_states(conn, source, [str(op["record_id"])]).get(str(op["record_id"]))
        outcome = validate(op, cur, ctx)
        if isinstance(outcome, Accepted):
            return outcome, None
        if isinstance(outcome, Duplicate):
            return None, None
        return None, f"{outcome.field}: {outcome.message}"

    def _append(
        self,
        conn: Connection,
        actor: str,
        accepted: Accepted | None,
        kind: str,
        decision: Mapping[str, Any],
    ) -> int:
        """Append the operation (if any) and the decision entry; project the record; the decision's seq."""
        items: list[tuple[str, str, str]] = []
        if accepted is not None:
            items.append((actor, accepted.op, canonical(accepted.body)))
        items.append((actor, kind, canonical(dict(decision))))
        entries = repo.append(conn, items)
        if accepted is not None:
            repo.project(conn, [(accepted.op, accepted.state, entries[0].seq)])
        return entries[-1].seq

    # ------------------------------------------------------------ objections

    def file_objection(
        self,
        sid: SubjectId,
        record_id: str,
        reason: str,
        source: str | None = None,
        today: date | None = None,
    ) -> Filed:
        today = today or clock.today()
        reason = _text(reason, "reason")
        days = self._objection_days(sid, today)
        with self.engine.begin() as conn:
            rec = self._find_record(conn, sid.value, record_id, source)
            if rec.retracted:
                raise _conflict(f"record {rec.record_id!r} was already retracted")
            if self._open_objection(conn, rec.source, rec.record_id) is not None:
                raise _conflict(f"record {rec.record_id!r} already has an open objection")
            oid = new_id("ob_")
            due = due_process.objection_due_by(today, days)
            conn.execute(
                insert(td.objections).values(
                    id=oid,
                    subject_id=sid.value,
                    source=rec.source,
                    record_id=rec.record_id,
                    reason=reason,
                    status="open",
                    filed_at=utc_timestamp(),
                    due_by=due,
                    appeal_of=None,
                )
            )
        return Filed(oid, "open", due)

    def _open_objection(self, conn: Connection, source: str, record_id: str) -> str | None:
        r = conn.execute(
            select(td.objections.c.id).where(
                and_(
                    td.objections.c.source == source,
                    td.objections.c.record_id == record_id,
                    td.objections.c.status == "open",
                )
            )
        ).first()
        return None if r is None else str(r[0])

    def appeal(self, sid: SubjectId, objection_id: str, reason: str, today: date | None = None) -> Filed:
        today = today or clock.today()
        reason = _text(reason, "reason")
        days = self._objection_days(sid, today)
        with self.engine.begin() as conn:
            row = conn.execute(select(td.objections).where(td.objections.c.id == objection_id)).first()
            if row is None or row.subject_id != sid.value:
                raise _not_found(f"you filed no objection {objection_id!r}")
            if row.appeal_of is not None:
                raise _conflict("this is already an appeal; its decision is final on the platform")
            if row.status != "rejected":
                raise _conflict(f"only a rejected objection can be appealed; this one is {row.status}")
            if conn.execute(select(td.objections.c.id).where(td.objections.c.appeal_of == row.id)).first():
                raise _conflict("this objection was already appealed; there is one appeal")
            aid = new_id("ob_")
            due = due_process.objection_due_by(today, days)
            conn.execute(
                insert(td.objections).values(
                    id=aid,
                    subject_id=sid.value,
                    source=row.source,
                    record_id=row.record_id,
                    reason=reason,
                    status="open",
                    filed_at=utc_timestamp(),
                    due_by=due,
                    appeal_of=row.id,
                )
            )
        return Filed(aid, "open", due)

    def decide_objection(
        self, objection_id: str, actor: str, outcome: str, reason: str, today: date | None = None
    ) -> dict[str, Any]:
        """Uphold (the record is retracted in the ledger) or reject an objection or appeal."""
        today = today or clock.today()
        if outcome not in ("upheld", "rejected"):
            raise _invalid("outcome", f"outcome must be 'upheld' or 'rejected', got {outcome!r}")
        reason = _text(reason, "reason")
        kinds = self.platform.kinds_by_category()
        with self.engine.begin() as conn:
            repo.lock_head(conn)  # serialises decisions: one decision per objection
            row = conn.execute(select(td.objections).where(td.objections.c.id == objection_id)).first()
            if row is None:
                raise _not_found(f"no objection {objection_id!r}")
            if row.status != "open":
                raise _conflict(f"objection {objection_id!r} was already decided ({row.status})")
            if row.appeal_of is not None:
                first = conn.execute(
                    select(td.objections.c.decided_by).where(td.objections.c.id == row.appeal_of)
                ).scalar_one()
                if first == actor:
                    raise _forbidden(
                        "an appeal must be decided by another reviewer than the one who rejected the objection"
                    )
            accepted: Accepted | None = None
            if outcome == "upheld":
                op = {
                    "op": "retract",
                    "record_id": row.record_id,
                    "reason": f"objection {row.id} upheld: {reason}"[:MAX_REASON],
                }
                accepted, problem = self._ledger_op(conn, kinds, op, row.source, today)
                if problem is not None:
                    raise _conflict(f"the record cannot be retracted: {problem}")
            decision = {
                "objection": row.id,
                "appeal_of": row.appeal_of,
                "subject_id": row.subject_id,
                "source": row.source,
                "record_id": row.record_id,
                "outcome": outcome,
                "reason": reason,
            }
            seq = self._append(conn, actor, accepted, "objection.decided", decision)
            decided_at = utc_timestamp()
            conn.execute(
                update(td.objections)
                .where(td.objections.c.id == row.id)
                .values(
                    status=outcome,
                    decided_by=actor,
                    decided_at=decided_at,
                    decision_reason=reason,
                    ledger_seq=seq,
                )
            )
        self.sync_subject(row.subject_id, today)
        return {
            "id": row.id,
            "status": outcome,
            "appeal_of": row.appeal_of,
            "decided_by": actor,
            "decided_at": decided_at,
            "reason": reason,
            "ledger_seq": seq,
        }

    def list_objections(
        self,
        status: str | None = None,
        overdue: bool | None = None,
        limit: int = 100,
        today: date | None = None,
    ) -> list[dict[str, Any]]:
        today = today or clock.today()
        q = select(td.objections).order_by(td.objections.c.due_by, td.objections.c.id)
        if status is not None:
            q = q.where(td.objections.c.status == status)
        if overdue is True:
            q = q.where(and_(td.objections.c.status == "open", td.objections.c.due_by < today))
        elif overdue is False:
            q = q.where(~and_(td.objections.c.status == "open", td.objections.c.due_by < today))
        with self.engine.connect() as conn:
            rows = conn.execute(q.limit(limit)).all()
        return [_objection_dict(r, today) for r in rows]

    def list_repairs(
        self,
        status: str | None = None,
        overdue: bool | None = None,
        limit: int = 100,
        today: date | None = None,
    ) -> list[dict[str, Any]]:
        """Repair applications by due date: a pending one (applied or confirmed) is due for a decision
        ``objection_days`` (of the catalog scoring the subject, default 15) after it was applied for."""
        today = today or clock.today()
        q = select(td.repairs).order_by(td.repairs.c.applied_at, td.repairs.c.id)
        if status is not None:
            q = q.where(td.repairs.c.status == status)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        days: dict[str, int] = {}
        out: list[dict[str, Any]] = []
        for r in rows:
            if r.subject_id not in days:
                try:
                    days[r.subject_id] = self._objection_days(
                        self.platform.parse_subject(r.subject_id), today
                    )
                except UsageError:
                    days[r.subject_id] = due_process.DEFAULT_OBJECTION_DAYS
            applied = _day(str(r.applied_at)[:10])
            due = due_process.objection_due_by(applied, days[r.subject_id])
            pending = r.status in ("applied", "confirmed")
            item = {**_repair_dict(r), "subject_id": r.subject_id, "due_by": due.isoformat()}
            item["overdue"] = due_process.is_overdue(due, today, open_=pending)
            if overdue is None or item["overdue"] == overdue:
                out.append(item)
        out.sort(key=lambda x: (x["due_by"], x["id"]))
        return out[:limit]

    def disputed(self, conn: Connection, subject_id: str) -> set[tuple[str, str]]:
        """(source, record_id) of the subject's records with an open objection or appeal."""
        q = select(td.objections.c.source, td.objections.c.record_id).where(
            and_(td.objections.c.subject_id == subject_id, td.objections.c.status == "open")
        )
        return {(r[0], r[1]) for r in conn.execute(q)}

    # ------------------------------------------------------------ credit repair

    def apply_repair(
        self,
        sid: SubjectId,
        record_id: str,
        commitment: str,
        source: str | None = None,
        today: date | None = None,
    ) -> dict[str, Any]:
        today = today or clock.today()
        commitment = _text(commitment, "commitment")
        catalog = self._catalog(sid, today)
        with self.engine.begin() as conn:
            rec = self._find_record(conn, sid.value, record_id, source)
            category = catalog.category_for(rec.category, sid.kind) if catalog else None
            if category is None:
                raise _conflict(f"record {rec.record_id!r} does not count under the catalog that scores you")
            verdict = due_process.check_repair(category, rec, today)
            if not verdict.eligible:
                raise _invalid("record_id", verdict.reason, eligible_on=verdict.eligible_on.isoformat())
            pending = conn.execute(
                select(td.repairs.c.id).where(
                    and_(
                        td.repairs.c.source == rec.source,
                        td.repairs.c.record_id == rec.record_id,
                        td.repairs.c.status.in_(("applied", "confirmed")),
                    )
                )
            ).first()
            if pending is not None:
                raise _conflict(f"record {rec.record_id!r} already has a pending repair application")
            rid = new_id("rp_")
            conn.execute(
                insert(td.repairs).values(
                    id=rid,
                    subject_id=sid.value,
                    source=rec.source,
                    record_id=rec.record_id,
                    commitment=commitment,
                    status="applied",
                    applied_at=utc_timestamp(),
                    eligible_on=verdict.eligible_on,
                )
            )
        return {"id": rid, "status": "applied", "eligible_on": verdict.eligible_on.isoformat()}

    def confirm_repair(self, repair_id: str, actor_kind: str, actor_id: str) -> dict[str, Any]:
        """The record's provider (or an administrator) confirms the obligation was fulfilled."""
        with self.engine.begin() as conn:
            row = conn.execute(select(td.repairs).where(td.repairs.c.id == repair_id)).first()
            if row is None or (actor_kind == "provider" and row.source != actor_id):
                raise _not_found(f"no repair application {repair_id!r} about one of your records")
            if row.status != "applied":
                raise _conflict(
                    f"repair application {repair_id!r} is {row.status}, not awaiting confirmation"
                )
            conn.execute(
                update(td.repairs)
                .where(td.repairs.c.id == repair_id)
                .values(
                    status="confirmed", confirmed_by=f"{actor_kind}:{actor_id}", confirmed_at=utc_timestamp()
                )
            )
        return {"id": repair_id, "status": "confirmed", "confirmed_by": f"{actor_kind}:{actor_id}"}

    def decide_repair(
        self, repair_id: str, actor: str, outcome: str, reason: str, today: date | None = None
    ) -> dict[str, Any]:
        """Approve (a ``repair`` operation with repaired_on = today, Asia/Shanghai) or refuse."""
        today = today or clock.today()
        if outcome not in ("approved", "refused"):
            raise _invalid("outcome", f"outcome must be 'approved' or 'refused', got {outcome!r}")
        reason = _text(reason, "reason")
        kinds = self.platform.kinds_by_category()
        with self.engine.begin() as conn:
            repo.lock_head(conn)
            row = conn.execute(select(td.repairs).where(td.repairs.c.id == repair_id)).first()
            if row is None:
                raise _not_found(f"no repair application {repair_id!r}")
            if row.status in ("approved", "refused"):
                raise _conflict(f"repair application {repair_id!r} was already decided ({row.status})")
            if outcome == "approved" and row.status != "confirmed":
                raise _conflict(
                    "the record's provider (or an administrator) has not confirmed the obligation fulfilled: "
                    f"POST /api/v1/repairs/{repair_id}/confirmation first"
                )
            accepted: Accepted | None = None
            repaired_on: date | None = None
            if outcome == "approved":
                repaired_on = today
                op = {
                    "op": "repair",
                    "record_id": row.record_id,
                    "repaired_on": today.isoformat(),
                    "reason": f"credit repair {row.id} approved: {reason}"[:MAX_REASON],
                }
                accepted, problem = self._ledger_op(conn, kinds, op, row.source, today)
                if problem is not None:
                    raise _conflict(f"the record cannot be repaired: {problem}")
            decision = {
                "repair": row.id,
                "subject_id": row.subject_id,
                "source": row.source,
                "record_id": row.record_id,
                "outcome": outcome,
                "reason": reason,
                "repaired_on": _iso(repaired_on),
                "confirmed_by": row.confirmed_by,
            }
            seq = self._append(conn, actor, accepted, "repair.decided", decision)
            conn.execute(
                update(td.repairs)
                .where(td.repairs.c.id == row.id)
                .values(
                    status=outcome,
                    decided_by=actor,
                    decided_at=utc_timestamp(),
                    decision_reason=reason,
                    repaired_on=repaired_on,
                    ledger_seq=seq,
                )
            )
        self.sync_subject(row.subject_id, today)
        return {
            "id": row.id,
            "status": outcome,
            "repaired_on": _iso(repaired_on),
            "decided_by": actor,
            "reason": reason,
            "ledger_seq": seq,
        }

    # ------------------------------------------------------------ notices

    def sync_subject(self, subject_id: str, today: date | None = None) -> int:
        """Compare the subject's lists now with those last noticed; a notice per new placement."""
        return self.sync_subjects([subject_id], today)

    def sync_subjects(self, subject_ids: Iterable[str], today: date | None = None, chunk: int = 500) -> int:
        """Notices for these subjects' new list placements; a few queries per ``chunk`` subjects."""
        today = today or clock.today()
        catalogs = self.platform.catalogs()  # read before the write transactions (SQLite: IMMEDIATE)
        ids = sorted(set(subject_ids))
        created = 0
        for i in range(0, len(ids), chunk):
            part = ids[i : i + chunk]
            with self.engine.begin() as conn:
                states: dict[str, list[RecordState]] = {}
                for s in _records_of(conn, part):
                    states.setdefault(s.subject_id, []).append(s)
                before: dict[str, dict[str, str]] = {}
                for sid_, code, since in conn.execute(
                    select(td.notice_lists).where(td.notice_lists.c.subject_id.in_(part))
                ):
                    before.setdefault(sid_, {})[code] = since
                manual = list_actions.by_subject(list_actions.approved(conn, part))
                for subject_id in part:
                    try:
                        sid = self.platform.parse_subject(subject_id)
                        catalog = select_catalog(catalogs, sid.region, sid.kind, today)
                        recs = states.get(sid.value, [])
                        result = scoring.score(
                            catalog,
                            sid.value,
                            sid.kind,
                            [
                                ScoringRecord(
                                    s.record_id,
                                    s.source,
                                    s.category,
                                    s.occurred_on,
                                    s.retracted,
                                    s.repaired_on,
                                )
                                for s in recs
                            ],
                            today,
                        )
                        result = list_actions.apply(catalog, result, manual.get(sid.value, ()))
                    except (ScoringError, UsageError):
                        continue
                    created += self._sync(conn, sid, catalog, result, today, recs, before.get(sid.value, {}))
        return created

    def _sync(
        self,
        conn: Connection,
        sid: SubjectId,
        catalog: Catalog,
        result: ScoreResult,
        today: date,
        records: list[RecordState],
        before: Mapping[str, str],
    ) -> int:
        now = {m.code: (m.since.isoformat() if m.since else "grade") for m in result.lists}
        gone = [c for c in before if c not in now]
        if gone:
            conn.execute(
                delete(td.notice_lists).where(
                    and_(td.notice_lists.c.subject_id == sid.value, td.notice_lists.c.list_code.in_(gone))
                )
            )
        new = [m for m in result.lists if m.code not in before]
        if not new:
            return 0
        states = {(s.source, s.record_id): s for s in records}
        ts = utc_timestamp()
        conn.execute(
            insert(td.notice_lists),
            [{"subject_id": sid.value, "list_code": m.code, "since": now[m.code]} for m in new],
        )
        conn.execute(
            insert(td.notices),
            [
                {
                    "id": new_id("nt_"),
                    "subject_id": sid.value,
                    "kind": "list.placed",
                    "list_code": m.code,
                    "created_at": ts,
                    "body": json.dumps(
                        notice_body(catalog, sid, m.code, result, states, today),
                        ensure_ascii=False,
                        sort_keys=True,
                    ),
                    "delivery": "pending",
                    "attempts": 0,
                }
                for m in new
            ],
        )
        return len(new)

    def sync_notices(self, today: date | None = None, limit: int = 100_000) -> int:
        """Notices for every subject whose records changed since the last sweep (incremental, by ledger seq)."""
        today = today or clock.today()
        with self.engine.connect() as conn:
            cursor = conn.execute(
                select(td.due_state.c.value).where(td.due_state.c.name == NOTICE_CURSOR)
            ).scalar_one_or_none()
            after = int(cursor) if cursor else 0
            subjects, upto = repo.subjects_touched(conn, after, limit=limit)
        n = self.sync_subjects(subjects, today)
        if upto > after:
            with self.engine.begin() as conn:
                res = conn.execute(
                    update(td.due_state).where(td.due_state.c.name == NOTICE_CURSOR).values(value=str(upto))
                )
                if not res.rowcount:
                    conn.execute(insert(td.due_state).values(name=NOTICE_CURSOR, value=str(upto)))
        return n

    def sync_changed(self, after_seq: int, source: str | None = None, today: date | None = None) -> int:
        """Notices for the subjects whose records (of ``source``) changed after ledger seq ``after_seq``.

        What an ingest request runs for its own operations: bounded by what it wrote, unlike the sweep,
        whose first run over a database loaded by ``socred ingest`` visits every subject. The sweep's
        cursor is left alone; a later sweep finds these subjects' placements already noticed.
        """
        with self.engine.connect() as conn:
            subjects, _upto = repo.subjects_touched(conn, after_seq, source)
        return self.sync_subjects(subjects, today) if subjects else 0

    def notices_of(self, conn: Connection, subject_id: str) -> list[dict[str, Any]]:
        rows = conn.execute(
            select(td.notices)
            .where(td.notices.c.subject_id == subject_id)
            .order_by(td.notices.c.created_at.desc(), td.notices.c.id.desc())
        ).all()
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "list": r.list_code,
                "created_at": r.created_at,
                "delivery": r.delivery,
                **json.loads(r.body),
            }
            for r in rows
        ]

    def deliver(self, smtp_url: str | None = None, recipients: Mapping[str, str] | None = None) -> int:
        """Send pending notices by e-mail when ``SOCRED_SMTP_URL`` is set; returns how many were sent.

        ``smtp_url`` is ``smtp://[user:password@]host[:port]?from=notices@example.org[&starttls=1]``.
        A subject's address comes from ``recipients`` (subject id -> address); without one the
        notice is marked ``no_address`` and stays readable in the subject's report.
        """
        smtp_url = smtp_url or os.environ.get("SOCRED_SMTP_URL")
        if not smtp_url:
            return 0
        url = urlparse(smtp_url)
        params = parse_qs(url.query)
        sender = params.get("from", ["socred@localhost"])[0]
        with self.engine.connect() as conn:
            pending = conn.execute(
                select(td.notices).where(td.notices.c.delivery == "pending").limit(1000)
            ).all()
        if not pending:
            return 0
        sent = 0
        results: list[tuple[str, str]] = []
        with smtplib.SMTP(url.hostname or "localhost", url.port or 25, timeout=30) as smtp:
            if params.get("starttls", ["0"])[0] in ("1", "true"):
                smtp.starttls()
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            for r in pending:
                to = (recipients or {}).get(r.subject_id)
                if not to:
                    results.append((r.id, "no_address"))
                    continue
                msg = EmailMessage()
                msg["From"], msg["To"] = sender, to
                msg["Subject"] = f"socred notice: placed on list {r.list_code}"
                msg.set_content(notice_text(json.loads(r.body)))
                try:
                    smtp.send_message(msg)
                    results.append((r.id, "sent"))
                    sent += 1
                except smtplib.SMTPException:
                    results.append((r.id, "failed"))
        with self.engine.begin() as conn:
            ts = utc_timestamp()
            for nid, status in results:
                conn.execute(
                    update(td.notices)
                    .where(td.notices.c.id == nid)
                    .values(
                        delivery=status,
                        delivered_at=ts if status == "sent" else None,
                        attempts=td.notices.c.attempts + 1,
                    )
                )
        return sent

    # ------------------------------------------------------------ the subject's own report

    def report_extras(
        self, sid: SubjectId, score: Mapping[str, Any] | None, today: date | None = None
    ) -> dict[str, Any]:
        """What due process adds to the subject's own report (see docs/due-process.md)."""
        today = today or clock.today()
        self.sync_subject(sid.value, today)  # lazy catch-up for changes made by ingestion
        catalog = self._catalog(sid, today)
        with self.engine.connect() as conn:
            states = repo.subject_records(conn, sid.value)
            disputed = self.disputed(conn, sid.value)
            objections = [
                _objection_dict(r, today)
                for r in conn.execute(
                    select(td.objections)
                    .where(td.objections.c.subject_id == sid.value)
                    .order_by(td.objections.c.filed_at, td.objections.c.id)
                )
            ]
            repairs = [
                _repair_dict(r)
                for r in conn.execute(
                    select(td.repairs)
                    .where(td.repairs.c.subject_id == sid.value)
                    .order_by(td.repairs.c.applied_at, td.repairs.c.id)
                )
            ]
            notices = self.notices_of(conn, sid.value)
        items: dict[str, dict[str, Any]] = {}
        for s in states:
            cat = catalog.category_for(s.category, sid.kind) if catalog else None
            info: dict[str, Any] = {
                "disputed": (s.source, s.record_id) in disputed,
                "severity": cat.severity if cat else None,
                "negative": bool(cat and cat.points < 0),
                "expires_on": (s.occurred_on.toordinal() + cat.valid_for) if cat else None,
                "published": due_process.is_published(cat, s, today) if cat else False,
                "publicity_ends_on": _iso(due_process.publicity_ends_on(cat, s.occurred_on)) if cat else None,
                "repair_eligible_on": _iso(due_process.repair_eligible_on(cat, s.occurred_on))
                if cat and cat.points < 0
                else None,
            }
            if info["expires_on"] is not None:
                info["expires_on"] = date.fromordinal(info["expires_on"]).isoformat()
            items[f"{s.source}\x00{s.record_id}"] = info
        return {
            "items": items,
            "restrictions": restrictions(catalog, score, states, sid, items) if catalog and score else [],
            "objections": objections,
            "repairs": repairs,
            "notices": notices,
        }


# ---------------------------------------------------------------- views


def _records_of(conn: Connection, subject_ids: list[str]) -> list[RecordState]:
    """The records of several subjects in full (one query, then their ledger entries)."""
    rows = [r for rs in repo.subject_rows(conn, subject_ids).values() for r in rs]
    states = repo.replay(conn, rows)
    return [states[(r.source, r.record_id)] for r in rows]


def _objection_dict(r: Any, today: date) -> dict[str, Any]:
    return {
        "id": r.id,
        "source": r.source,
        "record_id": r.record_id,
        "subject_id": r.subject_id,
        "reason": r.reason,
        "status": r.status,
        "filed_at": r.filed_at,
        "due_by": _iso(r.due_by),
        "overdue": due_process.is_overdue(_day(r.due_by), today, open_=r.status == "open"),
        "appeal_of": r.appeal_of,
        "decided_by": r.decided_by,
        "decided_at": r.decided_at,
        "decision_reason": r.decision_reason,
        "ledger_seq": r.ledger_seq,
    }


def _repair_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "source": r.source,
        "record_id": r.record_id,
        "commitment": r.commitment,
        "status": r.status,
        "applied_at": r.applied_at,
        "eligible_on": _iso(r.eligible_on),
        "confirmed_by": r.confirmed_by,
        "decided_by": r.decided_by,
        "decided_at": r.decided_at,
        "decision_reason": r.decision_reason,
        "repaired_on": _iso(r.repaired_on),
    }


def how_to_object(catalog: Catalog) -> str:
    return (
        "If a record is wrong, object with POST /api/v1/me/objections {record_id, reason}; a reviewer "
        f"decides within {catalog.objection_days} days and the record shows as disputed meanwhile. "
        "A rejected objection can be appealed once; another reviewer decides the appeal."
    )


def how_to_repair(eligible: Iterable[tuple[str, str | None]]) -> str:
    dates = ", ".join(f"{rid} from {d}" for rid, d in eligible if d)
    return (
        "Once the obligation is fulfilled and the minimum publicity period has passed"
        + (f" ({dates})" if dates else "")
        + ", apply for credit repair with POST /api/v1/me/repairs {record_id, commitment}; the provider "
        "confirms the obligation fulfilled and a reviewer decides. An approved repair ends the list "
        "membership from the decision date."
    )


def notice_body(
    catalog: Catalog,
    sid: SubjectId,
    list_code: str,
    result: ScoreResult,
    states: Mapping[tuple[str, str], RecordState],
    today: date,
) -> dict[str, Any]:
    ld = catalog.lists[list_code]
    m = next(x for x in result.lists if x.code == list_code)
    reasons: list[dict[str, Any]] = []
    eligible: list[tuple[str, str | None]] = []
    for s in states.values():
        if s.record_id not in m.records:
            continue
        cat = catalog.category_for(s.category, sid.kind)
        if cat is None or list_code not in cat.lists:
            continue
        when = due_process.repair_eligible_on(cat, s.occurred_on).isoformat()
        eligible.append((s.record_id, when))
        reasons.append(
            {
                "source": s.source,
                "record_id": s.record_id,
                "category": cat.code,
                "title": cat.title,
                "occurred_on": s.occurred_on.isoformat(),
                "case_number": s.case_number,
                "legal_basis": cat.legal_basis,
                "repair_eligible_on": when,
            }
        )
    if isinstance(m, list_actions.ManualMembership):
        reasons.append({"manual": m.manual})
    elif ld.grades is not None:
        reasons.append({"grade": result.grade, "score": result.score, "grades": list(ld.grades)})
    measures = [
        {
            "code": mc,
            "title": catalog.measures[mc].title,
            "activity": catalog.measures[mc].activity,
            "effect": catalog.measures[mc].effect,
            "legal_basis": catalog.measures[mc].legal_basis,
        }
        for mc in ld.measures
    ]
    bases = [ld.legal_basis] + [r["legal_basis"] for r in reasons if r.get("legal_basis")]
    bases += [x["legal_basis"] for x in measures if x["legal_basis"]]
    return {
        "catalog": catalog.ref,
        "as_of": today.isoformat(),
        "list_kind": ld.kind,
        "list_title": ld.title,
        "since": _iso(m.since),
        "until": _iso(m.until),
        "reasons": reasons,
        "measures": measures,
        "legal_basis": sorted({b for b in bases if b}),
        "how_to_object": how_to_object(catalog),
        "how_to_repair": how_to_repair(eligible) if ld.kind == "black" else None,
    }


def notice_text(body: Mapping[str, Any]) -> str:
    lines = [
        f"You were placed on the list '{body.get('list_title')}' ({body.get('list_kind')}) "
        f"from {body.get('since') or body.get('as_of')}"
        + (f" until {body['until']}." if body.get("until") else "."),
        "",
        "Reasons:",
    ]
    for r in body.get("reasons", []):
        if "record_id" in r:
            lines.append(f"- {r['title']} (record {r['record_id']}, {r['occurred_on']}): {r['legal_basis']}")
        elif "manual" in r:
            lines.append(f"- {r['manual']}")
        else:
            lines.append(f"- grade {r.get('grade')} (score {r.get('score')})")
    lines += ["", "Measures:"]
    lines += [f"- {m['title']} ({m['activity']}, {m['effect']})" for m in body.get("measures", [])]
    lines += [
        "",
        "Legal basis: " + "; ".join(body.get("legal_basis", [])),
        "",
        str(body.get("how_to_object")),
    ]
    if body.get("how_to_repair"):
        lines += ["", str(body["how_to_repair"])]
    return "\n".join(lines) + "\n"


def restrictions(
    catalog: Catalog,
    score: Mapping[str, Any],
    states: Iterable[RecordState],
    sid: SubjectId,
    items: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Each list the subject is on, its measures, when it ends and what would lift it."""
    by_rid: dict[str, list[RecordState]] = {}
    for s in states:
        by_rid.setdefault(s.record_id, []).append(s)
    out: list[dict[str, Any]] = []
    for m in score.get("lists", []):
        ld = catalog.lists.get(m["code"])
        if ld is None:
            continue
        lifts: list[str] = []
        manual = (m.get("manual") or {}).get("explanation")
        if manual:
            lifts.append(
                f"{manual}: it ends "
                + (f"on {m['until']}" if m.get("until") else "when two administrators approve its removal")
            )
        if ld.grades is not None:
            lifts.append(
                f"membership follows the grade: it ends when the grade is no longer one of {', '.join(ld.grades)}"
            )
        else:
            if m.get("until"):
                lifts.append(f"it ends by itself on {m['until']}")
            for rid in m.get("records", []):
                for s in by_rid.get(rid, []):
                    info = items.get(f"{s.source}\x00{s.record_id}", {})
                    when = info.get("repair_eligible_on")
                    lifts.append(
                        f"record {rid} ({s.source}): credit repair"
                        + (f" from {when}" if when else "")
                        + " once the obligation is fulfilled and the provider confirms it, or an upheld objection"
                    )
        out.append(
            {
                "list": ld.code,
                "kind": ld.kind,
                "title": ld.title,
                "since": m.get("since"),
                "until": m.get("until"),
                "measures": [
                    {
                        "code": mc,
                        "title": catalog.measures[mc].title,
                        "activity": catalog.measures[mc].activity,
                        "effect": catalog.measures[mc].effect,
                    }
                    for mc in ld.measures
                ],
                "records": list(m.get("records", [])),
                "what_lifts_it": lifts,
            }
        )
    return out


__all__ = ["DueProcess", "DueProcessError", "Filed", "notice_body", "notice_text", "restrictions"]
