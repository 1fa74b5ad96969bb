"""Restriction checks for relying parties: answers read from indexed storage, and receipts.

Nothing is loaded at start and nothing grows with the database: a check reads, for the subjects it
is asked about, their rows of ``records`` (one indexed read for a whole group of requests), their
approved manual list actions and the lists published from above, all in one read snapshot together
with the ledger head ``(seq, hash)`` — so an answer is exactly "as of ledger size N", and reflects
every write committed before it arrived, from any process. The answer is
:func:`socred.domain.answers.check_answer`, the one definition every path uses.

Most subjects a relying party asks about have nothing that can change the answer: only records of
categories naming a list that carries a measure of the activity can (when no grade-triggered list
carries one, :func:`socred.domain.answers.relevant_categories`), and the read asks the index for those
categories only. Subjects without any share one answer per (catalog, kind, activity, date).

Every answer is logged before it is given, as a **receipt** (:mod:`socred.service.receipts`): one row
per request, in one transaction per group of requests (group commit).

Requests are served by one worker thread per process that takes whatever is queued and answers it
as a group: one read snapshot, one transaction of receipts. Callers in the event loop await a future;
nothing blocks the loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, String, case, func, select
from sqlalchemy.exc import SQLAlchemyError

from socred.domain import clock
from socred.domain.answers import ActivityPlan, check_answer, plan, quick_check, relevant_categories
from socred.domain.catalog import Catalog, CatalogError, parse_catalog
from socred.domain.federation import NationalMembership
from socred.domain.ids import IdentifierError, SubjectId, mask_subject_id, parse_many, parse_subject_id
from socred.domain.list_actions import ListAction
from socred.domain.scoring import Chooser, ScoringError
from socred.ledger.chain import utc_timestamp
from socred.service import federation, list_actions, receipts
from socred.service.auth import Party, parties_by_key_hashes
from socred.service.common import new_id
from socred.service.platform import Platform
from socred.service.receipts import Answers, SharedAnswer, get_receipt, list_receipts, reproduce
from socred.store import repo
from socred.store import schema as t
from socred.store import schema_due as td
from socred.store import schema_fed as tf

log = logging.getLogger("socred.checks")

MAX_GROUP_SUBJECTS = 20_000

__all__ = [
    "CheckJob",
    "CheckOutcome",
    "CheckService",
    "get_receipt",
    "list_receipts",
    "parse_subjects",
    "reproduce",
]


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
    answers: Answers | None = None
    receipt: str | None = None  # receipt id (single) or batch id
    ledger_size: int = 0
    ledger_head: str = ""
    error: str | None = None
    field: str | None = None
    party: str | None = None  # the party as verified in the answer's snapshot

    @property
    def results(self) -> list[dict[str, Any]]:
        """The ``check --json`` objects, in the order asked."""
        a = self.answers
        return [] if a is None else [a.result(i) for i in range(len(a.subjects))]

    def batch_json(self) -> bytes:
        """``{"results": [{subject_id, decision, until}, ...]}`` as JSON, built per distinct answer."""
        a = self.answers
        if a is None:
            return b'{"results":[]}'
        tails: dict[int, str] = {}
        parts = []
        for sid, tpl in zip(a.subjects, a.templates, strict=True):
            tail = tails.get(id(tpl))
            if tail is None:
                tail = tails[id(tpl)] = (
                    '","decision":'
                    + json.dumps(tpl["decision"])
                    + ',"until":'
                    + json.dumps(tpl["until"])
                    + "}"
                )
            parts.append('{"subject_id":"' + sid + tail)
        return ('{"results":[' + ",".join(parts) + "]}").encode()


# ------------------------------------------------------------------ what the service keeps


@dataclass(frozen=True, slots=True)
class _Route:
    """Where a subject's check goes: its catalog, the categories that can change the answer (None: all)
    and the answer for nothing on file."""

    catalog: Catalog
    relevant: frozenset[str] | None
    blank: dict[str, Any]
    plan: ActivityPlan | None


class _Catalogs:
    """The active catalogs, parsed once and kept until the catalogs table changes, with the choice of
    scoring.md cached (:class:`Chooser`), the relevant categories and the answers for no records."""

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        self.versions: list[Catalog] = []
        self.chooser = Chooser([])
        self._parsed: dict[tuple[str, int, str], Catalog] = {}
        self.relevant: dict[tuple[str, str], frozenset[str] | None] = {}
        self.plans: dict[tuple[str, str], ActivityPlan | None] = {}
        self.blank: dict[tuple[str, str, str, date], dict[str, Any]] = {}

    def refresh(self, conn: Connection, key: Any = None) -> None:
        """Re-read the catalogs when ``key`` (the catalogs table's state, :data:`_STATE`) changed."""
        if key is None:
            key = conn.execute(_STATE).one()[2]
        if key == self.key:
            return
        parsed: list[Catalog] = []
        cache: dict[tuple[str, int, str], Catalog] = {}
        for r in repo.catalog_documents(conn):
            k = (r.id, int(r.version), r.digest)
            cat = self._parsed.get(k)
            if cat is None:
                try:
                    cat = parse_catalog(json.loads(r.document))
                except (CatalogError, ValueError):  # stored catalogs were validated on load
                    log.error("stored catalog %s@%s cannot be parsed; skipped", r.id, r.version)
                    continue
            cache[k] = cat
            parsed.append(cat)
        self._parsed, self.versions, self.key = cache, parsed, key
        self.chooser = Chooser(parsed)
        self.relevant, self.blank, self.plans = {}, {}, {}

    def plan_for(self, catalog: Catalog, activity: str) -> ActivityPlan | None:
        k = (catalog.ref, activity)
        if k not in self.plans:
            self.plans[k] = plan(catalog, activity)
        return self.plans[k]

    def relevant_for(self, catalog: Catalog, activity: str) -> frozenset[str] | None:
        k = (catalog.ref, activity)
        if k not in self.relevant:
            self.relevant[k] = relevant_categories(catalog, activity)
        return self.relevant[k]

    def blank_for(self, catalog: Catalog, kind: str, activity: str, at: date) -> dict[str, Any]:
        """The answer for a subject of ``kind`` with nothing on file (without its subject)."""
        k = (catalog.ref, kind, activity, at)
        got = self.blank.get(k)
        if got is None:
            if len(self.blank) > 10_000:
                self.blank = {}
            answer = check_answer(catalog, "", kind, (), (), None, activity, at)
            del answer["subject_id"]
            got = self.blank[k] = SharedAnswer(answer)
        return got


# ------------------------------------------------------------------ the service


class CheckService:
    """Answers checks from indexed storage; one worker thread groups queued requests."""

    def __init__(
        self,
        platform: Platform,
        read_engine: Engine | None = None,
        on_group: Callable[[int, float], None] | None = None,
        write_engine: Engine | None = None,
        checkpoint_every: float | None = None,
        index_every: float | None = 5.0,
    ) -> None:
        self.platform = platform
        self.read_engine = read_engine or platform.engine
        self.write_engine = write_engine or platform.engine
        # SQLite: the writer connections do not checkpoint the WAL on commit (an fsync of the whole
        # database file would stall every queued check); a thread does it in the background, and
        # indexes the subjects of batch receipts for the access logs.
        self.checkpoint_every = checkpoint_every
        self.index_every = index_every
        self._background: threading.Thread | None = None
        self._halt = threading.Event()
        self.catalogs = _Catalogs()
        self.on_group = on_group
        self.last_error: str | None = None
        # relying parties by key hash as last read (None: no such key); the door's first look
        self.party_cache: dict[str, Party | None] = {}
        self._lock = threading.Lock()
        self._cv = threading.Condition()
        self._queue: deque[tuple[CheckJob, Future[CheckOutcome]]] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._inline: list[tuple[CheckJob, asyncio.Future[CheckOutcome]]] = []
        # SQLite: groups are answered in the event loop (see :meth:`submit_inline`)
        self.inline = self.write_engine.dialect.name == "sqlite"

    # -- lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="socred-checks", daemon=True)
        self._thread.start()
        if (self.checkpoint_every or self.index_every) and self._background is None:
            self._halt.clear()
            self._background = threading.Thread(
                target=self._background_loop, name="socred-checks-bg", daemon=True
            )
            self._background.start()

    def _background_loop(self) -> None:
        period = min(p for p in (self.checkpoint_every, self.index_every) if p)
        last_index = 0.0
        while not self._halt.wait(period):
            if self.checkpoint_every:
                try:
                    with self.read_engine.connect() as conn:
                        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                except SQLAlchemyError as e:  # the next round tries again
                    log.warning("WAL checkpoint failed: %s", str(e).splitlines()[0])
            if self.index_every and time.monotonic() - last_index >= self.index_every:
                last_index = time.monotonic()
                try:
                    receipts.index_batches(self.write_engine)
                except SQLAlchemyError as e:
                    log.warning("indexing batch receipts failed: %s", str(e).splitlines()[0])

    def stop(self, timeout: float = 10.0) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._halt.set()
        if self._background is not None:
            self._background.join(timeout)
            self._background = None

    def submit_inline(self, job: CheckJob) -> asyncio.Future[CheckOutcome]:
        """Queue a job for the group the event loop answers once its ready callbacks have run.

        Every request whose handler runs in this turn of the loop joins the group; the group is
        answered by :meth:`run` right in the loop (no thread, no hand-over of the GIL).
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[CheckOutcome] = loop.create_future()
        self._inline.append((job, fut))
        if len(self._inline) == 1:
            loop.call_soon(self._run_inline)
        return fut

    def _run_inline(self) -> None:
        group, self._inline = self._inline, []
        try:
            outcomes = self.run([j for j, _ in group])
        except Exception as e:
            log.exception("check group failed")
            for _, fut in group:
                if not fut.done():
                    fut.set_exception(e)
            return
        for (_, fut), out in zip(group, outcomes, strict=True):
            if not fut.done():
                fut.set_result(out)

    def submit(self, job: CheckJob) -> Future[CheckOutcome]:
        fut: Future[CheckOutcome] = Future()
        if self._thread is None:
            self.start()
        with self._cv:
            self._queue.append((job, fut))
            self._cv.notify()
        return fut

    def _loop(self) -> None:
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
        """A read-only snapshot (on SQLite it takes no write lock)."""
        conn = self.read_engine.connect()
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        return conn

    def warm(self) -> None:
        """Read the catalogs (what a first check would do); nothing else is loaded, at any size."""
        with self._lock, self._snapshot() as conn:
            self.catalogs.refresh(conn)
        self.last_error = None

    def run(self, jobs: Sequence[CheckJob]) -> list[CheckOutcome]:
        """Answer a group of jobs in one read snapshot, and log every answer in one transaction."""
        started = time.perf_counter()
        with self._lock:
            try:
                with self._snapshot() as conn, conn.begin():
                    size, head, catalogs, actions, national = conn.execute(_STATE).one()
                    self.catalogs.refresh(conn, catalogs)
                    parties = parties_by_key_hashes(conn, (j.key_hash for j in jobs if j.key_hash))
                    for j in jobs:
                        if j.key_hash is not None:
                            self.party_cache[j.key_hash] = parties.get(j.key_hash)
                    outcomes = self._answer_all(
                        conn, jobs, parties, int(size), str(head), bool(actions), bool(national)
                    )
                issued = utc_timestamp()
                rows = [
                    (o.receipt, o.party or j.party, j.activity, j.at, issued, size, head, o.answers, j.batch)
                    for j, o in zip(jobs, outcomes, strict=True)
                    if o.status == 200 and o.receipt is not None and o.answers is not None
                ]
                if rows:
                    with self.write_engine.begin() as wconn:
                        receipts.write(wconn, rows)
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

    def _answer_all(
        self,
        conn: Connection,
        jobs: Sequence[CheckJob],
        parties: dict[str, Party],
        size: int,
        head: str,
        any_actions: bool = True,
        any_national: bool = True,
    ) -> list[CheckOutcome]:
        cats = self.catalogs
        outcomes: list[CheckOutcome | None] = []
        routed: list[list[_Route]] = []
        wanted: dict[frozenset[str] | None, set[str]] = {}
        memo: dict[tuple[str, str, date, str], _Route] = {}
        for job in jobs:
            refused = self._door(job, parties)
            if refused is not None:
                outcomes.append(refused)
                routed.append([])
                continue
            chosen: list[_Route] = []
            try:
                for sid in job.subjects:
                    key = (sid.region, sid.kind, job.at, job.activity)
                    route = memo.get(key)
                    if route is None:
                        catalog = cats.chooser.choose(sid.region, sid.kind, job.at)
                        route = memo[key] = _Route(
                            catalog,
                            cats.relevant_for(catalog, job.activity),
                            cats.blank_for(catalog, sid.kind, job.activity, job.at),
                            cats.plan_for(catalog, job.activity),
                        )
                    chosen.append(route)
            except ScoringError as e:
                where = f"subject_ids[{len(chosen)}]" if job.batch else "subject_id"
                sid_value = job.subjects[len(chosen)].value
                outcomes.append(CheckOutcome(422, error=_scrub(str(e), sid_value), field=where))
                routed.append([])
                continue
            outcomes.append(None)
            routed.append(chosen)
            for sid, route in zip(job.subjects, chosen, strict=True):
                wanted.setdefault(route.relevant, set()).add(sid.value)
        # each category filter reads its own rows: a subject asked about for two activities in one group
        # gets, for each, exactly the records that filter reads
        rows: dict[frozenset[str] | None, dict[str, list[repo.Row]]] = {
            categories: repo.subject_rows(conn, ids, categories) for categories, ids in wanted.items()
        }
        everyone: set[str] = set().union(*wanted.values()) if wanted else set()
        actions = _actions(conn, everyone) if any_actions else {}
        national = _national(conn, everyone) if any_national else {}
        out: list[CheckOutcome] = []
        interned: dict[tuple[Any, ...], SharedAnswer] = {}
        for job, outcome, chosen in zip(jobs, outcomes, routed, strict=True):
            if outcome is not None:
                out.append(outcome)
                continue
            templates = []
            for sid, route in zip(job.subjects, chosen, strict=True):
                recs = rows[route.relevant].get(sid.value)
                acts = actions.get(sid.value)
                nat = national.get(sid.value)
                if not recs and not acts and not nat:
                    templates.append(route.blank)
                    continue
                if route.plan is not None and recs and not acts and not nat:
                    quick = quick_check(route.plan, sid.kind, recs, job.at)
                    if not quick["lists"]:
                        templates.append(route.blank)  # the records hold no list that carries the activity
                        continue
                    # subjects on the same lists until the same day share one answer (one receipt class)
                    same = (
                        id(route.plan),
                        job.at,
                        tuple(quick["lists"]),
                        tuple(quick["measures"]),
                        quick["until"],
                    )
                    shared = interned.get(same)
                    if shared is None:
                        shared = interned[same] = SharedAnswer(quick)
                    templates.append(shared)
                    continue
                answer = check_answer(
                    route.catalog,
                    sid.value,
                    sid.kind,
                    [r.scoring() for r in recs or ()],
                    acts or (),
                    nat,
                    job.activity,
                    job.at,
                )
                del answer["subject_id"]
                templates.append(answer)
            answers = Answers([s.value for s in job.subjects], templates)
            party = parties[job.key_hash].code if job.key_hash is not None else job.party
            out.append(
                CheckOutcome(
                    200,
                    answers,
                    new_id("rb_" if job.batch else "rc_"),
                    size,
                    head,
                    party=party,
                )
            )
        return out

    @staticmethod
    def _door(job: CheckJob, parties: dict[str, Party]) -> CheckOutcome | None:
        """The party re-verified in the answer's snapshot: 401 / 403, or None when admitted."""
        if job.key_hash is None:
            return None
        p = parties.get(job.key_hash)
        if p is None or p.revoked:
            return CheckOutcome(401, error="unknown or revoked relying-party key")
        if job.activity not in p.activities:
            return CheckOutcome(
                403,
                error=f"relying party {p.code!r} is not registered for activity {job.activity!r}",
                field="activity",
            )
        return None


def _state_query() -> Any:
    """One read per group, in its snapshot: the ledger head, the catalogs' state (a change re-reads them),
    whether any approved manual list action exists, whether this node takes lists from above."""
    c, la = t.catalogs.c, td.list_actions
    active = case((c.active, 1), else_=0)
    # versions are immutable and loads are ledger entries: a load or an (de)activation changes this
    catalogs = select(
        func.cast(func.count(), String)
        + ":"
        + func.cast(func.coalesce(func.max(c.ledger_seq), 0), String)
        + ":"
        + func.cast(func.coalesce(func.sum(active * c.ledger_seq), 0), String)
    ).scalar_subquery()
    actions = select(func.count()).select_from(la).where(la.c.status == "approved").scalar_subquery()
    national = select(func.count()).select_from(tf.nodes).where(tf.nodes.c.pull == "lists").scalar_subquery()
    return select(t.ledger_head.c.seq, t.ledger_head.c.hash, catalogs, actions, national).where(
        t.ledger_head.c.id == 1
    )


_STATE = _state_query()


def _actions(conn: Connection, subject_ids: set[str]) -> dict[str, list[ListAction]]:
    """Approved manual list actions of those subjects."""
    if not subject_ids:
        return {}
    out: dict[str, list[ListAction]] = {}
    ids = sorted(subject_ids)
    for i in range(0, len(ids), 500):
        for a in list_actions.approved(conn, ids[i : i + 500]):
            out.setdefault(a.subject_id, []).append(a)
    return out


def _national(conn: Connection, subject_ids: set[str]) -> dict[str, list[NationalMembership]]:
    """Lists published from above for those subjects (none unless this node takes some)."""
    if not subject_ids or not federation.lists_marker(conn):
        return {}
    return federation.national_memberships(conn, subject_ids=subject_ids)


def _scrub(message: str, subject_id: str) -> str:
    """Never echo a full resident number: replace it by its masked form."""
    if subject_id and subject_id in message:
        return message.replace(subject_id, mask_subject_id(subject_id))
    return message


def parse_subjects(raw: Iterable[str]) -> tuple[list[SubjectId], list[tuple[int, str]]]:
    """Parse identifiers; returns the parsed ones and ``(position, reason)`` of the invalid ones."""
    ok: list[SubjectId] = []
    bad: list[tuple[int, str]] = []
    today = clock.today()
    values = list(raw)
    if len(values) >= 64:  # a batch: the checksums as array arithmetic, the reasons of the invalid ones after
        parsed = parse_many(values, today)
        if all(p is not None for p in parsed):
            return parsed, []  # type: ignore[return-value]
    for i, v in enumerate(values):
        try:
            ok.append(parse_subject_id(v, today))
        except IdentifierError as e:
            bad.append((i, _scrub(e.reason, v.strip().upper())))
    return ok, bad
