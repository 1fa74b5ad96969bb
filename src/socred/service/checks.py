"""Restriction checks for relying parties: an in-memory index kept current, and receipts.

The :class:`CheckIndex` holds every record as the scorer sees it, grouped by
subject, plus the active catalogs, as of a ledger head ``(seq, hash)``. Before
answering, the service reads the head (one row); when it moved, the index loads
the records whose ``last_seq`` is above its own seq — in the same read snapshot as
the head, so the answer is exactly "as of ledger size N". A check therefore
reflects every write committed before it arrived, from any process, without a
fresh scoring pass: the per-subject evaluator :func:`scoring.check` runs over the
indexed records.

Every answer is logged before it is given, as a **receipt** (subject, activity,
date, decision, catalog version, party, and the ledger size and head hash it was
computed from); the subject's access log shows the receipts about it. :func:`reproduce`
recomputes a receipt from the ledger alone.

Requests are served by one worker thread per process that takes whatever is
queued and, in one transaction, reads the head, refreshes the index, re-reads the
parties' keys, evaluates, and inserts the group's receipts (group commit). Callers
in the event loop await a future; nothing blocks the loop. The worker makes few
database calls per group on purpose: each one releases the GIL, and getting it back
while the event loop is busy costs up to a switch interval.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import SQLAlchemyError

from socred.domain import scoring
from socred.domain.catalog import Catalog, CatalogError, parse_catalog
from socred.domain.federation import NationalMembership
from socred.domain.federation import overlay as federation_overlay
from socred.domain.ids import IdentifierError, SubjectId, parse_subject_id
from socred.domain.records import RecordState, apply_body, canonical
from socred.domain.scoring import ScoringError, ScoringRecord
from socred.ledger.chain import GENESIS_HEX, utc_timestamp
from socred.service import federation, list_actions
from socred.service.auth import Party, parties_by_key_hashes
from socred.service.common import new_id
from socred.service.platform import NotFound, Platform
from socred.store import repo
from socred.store import schema as t
from socred.store import schema_api as ta

log = logging.getLogger("socred.checks")

RECORD_OPS = ("submit", "correct", "retract", "repair")
MAX_GROUP_SUBJECTS = 20_000
# ------------------------------------------------------------------ the index


class CheckIndex:
    """Records by subject and the active catalogs, as of ledger head ``(seq, head)``."""

    def __init__(self) -> None:
        self.seq = -1
        self.head = ""
        self.by_subject: dict[str, dict[tuple[str, str], ScoringRecord]] = {}
        self.actions: dict[str, list[list_actions.ListAction]] = {}  # approved manual list actions
        self.national: dict[str, list[NationalMembership]] = {}  # lists published by upstream nodes
        self._lists_marker: tuple[tuple[str, int], ...] | None = None
        self.catalogs: list[Catalog] = []
        self.records = 0
        self._parsed: dict[tuple[str, int, str], Catalog] = {}
        self._chosen: dict[tuple[str, str, date], Catalog | ScoringError] = {}
        self._blank: dict[tuple[str, str, str, date], dict[str, Any]] = {}  # answers for no records

    @property
    def loaded(self) -> bool:
        return self.seq >= 0

    def refresh(self, conn: Connection) -> bool:
        """Bring the index to the head visible in ``conn``'s snapshot; True when it moved."""
        seq, head = repo.head(conn)
        if seq == self.seq and head == self.head:
            return False
        full = seq < self.seq or self.seq < 0
        if not full and self.seq == seq:  # same size, other hash: another database behind the same URL
            full = True
        cols = (
            t.records.c.source,
            t.records.c.record_id,
            t.records.c.subject_id,
            t.records.c.category,
            t.records.c.occurred_on,
            t.records.c.retracted,
            t.records.c.repaired_on,
        )
        q = select(*cols)
        if full:
            self.by_subject = {}
            self.records = 0
        else:
            q = q.where(t.records.c.last_seq > self.seq)
        by_subject = self.by_subject
        added = 0
        for source, record_id, subject_id, category, occurred_on, retracted, repaired_on in conn.execute(q):
            recs = by_subject.get(subject_id)
            if recs is None:
                recs = by_subject[subject_id] = {}
            key = (source, record_id)
            if key not in recs:
                added += 1
            recs[key] = ScoringRecord(
                record_id,
                source,
                category,
                _day(occurred_on),
                bool(retracted),
                _day(repaired_on) if repaired_on is not None else None,
            )
        self.records += added
        if full:
            self.actions = {}
        for a in list_actions.approved(conn, None, 0 if full else self.seq):
            self.actions.setdefault(a.subject_id, []).append(a)
        marker = federation.lists_marker(conn)
        if full or marker != self._lists_marker:
            self.national = federation.national_memberships(conn) if marker else {}
            self._lists_marker = marker
        self._load_catalogs(conn)
        self.seq, self.head = seq, head
        return True

    def _load_catalogs(self, conn: Connection) -> None:
        parsed: list[Catalog] = []
        cache: dict[tuple[str, int, str], Catalog] = {}
        for r in repo.catalog_documents(conn):
            k = (r.id, int(r.version), r.digest)
            cat = self._parsed.get(k)
            if cat is None:
                try:
                    cat = parse_catalog(json.loads(r.document))
                except (
                    CatalogError,
                    ValueError,
                ):  # stored catalogs were validated on load; skip a damaged one
                    log.error("stored catalog %s@%s cannot be parsed; skipped", r.id, r.version)
                    continue
            cache[k] = cat
            parsed.append(cat)
        self._parsed = cache
        self.catalogs = parsed
        self._chosen = {}
        self._blank = {}

    def catalog_for(self, sid: SubjectId, at: date) -> Catalog:
        key = (sid.region, sid.kind, at)
        hit = self._chosen.get(key)
        if hit is None:
            try:
                hit = scoring.select_catalog(self.catalogs, sid.region, sid.kind, at, None)
            except ScoringError as e:
                hit = e
            if len(self._chosen) > 100_000:
                self._chosen = {}
            self._chosen[key] = hit
        if isinstance(hit, ScoringError):
            raise hit
        return hit

    def records_of(self, subject_id: str) -> list[ScoringRecord]:
        recs = self.by_subject.get(subject_id)
        return list(recs.values()) if recs else []

    def check(self, sid: SubjectId, activity: str, at: date) -> dict[str, Any]:
        """The ``check --json`` object of cli.md for one subject (with lists published from above)."""
        answer = self._local_check(sid, activity, at)
        national = self.national.get(sid.value)
        return federation_overlay(answer, national, activity, at) if national else answer

    def _local_check(self, sid: SubjectId, activity: str, at: date) -> dict[str, Any]:
        catalog = self.catalog_for(sid, at)
        actions = self.actions.get(sid.value)
        if not actions and not self.by_subject.get(sid.value):
            # Most subjects a relying party asks about have no record at all: their answer is the
            # catalog's answer for an empty history, the same for every subject of that kind.
            key = (catalog.ref, sid.kind, activity, at)
            blank = self._blank.get(key)
            if blank is None:
                if len(self._blank) > 10_000:
                    self._blank = {}
                empty = scoring.score(catalog, "", sid.kind, (), at)
                blank = self._blank[key] = scoring.check_from_score(catalog, empty, activity).to_dict()
            return {**blank, "subject_id": sid.value}
        result = scoring.score(catalog, sid.value, sid.kind, self.records_of(sid.value), at)
        if actions:
            result = list_actions.apply(catalog, result, actions)
        return scoring.check_from_score(catalog, result, activity).to_dict()


def _day(v: Any) -> date:
    return v if isinstance(v, date) else date.fromisoformat(str(v))


# ------------------------------------------------------------------ jobs and outcomes


@dataclass
class CheckJob:
    """One request: a single check (``batch=False``, one subject) or a batch."""

    party: str  # the party code as authenticated at the door
    activity: str
    subjects: Sequence[SubjectId]
    at: date
    batch: bool = False
    key_hash: str | None = None  # re-verified against the parties table in the answer's snapshot


@dataclass
class CheckOutcome:
    status: int  # 200, or 401 / 403 / 422 / 503
    results: list[dict[str, Any]] = field(default_factory=list)
    receipt: str | None = None  # receipt id (single) or batch id
    ledger_size: int = 0
    ledger_head: str = ""
    error: str | None = None
    field: str | None = None
    party: str | None = None  # the party as verified in the answer's snapshot


# ------------------------------------------------------------------ the service


class CheckService:
    """Answers checks from the index; one worker thread groups queued requests."""

    def __init__(
        self,
        platform: Platform,
        read_engine: Engine | None = None,
        on_group: Callable[[int, float], None] | None = None,
        write_engine: Engine | None = None,
        checkpoint_every: float | None = None,
    ) -> None:
        self.platform = platform
        self.read_engine = read_engine or platform.engine
        self.write_engine = write_engine or platform.engine
        # SQLite: the writer connections do not checkpoint the WAL on commit (an fsync of the whole
        # database file would stall every queued check); this thread does it in the background.
        self.checkpoint_every = checkpoint_every
        self._checkpointer: threading.Thread | None = None
        self._halt = threading.Event()  # stops the checkpointer (its own signal: the queue's is notify-one)
        self.index = CheckIndex()
        self.on_group = on_group
        self.last_error: str | None = None
        # relying parties by key hash as last read (None: no such key); the door's first look
        self.party_cache: dict[str, Party | None] = {}
        self._lock = threading.Lock()
        self._cv = threading.Condition()
        self._queue: deque[tuple[CheckJob, Future[CheckOutcome]]] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="socred-checks", daemon=True)
        self._thread.start()
        if self.checkpoint_every and self._checkpointer is None:
            self._halt.clear()
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="socred-wal", daemon=True
            )
            self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        assert self.checkpoint_every
        while not self._halt.wait(self.checkpoint_every):
            try:
                with self.read_engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except SQLAlchemyError as e:  # the next round tries again
                log.warning("WAL checkpoint failed: %s", str(e).splitlines()[0])

    def stop(self, timeout: float = 10.0) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._halt.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout)
            self._checkpointer = None

    def submit(self, job: CheckJob) -> Future[CheckOutcome]:
        fut: Future[CheckOutcome] = Future()
        if self._thread is None:
            self.start()
        with self._cv:
            self._queue.append((job, fut))
            self._cv.notify()
        return fut

    def _loop(self) -> None:
        try:
            self.warm()
        except Exception as e:
            self.last_error = f"{e.__class__.__name__}: {e}"
            log.warning("check index not loaded at start: %s", self.last_error)
        while True:
            with self._cv:
                while not self._queue and not self._stopping:
                    self._cv.wait()
                if self._stopping and not self._queue:
                    return
                group: list[tuple[CheckJob, Future[CheckOutcome]]] = []
                n = 0
                while self._queue and (not group or n < MAX_GROUP_SUBJECTS):
                    job, fut = self._queue.popleft()
                    if fut.set_running_or_notify_cancel():
                        group.append((job, fut))
                        n += len(job.subjects)
            if not group:
                continue
            try:
                outcomes = self.run([j for j, _ in group])
            except Exception as e:
                log.exception("check group failed")
                for _, fut in group:
                    fut.set_exception(e)
                continue
            for (_, fut), out in zip(group, outcomes, strict=True):
                fut.set_result(out)

    # -- the work

    def _snapshot(self) -> Connection:
        """A read-only snapshot (initial load: does not hold SQLite's write lock)."""
        conn = self.read_engine.connect()
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        return conn

    def _group_transaction(self) -> Connection:
        """The group's one transaction: its reads are one snapshot, and its receipts commit with it.

        On SQLite it holds the write lock from BEGIN, so no ledger write lands between reading the
        head and logging the answers; on PostgreSQL REPEATABLE READ gives the snapshot (the group
        only inserts new rows, so it never conflicts).
        """
        conn = self.write_engine.connect()
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        return conn

    def warm(self) -> None:
        with self._lock, self._snapshot() as conn:
            self.index.refresh(conn)
        self.last_error = None

    def run(self, jobs: Sequence[CheckJob]) -> list[CheckOutcome]:
        """Answer a group of jobs at one ledger head and log every answer, in one transaction."""
        started = time.perf_counter()
        with self._lock:
            try:
                with self._group_transaction() as conn, conn.begin():
                    self.index.refresh(conn)
                    parties = parties_by_key_hashes(conn, (j.key_hash for j in jobs if j.key_hash))
                    for j in jobs:
                        if j.key_hash is not None:
                            self.party_cache[j.key_hash] = parties.get(j.key_hash)
                    size, head = self.index.seq, self.index.head
                    outcomes = [self._answer(j, parties, size, head) for j in jobs]
                    self._log_answers(conn, jobs, outcomes)
            except SQLAlchemyError as e:
                self.last_error = f"{e.__class__.__name__}: {str(e).splitlines()[0]}"
                log.error("check group failed on the database: %s", self.last_error)
                return [
                    CheckOutcome(503, error="the database is not available; nothing was answered")
                    for _ in jobs
                ]
        self.last_error = None
        if self.on_group is not None:
            self.on_group(sum(len(j.subjects) for j in jobs), time.perf_counter() - started)
        return outcomes

    def _answer(self, job: CheckJob, parties: dict[str, Party], size: int, head: str) -> CheckOutcome:
        party = job.party
        if job.key_hash is not None:
            p = parties.get(job.key_hash)
            if p is None or p.revoked:
                return CheckOutcome(401, error="unknown or revoked relying-party key")
            if job.activity not in p.activities:
                return CheckOutcome(
                    403,
                    error=f"relying party {p.code!r} is not registered for activity {job.activity!r}",
                    field="activity",
                )
            party = p.code
        results: list[dict[str, Any]] = []
        for i, sid in enumerate(job.subjects):
            try:
                results.append(self.index.check(sid, job.activity, job.at))
            except ScoringError as e:
                where = f"subject_ids[{i}]" if job.batch else "subject_id"
                return CheckOutcome(422, error=_scrub(str(e), sid.value), field=where)
        receipt = new_id("rb_" if job.batch else "rc_")
        return CheckOutcome(
            200, results=results, receipt=receipt, ledger_size=size, ledger_head=head, party=party
        )

    def _log_answers(
        self, conn: Connection, jobs: Sequence[CheckJob], outcomes: Sequence[CheckOutcome]
    ) -> None:
        """One receipt per answer. The receipts are also the access-log entries of the checks
        (who: the party; when: issued_at; what: a check and its decision; why: the activity)."""
        now = utc_timestamp()
        receipts: list[tuple[Any, ...]] = []
        for job, out in zip(jobs, outcomes, strict=True):
            if out.status != 200 or out.receipt is None:
                continue
            party = out.party or job.party
            at = job.at.isoformat()
            for i, res in enumerate(out.results):
                receipts.append(
                    (
                        f"{out.receipt}.{i + 1}" if job.batch else out.receipt,
                        out.receipt if job.batch else None,
                        party,
                        res["subject_id"],
                        job.activity,
                        at,
                        res["decision"],
                        res["catalog"],
                        out.ledger_size,
                        out.ledger_head,
                        now,
                        canonical(res),
                    )
                )
        # straight through the driver (COPY on PostgreSQL): a batch of 10,000 answers is 10,000 rows
        repo.insert_rows(conn, "receipts", RECEIPT_COLUMNS, receipts)


RECEIPT_COLUMNS = (
    "id",
    "batch_id",
    "party",
    "subject_id",
    "activity",
    "at",
    "decision",
    "catalog",
    "ledger_size",
    "ledger_head",
    "issued_at",
    "result",
)


def _scrub(message: str, subject_id: str) -> str:
    """Never echo a full resident number: replace it by its masked form."""
    from socred.domain.ids import mask_subject_id

    if subject_id and subject_id in message:
        return message.replace(subject_id, mask_subject_id(subject_id))
    return message


# ------------------------------------------------------------------ receipts


def _receipt(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "batch_id": r.batch_id,
        "party": r.party,
        "subject_id": r.subject_id,
        "activity": r.activity,
        "at": _day(r.at).isoformat(),
        "decision": r.decision,
        "catalog": r.catalog,
        "ledger_size": int(r.ledger_size),
        "ledger_head": r.ledger_head,
        "issued_at": r.issued_at,
        "result": json.loads(r.result),
    }


def get_receipt(platform: Platform, receipt_id: str) -> dict[str, Any]:
    platform.ensure_schema()
    with platform.engine.connect() as conn:
        r = conn.execute(select(ta.receipts).where(ta.receipts.c.id == receipt_id)).first()
    if r is None:
        raise NotFound(f"no receipt {receipt_id!r}")
    return _receipt(r)


def list_receipts(
    platform: Platform,
    *,
    subject_id: str | None = None,
    party: str | None = None,
    batch_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    platform.ensure_schema()
    q = select(ta.receipts)
    if subject_id is not None:
        q = q.where(ta.receipts.c.subject_id == subject_id)
    if party is not None:
        q = q.where(ta.receipts.c.party == party)
    if batch_id is not None:
        q = q.where(ta.receipts.c.batch_id == batch_id)
    q = q.order_by(ta.receipts.c.issued_at.desc(), ta.receipts.c.id.desc()).limit(limit)
    with platform.engine.connect() as conn:
        return [_receipt(r) for r in conn.execute(q)]


def reproduce(platform: Platform, receipt: dict[str, Any]) -> dict[str, Any]:
    """Recompute a receipt's answer from the ledger alone, up to the size it names.

    Replays the record operations of the subject and the catalog documents on the
    ledger's first ``ledger_size`` entries, checks that entry ``ledger_size`` still has
    the head hash the receipt names (the ledger was not rewritten since), and runs the
    same evaluator. ``match`` is true when the recomputed answer equals the receipt's.
    """
    size = int(receipt["ledger_size"])
    try:
        sid = parse_subject_id(receipt["subject_id"])
    except IdentifierError as e:
        return {
            "receipt": receipt["id"],
            "match": False,
            "ledger_intact": False,
            "reason": f"stored subject is not valid: {e.reason}",
        }
    at = date.fromisoformat(receipt["at"])
    docs: dict[str, Any] = {}
    states: dict[tuple[str, str], RecordState] = {}
    manual: list[list_actions.ListAction] = []
    last_seq, last_hash = 0, GENESIS_HEX
    with platform.engine.connect() as conn:
        for entry in repo.iter_entries(conn):
            if entry.seq > size:
                break
            last_seq, last_hash = entry.seq, entry.hash
            if entry.kind == "catalog.load":
                body = entry.decoded()
                docs[f"{body['id']}@{body['version']}"] = body["document"]
            elif entry.kind == list_actions.KIND:
                body = entry.decoded()
                if body.get("subject_id") == sid.value:
                    manual.append(list_actions.ListAction.from_body(entry.seq, body))
            elif entry.kind in RECORD_OPS:
                body = entry.decoded()
                k = (body["source"], body["record_id"])
                if entry.kind == "submit":
                    if body.get("subject_id") == sid.value:
                        states[k] = apply_body(None, body)
                elif k in states:
                    states[k] = apply_body(states[k], body)
    intact = last_seq == size and last_hash == receipt["ledger_head"]
    out: dict[str, Any] = {"receipt": receipt["id"], "ledger_size": size, "ledger_intact": intact}
    if not intact:
        out.update(
            match=False, reason=f"the ledger's entry {size} no longer has the head hash of the receipt"
        )
        return out
    doc = docs.get(receipt["catalog"])
    if doc is None:
        out.update(
            match=False, reason=f"catalog {receipt['catalog']} is not on the ledger's first {size} entries"
        )
        return out
    catalog = parse_catalog(doc)
    records = [
        ScoringRecord(s.record_id, s.source, s.category, s.occurred_on, s.retracted, s.repaired_on)
        for s in states.values()
    ]
    result = list_actions.apply(catalog, scoring.score(catalog, sid.value, sid.kind, records, at), manual)
    again = scoring.check_from_score(catalog, result, receipt["activity"]).to_dict()
    with platform.engine.connect() as conn:
        national = federation.national_memberships(conn, size, sid.value).get(sid.value)
    if national:  # the lists published from above, as this node held them at that ledger size
        again = federation_overlay(again, national, receipt["activity"], at)
    out.update(recomputed=again, match=again == receipt["result"])
    return out


def parse_subjects(raw: Iterable[str]) -> tuple[list[SubjectId], list[tuple[int, str]]]:
    """Parse identifiers; returns the parsed ones and ``(position, reason)`` of the invalid ones."""
    ok: list[SubjectId] = []
    bad: list[tuple[int, str]] = []
    for i, v in enumerate(raw):
        try:
            ok.append(parse_subject_id(v))
        except IdentifierError as e:
            bad.append((i, _scrub(e.reason, v.strip().upper())))
    return ok, bad
