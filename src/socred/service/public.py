"""Public information: what socred publishes, about whom, for how long — masked, in one place.

The public API (``api/public.py``) and the portal (``portal/``) show nothing that does not come
out of this module, and everything that comes out of it is already fit for a public page:

* A **record is shown** while all of these hold (``is_shown``):

  - its category is ``public: true`` in the catalog that scores its subject today (the catalog
    chosen for the subject's region, exactly as scoring chooses it);
  - it is not retracted;
  - it is not repaired: a record whose ``repaired_on`` is today or earlier is never shown again;
  - ``occurred_on <= today < occurred_on + N`` where ``N`` is the category's ``valid_for``
    bounded by the maximum publicity period of its severity (minor: never published; general:
    at most one year; serious: at most three years — NDRC Order No. 36).

* **Organizations**: the full name and unified social credit code (public registration data),
  the grade and score with a year of history, the records shown (good and warning information)
  and the lists they are on (record-triggered lists held by shown categories, and
  grade-triggered lists, the grade being public).
* **Persons**: only what the law makes public — the records shown and the *black* lists those
  records hold them on (e.g. the list of dishonest judgment debtors). Never a score, a grade or
  a red list. The resident number is masked (``1101**********002X``), the name too (``张**``),
  vehicle plates too (``沪A***45``); the region is given at prefecture level only (what the
  masked number shows anyway). A person about whom nothing is public is indistinguishable from
  an unknown one: search does not find them, their profile is "not found".
* Links to a person use an opaque reference (``p`` + 26 characters): the identifier encrypted
  (AES, one block) under a key kept in the keystore, so a page never carries the number while
  the link stays stable. Organizations are linked by their credit code.
* A query is never echoed back as typed: see :func:`PublicInfo.echo`.
* Free text (a record's summary) is shown for organizations only, with anything shaped like a
  resident number masked; attributes other than a plate are never shown.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    false,
    func,
    inspect,
    literal,
    not_,
    null,
    or_,
    select,
    tuple_,
)

from socred.domain import clock, scoring
from socred.domain.catalog import PUBLICITY_DAYS, Catalog, Category, ListDef
from socred.domain.due_process import is_published
from socred.domain.ids import (
    IdentifierError,
    SubjectId,
    mask_person_name,
    mask_plate,
    mask_subject_id,
    parse_subject_id,
    resident_check_char,
)
from socred.domain.scoring import ScoringError, ScoringRecord
from socred.service.platform import Platform
from socred.store import ledger, repo, search
from socred.store import schema as t
from socred.store.codes import codes_of

__all__ = [
    "PER_PAGE",
    "InvalidInput",
    "PublicInfo",
    "Rules",
    "SubjectRefs",
    "is_shown",
    "publicity_days",
    "shown_until",
]

log = logging.getLogger("socred.public")

PER_PAGE = 20
MAX_PAGE = 10_000
SEARCH_CANDIDATES = 200
HISTORY_MONTHS = 12
BATCH_STATISTICS = 50_000  # records: above this, statistics score everybody on the batch engine
_RESIDENT_LIKE = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{10}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_REGION_FILTER = re.compile(r"^\d{2}(\d{2}){0,2}$")
_CATEGORY = re.compile(r"^[A-Z0-9_]{1,64}$")
_SEPARATORS = re.compile(r"[\s\-./·]")
_CJK = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff·]+$")
_REF = re.compile(r"^p[a-z2-7]{26}$")
_IDENT = re.compile(r"^[0-9A-Z]{18}$")


class InvalidInput(ValueError):
    """A malformed public request: ``field`` and ``reason`` (the value itself is never repeated)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# ------------------------------------------------------------------ the publication rule


def publicity_days(cat: Category) -> int:
    """How many days from ``occurred_on`` a record of ``cat`` may be shown; 0 = never."""
    if not cat.public:
        return 0
    longest = PUBLICITY_DAYS.get(cat.severity, (0, 0))[1]
    return max(0, min(cat.valid_for, longest))


def shown_until(cat: Category, occurred_on: date) -> date | None:
    """The last day a record of ``cat`` that occurred on ``occurred_on`` may be shown (None: never)."""
    days = publicity_days(cat)
    return None if days == 0 else occurred_on + timedelta(days=days - 1)


def is_shown(
    cat: Category | None, occurred_on: date, retracted: bool, repaired_on: date | None, today: date
) -> bool:
    """Whether a record is on public pages today (the module docstring states the rule).

    The publicity window is :func:`socred.domain.due_process.is_published` (past the maximum period
    of its severity a record leaves public pages by itself; a repair ends it at once), further
    bounded by the category's ``valid_for``: a record that no longer counts is not shown either.
    """
    if cat is None:
        return False
    record = ScoringRecord("", "", cat.code, occurred_on, retracted, repaired_on)
    return is_published(cat, record, today) and today < occurred_on + timedelta(days=cat.valid_for)


class Rules:
    """The publication rule on one day over the active catalogs: which catalog serves a subject (the
    routes of :func:`scoring.routes`), and the same rule as one SQL condition on ``records`` (so that
    lists and counts are paged in SQL)."""

    def __init__(self, catalogs: Sequence[Catalog], today: date) -> None:
        self.today = today
        self.catalogs = list(catalogs)
        self._chooser = scoring.Chooser(self.catalogs)
        self._routes = self._chooser.routes(today)
        self._conditions: dict[tuple[bool, str | None, int], ColumnElement[bool]] = {}

    def catalog_for(self, region: str, kind: str) -> Catalog | None:
        """The catalog scoring subjects of ``region`` and ``kind`` today (:func:`scoring.select_catalog`)."""
        try:
            return self._chooser.choose(region, kind, self.today)
        except ScoringError:
            return None

    def category(self, region: str, code: str, kind: str) -> Category | None:
        catalog = self.catalog_for(region, kind)
        return None if catalog is None else catalog.category_for(code, kind)

    def shown(self, rec: PubRecord) -> Category | None:
        """The record's category when the record is shown today, else None."""
        cat = self.category(rec.subject_region, rec.category, rec.kind)
        if is_shown(cat, rec.occurred_on, rec.retracted, rec.repaired_on, self.today):
            return cat
        return None

    def categories(self, *, warnings_only: bool = False) -> dict[str, Category]:
        """Categories that can be shown under some serving catalog today, by code (first wins)."""
        out: dict[str, Category] = {}
        for route in self._routes:
            for code, cat in route.catalog.categories.items():
                if (
                    route.kind in cat.subjects
                    and publicity_days(cat)
                    and (cat.points < 0 or not warnings_only)
                ):
                    out.setdefault(code, cat)
        return out

    def condition(
        self, codes: Mapping[str, int], *, warnings_only: bool = False, category: str | None = None
    ) -> ColumnElement[bool]:
        """The rule as a condition on ``records``: the same answer as :meth:`shown`, row by row.

        A nested CASE gives each row the first day from which it is no longer too old to be shown:
        the outer level picks the serving catalog by the routes (region prefix, longest first, and
        kind), the inner level the category within it. Rows no catalog shows get NULL, which compares false. An
        indexed range on ``occurred_on`` and a category list narrow the rows before the CASE runs.
        """
        key = (warnings_only, category, len(codes))
        held = self._conditions.get(key)
        if held is not None:
            return held
        r = t.records
        outer: list[tuple[ColumnElement[bool], Any]] = []
        numbers: set[int] = set()
        earliest = self.today
        for route in self._routes:
            inner: list[tuple[ColumnElement[bool], Any]] = []
            for code, cat in route.catalog.categories.items():
                days = publicity_days(cat)
                if route.kind not in cat.subjects:
                    continue
                if days == 0 or (warnings_only and cat.points >= 0) or (category and code != category):
                    continue
                number = codes.get(code)
                if number is None:  # no record can have it
                    continue
                first_day = self.today - timedelta(days=days - 1)
                earliest = min(earliest, first_day)
                numbers.add(number)
                inner.append((r.c.category == number, literal(first_day, t.Day)))
            value: Any = case(*inner, else_=null()) if inner else null()
            test = r.c.kind == route.kind
            if route.prefix:
                test = and_(func.substr(t.subject_region(r), 1, len(route.prefix)) == route.prefix, test)
            outer.append((test, value))
        if not numbers:
            cond: ColumnElement[bool] = false()
        else:
            cond = and_(
                r.c.occurred_on >= earliest,
                r.c.occurred_on <= self.today,
                r.c.category.in_(sorted(numbers)),
                not_(r.c.retracted),
                or_(r.c.repaired_on.is_(None), r.c.repaired_on > self.today),
                r.c.occurred_on >= case(*outer, else_=null()),
            )
        self._conditions[key] = cond
        return cond


# ------------------------------------------------------------------ opaque references to persons


class SubjectRefs:
    """Stable opaque references for persons: ``p`` + base32 of AES-256(key, the number in one block).

    The block holds a version byte, the first 17 digits as an 88-bit integer and 4 zero bytes that
    authenticate a decryption (a forged reference decrypts to garbage and is refused). The check
    character is recomputed. Organizations need no reference: their credit code is public.
    """

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        if len(key) != 32:
            raise ValueError("the reference key must be 32 bytes")
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())

    def ref(self, subject_id: str, kind: str) -> str:
        if kind != "person":
            return subject_id
        block = b"\x01" + int(subject_id[:17]).to_bytes(11, "big") + b"\x00" * 4
        enc = self._cipher.encryptor()
        sealed = enc.update(block) + enc.finalize()
        return "p" + base64.b32encode(sealed).decode("ascii").rstrip("=").lower()

    def resolve(self, ref: str) -> str | None:
        """The resident number behind a reference, or None if it is no reference of this key."""
        if not _REF.match(ref):
            return None
        sealed = base64.b32decode(ref[1:].upper() + "======")
        dec = self._cipher.decryptor()
        block = dec.update(sealed) + dec.finalize()
        if block[0] != 1 or block[12:] != b"\x00" * 4:
            return None
        number = int.from_bytes(block[1:12], "big")
        if number >= 10**17:
            return None
        first17 = f"{number:017d}"
        return first17 + resident_check_char(first17)


# ------------------------------------------------------------------ records as read here


@dataclass(frozen=True, slots=True)
class PubRecord:
    source: str
    record_id: str
    subject_id: str
    kind: str
    subject_region: str
    category: str
    occurred_on: date
    case_number: str | None
    summary: str | None
    region: str | None
    attributes: str | None
    retracted: bool
    repaired_on: date | None
    first_seq: int
    last_seq: int

    def scoring(self) -> ScoringRecord:
        return ScoringRecord(
            self.record_id, self.source, self.category, self.occurred_on, self.retracted, self.repaired_on
        )

    def row(self) -> repo.Row:
        return repo.Row(
            self.source,
            self.record_id,
            self.subject_id,
            self.kind,
            self.category,
            self.occurred_on,
            self.retracted,
            self.repaired_on,
            self.first_seq,
            self.last_seq,
            self.case_number,
            self.region,
        )


def _pub(r: repo.Row) -> PubRecord:
    """A record as the public pages read it; its texts (summary, attributes) are not loaded yet."""
    return PubRecord(
        r.source,
        r.record_id,
        r.subject_id,
        r.kind,
        r.subject_region,
        r.category,
        r.occurred_on,
        r.case_number,
        None,
        r.region,
        None,
        r.retracted,
        r.repaired_on,
        r.first_seq,
        r.last_seq,
    )


def _with_texts(conn: Connection, recs: Sequence[PubRecord]) -> dict[tuple[str, str], PubRecord]:
    """Those records with their summary and attributes, replayed from the ledger."""
    states = repo.replay(conn, [r.row() for r in recs])
    out = {}
    for r in recs:
        st = states[(r.source, r.record_id)]
        attrs = json.dumps(st.attributes, ensure_ascii=False, sort_keys=True) if st.attributes else None
        out[(r.source, r.record_id)] = dataclasses.replace(r, summary=st.summary, attributes=attrs)
    return out


def _records_of(conn: Connection, subject_ids: Iterable[str]) -> dict[str, list[PubRecord]]:
    return {sid: [_pub(r) for r in rows] for sid, rows in repo.subject_rows(conn, subject_ids).items()}


_CORE = [getattr(t.records.c, c) for c in repo.RECORD_COLUMNS]


def _core_rows(conn: Connection, rows: Iterable[Any]) -> list[tuple[PubRecord, str]]:
    """(record, subject's name) of rows selected as ``_CORE`` + the subject's name."""
    values = codes_of(conn).values(conn)
    out = []
    for row in rows:
        r = tuple(row)
        core = (
            values.get(r[0]) or codes_of(conn).value(conn, r[0]),
            r[1],
            r[2],
            r[3],
            values.get(r[4]) or codes_of(conn).value(conn, r[4]),
            *r[5:12],
        )
        out.append((_pub(repo.Row(*core)), str(r[12])))
    return out


def scrub_text(value: str | None) -> str | None:
    """Free text with anything shaped like a resident number masked (first 4 and last 4 kept)."""
    if value is None:
        return None
    return _RESIDENT_LIKE.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), value)


def _plate(attributes: str | None) -> str | None:
    if not attributes:
        return None
    try:
        value = json.loads(attributes)
    except ValueError:
        return None
    plate = value.get("plate") if isinstance(value, dict) else None
    return mask_plate(plate) if isinstance(plate, str) and plate.strip() else None


def _month_ends(today: date, months: int) -> list[date]:
    """The last day of each of the ``months`` months before today's month, oldest first."""
    out: list[date] = []
    first = today.replace(day=1)
    for _ in range(months):
        last = first - timedelta(days=1)
        out.append(last)
        first = last.replace(day=1)
    return list(reversed(out))


def _month_starts(today: date, months: int) -> list[date]:
    """The first day of each of the last ``months`` months, today's month last."""
    out = [today.replace(day=1)]
    while len(out) < months:
        out.append((out[-1] - timedelta(days=1)).replace(day=1))
    return list(reversed(out))


# ------------------------------------------------------------------ the service


@dataclass
class _Cached:
    key: Any
    at: float
    value: Any


class PublicInfo:
    """The public read layer over one :class:`Platform`.

    ``read_engine`` serves every read (on SQLite, an engine whose reads take no write lock);
    writes happen only once, to create the reference key. Answers are JSON-ready dicts.
    """

    def __init__(
        self,
        platform: Platform,
        read_engine: Engine | None = None,
        *,
        catalog_ttl: float = 1.0,
        stats_ttl: float = 10.0,
    ) -> None:
        self.platform = platform
        self.engine = read_engine or platform.engine
        self.catalog_ttl = catalog_ttl
        self.stats_ttl = stats_ttl
        self._lock = threading.Lock()
        self._catalogs: _Cached | None = None
        self._rules: dict[date, tuple[list[Catalog], Rules]] = {}
        self._refs: SubjectRefs | None = None
        self._providers: _Cached | None = None
        self._stats: _Cached | None = None
        self._has_receipts: bool | None = None
        self._counts: dict[tuple[Any, ...], int] = {}
        self._stats_lock = threading.Lock()

    # -------------------------------------------------------------- shared state

    def catalogs(self) -> list[Catalog]:
        now = time.monotonic()
        cached = self._catalogs
        if cached is None or now - cached.at >= self.catalog_ttl:
            cached = _Cached(None, now, self.platform.catalogs())
            self._catalogs = cached
        value: list[Catalog] = cached.value
        return value

    def rules(self, today: date | None = None) -> Rules:
        day = today or clock.today()
        catalogs = self.catalogs()
        held = self._rules.get(day)
        if held is not None and held[0] is catalogs:
            return held[1]
        rules = Rules(catalogs, day)
        with self._lock:
            if len(self._rules) > 8:
                self._rules.clear()
            self._rules[day] = (catalogs, rules)
        return rules

    @property
    def refs(self) -> SubjectRefs:
        if self._refs is None:
            from socred.service.auth import keystore_get_or_create

            key = keystore_get_or_create(
                self.platform.engine, "public_ref_key", lambda: secrets.token_hex(32)
            )
            self._refs = SubjectRefs(bytes.fromhex(key))
        return self._refs

    def providers(self) -> dict[str, str]:
        now = time.monotonic()
        cached = self._providers
        if cached is None or now - cached.at >= 60:
            with self.engine.connect() as conn:
                rows = conn.execute(select(t.providers.c.code, t.providers.c.name)).all()
            cached = _Cached(None, now, {str(r[0]): str(r[1]) for r in rows})
            self._providers = cached
        value: dict[str, str] = cached.value
        return value

    def head_seq(self) -> int:
        with self.engine.connect() as conn:
            seq = conn.execute(select(t.ledger_head.c.seq).where(t.ledger_head.c.id == 1)).scalar()
        return int(seq or 0)

    # -------------------------------------------------------------- presenting

    def subject_view(self, subject_id: str, kind: str, name: str, region: str) -> dict[str, Any]:
        """How a subject is named on a public page."""
        person = kind == "person"
        return {
            "id": self.refs.ref(subject_id, kind),
            "subject_id": mask_subject_id(subject_id) if person else subject_id,
            "kind": kind,
            "name": mask_person_name(name) if person else name,
            "region": region[:4] + "00" if person else region,
        }

    def record_view(self, rec: PubRecord, cat: Category) -> dict[str, Any]:
        person = rec.kind == "person"
        region = rec.region or rec.subject_region
        last = shown_until(cat, rec.occurred_on)
        return {
            "category": cat.code,
            "title": cat.title,
            "domain": cat.domain,
            "severity": cat.severity,
            "points": cat.points,
            "legal_basis": cat.legal_basis,
            "occurred_on": rec.occurred_on.isoformat(),
            "shown_until": None if last is None else last.isoformat(),
            "case_number": scrub_text(rec.case_number),
            "provider": rec.source,
            "provider_name": self.providers().get(rec.source, rec.source),
            "region": region[:4] + "00" if person else region,
            "plate": _plate(rec.attributes),
            "summary": None if person else scrub_text(rec.summary),
        }

    @staticmethod
    def list_view(catalog: Catalog, m: scoring.ListMembership) -> dict[str, Any]:
        ld: ListDef = catalog.lists[m.code]
        return {
            "code": m.code,
            "kind": m.kind,
            "title": ld.title,
            "legal_basis": ld.legal_basis,
            "since": None if m.since is None else m.since.isoformat(),
            "until": None if m.until is None else m.until.isoformat(),
            "grade_triggered": not ld.record_triggered,
            "measures": [
                {"code": mc, "title": md.title, "activity": md.activity, "effect": md.effect}
                for mc in ld.measures
                if (md := catalog.measures.get(mc)) is not None
            ],
        }

    def measure_view(self, catalog: Catalog, cat: Category, rec: PubRecord) -> dict[str, Any]:
        """What a published violation entails: the lists it puts its subject on, or its points."""
        lists = []
        for code in cat.lists:
            ld = catalog.lists.get(code)
            if ld is None or ld.duration is None:
                continue
            lists.append(
                {
                    "code": code,
                    "kind": ld.kind,
                    "title": ld.title,
                    "until": (rec.occurred_on + timedelta(days=ld.duration)).isoformat(),
                    "measures": [
                        {"code": mc, "title": md.title}
                        for mc in ld.measures
                        if (md := catalog.measures.get(mc)) is not None
                    ],
                }
            )
        return {"points": cat.points, "lists": lists}

    # -------------------------------------------------------------- one subject

    def _public_state(
        self, rules: Rules, sid: str, kind: str, region: str, records: list[PubRecord]
    ) -> dict[str, Any] | None:
        """Shown records and public lists of one subject; None when nothing about a person is public."""
        catalog = rules.catalog_for(region, kind)
        if catalog is None:
            if kind == "person":
                return None
            return {"catalog": None, "shown": [], "lists": [], "score": None}
        shown: list[tuple[PubRecord, Category]] = []
        public_scoring: list[ScoringRecord] = []
        for rec in records:
            cat = catalog.category_for(rec.category, kind)
            if cat is not None and cat.public:
                public_scoring.append(rec.scoring())
            if is_shown(cat, rec.occurred_on, rec.retracted, rec.repaired_on, rules.today):
                assert cat is not None
                shown.append((rec, cat))
        held = scoring.score(catalog, sid, kind, public_scoring, rules.today) if public_scoring else None
        lists = [
            m
            for m in (held.lists if held is not None else ())
            if m.records and (kind != "person" or m.kind == "black")
        ]
        full: scoring.ScoreResult | None = None
        if kind != "person":
            full = scoring.score(catalog, sid, kind, [r.scoring() for r in records], rules.today)
            lists += [m for m in full.lists if not m.records]  # grade-triggered: the grade is public
            order = list(catalog.lists)
            lists.sort(key=lambda m: order.index(m.code))
        elif not shown and not lists:
            return None
        shown.sort(key=lambda x: (x[0].occurred_on, x[0].first_seq), reverse=True)
        return {"catalog": catalog, "shown": shown, "lists": lists, "score": full}

    def resolve(self, ref: str) -> SubjectId | None:
        """A profile reference (credit code, resident number or person reference) as a subject id.

        Raises :class:`InvalidInput` for a malformed reference; None for a well-formed one that
        names nobody (a reference of another key, say).
        """
        value = (ref or "").strip()
        if _REF.match(value):
            number = self.refs.resolve(value)
            try:
                return None if number is None else parse_subject_id(number)
            except IdentifierError:  # a forged reference that happened to pass the tag
                return None
        if len(value) > 64:
            raise InvalidInput("subject_id", "must be an 18-character identifier or a public reference")
        try:
            return parse_subject_id(value)
        except IdentifierError as e:
            raise InvalidInput("subject_id", e.reason) from None

    def profile(self, ref: str, today: date | None = None) -> dict[str, Any] | None:
        """The public profile, or None when there is no public information about that subject."""
        sid = self.resolve(ref)
        if sid is None:
            return None
        rules = self.rules(today)
        with self.engine.connect() as conn:
            hit = search.find_by_id(conn, sid.value)
            if hit is None:
                return None
            records = _records_of(conn, [sid.value])[sid.value]
            state = self._public_state(rules, sid.value, sid.kind, hit.region, records)
            if state is None:
                return None
            texts = _with_texts(conn, [rec for rec, _cat in state["shown"]])
        catalog: Catalog | None = state["catalog"]
        out = self.subject_view(sid.value, sid.kind, hit.name, hit.region)
        out["as_of"] = rules.today.isoformat()
        out["catalog"] = None if catalog is None else catalog.ref
        out["lists"] = [self.list_view(catalog, m) for m in state["lists"]] if catalog else []
        shown = [self.record_view(texts[(rec.source, rec.record_id)], cat) for rec, cat in state["shown"]]
        out["good"] = [v for v in shown if v["points"] > 0]
        out["warnings"] = [v for v in shown if v["points"] < 0]
        if sid.kind == "organization":
            full: scoring.ScoreResult | None = state["score"]
            out["registration"] = {
                "uscc": sid.value,
                "name": hit.name,
                "region": hit.region,
                "authority": sid.value[0],
                "type": sid.value[:2],
            }
            out["grade"] = None if full is None else full.grade
            out["score"] = None if full is None else full.score
            out["history"] = self._history(sid, [r.scoring() for r in records], rules.today)
        return out

    def _history(self, sid: SubjectId, records: list[ScoringRecord], today: date) -> list[dict[str, Any]]:
        catalogs = self.catalogs()
        points = []
        for day in [*_month_ends(today, HISTORY_MONTHS), today]:
            try:
                catalog = scoring.select_catalog(catalogs, sid.region, sid.kind, day)
                s = scoring.score(catalog, sid.value, sid.kind, records, day)
            except ScoringError:
                continue
            points.append({"date": day.isoformat(), "score": s.score, "grade": s.grade})
        return points

    # -------------------------------------------------------------- search

    def classify(self, q: str) -> tuple[str, str]:
        """``("id", normalised identifier)`` or ``("name", normalised name)``; InvalidInput otherwise."""
        text = search.normalise_query(q or "")
        if not text:
            raise InvalidInput(
                "q", "enter a name, a unified social credit code or a resident identity number"
            )
        if len(text) > search.MAX_QUERY:
            raise InvalidInput("q", f"at most {search.MAX_QUERY} characters")
        compact = _SEPARATORS.sub("", text).upper()
        if _IDENT.match(compact) and any(c.isdigit() for c in compact):
            try:
                return "id", parse_subject_id(compact).value
            except IdentifierError as e:
                raise InvalidInput("q", f"not a valid identifier: {e.reason}") from None
        return "name", text

    def echo(self, q: str) -> str:
        """The query as it may be shown back: never a full resident number, never a person's full name.

        An identifier is shown masked as on every public page; a query holding 10 or more digits
        keeps only its first 4 and last 4 digits; a word that is some person's name, or that could be
        a Chinese name (1-3 Chinese characters), is masked like a name.
        """
        text = search.normalise_query(q or "")[: search.MAX_QUERY]
        compact = _SEPARATORS.sub("", text).upper()
        if _IDENT.match(compact) and any(c.isdigit() for c in compact):
            return mask_subject_id(compact)
        digits = [i for i, c in enumerate(text) if c.isdigit()]
        if len(digits) >= 10:
            hide = set(digits[4:-4])
            text = "".join("*" if i in hide else c for i, c in enumerate(text))
        words = text.split(" ")
        with self.engine.connect() as conn:
            known = {
                str(r[0])
                for r in conn.execute(
                    select(t.subjects.c.name).where(
                        t.subjects.c.name.in_(sorted({text, *words})), t.subjects.c.kind == "person"
                    )
                )
            }
        if text in known or (len(text) <= 3 and _CJK.match(text)):
            return mask_person_name(text)
        return " ".join(
            mask_person_name(w) if w in known or (len(w) <= 3 and _CJK.match(w)) else w for w in words
        )

    def search(
        self, q: str, page: int = 1, today: date | None = None, per_page: int = PER_PAGE
    ) -> dict[str, Any]:
        """Subjects matching a name (partial, tolerant), a credit code or a resident number, masked."""
        _check_page(page)
        how, value = self.classify(q)
        rules = self.rules(today)
        with self.engine.connect() as conn:
            if how == "id":
                hit = search.find_by_id(conn, value)
                hits = [hit] if hit is not None else []
            else:
                hits = search.find_by_name(conn, value, SEARCH_CANDIDATES)
            records = _records_of(conn, [h.subject_id for h in hits])
        results = []
        for h in hits:
            state = self._public_state(rules, h.subject_id, h.kind, h.region, records[h.subject_id])
            if state is None:
                continue
            item = self.subject_view(h.subject_id, h.kind, h.name, h.region)
            full: scoring.ScoreResult | None = state["score"]
            kinds = {m.kind for m in state["lists"]}
            item["grade"] = None if full is None else full.grade
            item["badges"] = [k for k in ("black", "red") if k in kinds]
            item["lists"] = [m.code for m in state["lists"]]
            item["records"] = len(state["shown"])
            item["match"] = h.match
            results.append(item)
        total = len(results)
        start = (page - 1) * per_page
        return {
            "query": self.echo(q),
            "query_kind": how,
            "as_of": rules.today.isoformat(),
            "page": page,
            "per_page": per_page,
            "total": total,
            "pages": max(1, -(-total // per_page)),
            "truncated": how == "name" and len(hits) >= SEARCH_CANDIDATES,
            "results": results[start : start + per_page],
        }

    # -------------------------------------------------------------- announcements and the board

    def _violation(self, rules: Rules, rec: PubRecord, name: str, recorded_at: str | None) -> dict[str, Any]:
        catalog = rules.catalog_for(rec.subject_region, rec.kind)
        cat = None if catalog is None else catalog.category_for(rec.category, rec.kind)
        assert catalog is not None and cat is not None  # the SQL condition admitted it
        view = self.record_view(rec, cat)
        return {
            "seq": rec.first_seq,
            "recorded_at": recorded_at,
            "subject": self.subject_view(rec.subject_id, rec.kind, name, rec.subject_region),
            "case_number": view["case_number"],
            "category": cat.code,
            "cause": cat.title,
            "date": view["occurred_on"],
            "region": view["region"],
            "plate": view["plate"],
            "provider": view["provider"],
            "provider_name": view["provider_name"],
            "legal_basis": cat.legal_basis,
            "shown_until": view["shown_until"],
            "measure": self.measure_view(catalog, cat, rec),
        }

    def announcements(
        self,
        page: int = 1,
        region: str | None = None,
        category: str | None = None,
        date_from: date | None = None,
        date_to: date | None = None,
        today: date | None = None,
        per_page: int = PER_PAGE,
    ) -> dict[str, Any]:
        """Published violations (warning information shown today), newest first."""
        _check_page(page)
        rules = self.rules(today)
        region = (region or "").strip() or None
        if region is not None and not _REGION_FILTER.match(region):
            raise InvalidInput("region", "must be 2, 4 or 6 digits of an administrative division code")
        code = (category or "").strip().upper() or None
        if code is not None:
            known = {c for cat in rules.catalogs for c in cat.categories}
            if not _CATEGORY.match(code) or code not in known:
                raise InvalidInput("category", "unknown category code")
        if date_from and date_to and date_from > date_to:
            raise InvalidInput("from", "must not be after 'to'")
        r = t.records
        with self.engine.connect() as conn:
            numbers = self._category_numbers(conn, rules)
        cond = rules.condition(numbers, warnings_only=True, category=code)
        if region is not None:
            cond = and_(cond, t.record_region(r).startswith(region))
        if date_from is not None:
            cond = and_(cond, r.c.occurred_on >= date_from)
        if date_to is not None:
            cond = and_(cond, r.c.occurred_on <= date_to)
        with self.engine.connect() as conn:
            head = conn.execute(select(t.ledger_head.c.seq).where(t.ledger_head.c.id == 1)).scalar()
            key = (rules, head, region, code, date_from, date_to)
            total = self._counts.get(key)
            if total is None:  # the count scans every candidate row: kept until the ledger moves
                total = int(conn.execute(select(func.count()).select_from(r).where(cond)).scalar_one())
                with self._lock:
                    if len(self._counts) > 256:
                        self._counts.clear()
                    self._counts[key] = total
            found = _core_rows(
                conn,
                conn.execute(
                    select(*_CORE, t.subjects.c.name)
                    .join(t.subjects, t.subjects.c.subject_id == r.c.subject_id)
                    .where(cond)
                    .order_by(r.c.occurred_on.desc(), r.c.first_seq.desc())
                    .limit(per_page)
                    .offset((page - 1) * per_page)
                ),
            )
            texts = _with_texts(conn, [rec for rec, _name in found])
        return {
            "as_of": rules.today.isoformat(),
            "page": page,
            "per_page": per_page,
            "total": total,
            "pages": max(1, -(-total // per_page)),
            "filters": {
                "region": region,
                "category": code,
                "from": None if date_from is None else date_from.isoformat(),
                "to": None if date_to is None else date_to.isoformat(),
            },
            "items": [
                self._violation(rules, texts[(rec.source, rec.record_id)], name, None) for rec, name in found
            ],
        }

    def categories(self, today: date | None = None) -> list[dict[str, Any]]:
        """Categories whose records may appear in the announcements, for filters."""
        cats = self.rules(today).categories(warnings_only=True)
        return [{"code": c.code, "title": c.title} for c in sorted(cats.values(), key=lambda c: c.code)]

    def scoreboard(self, after: int = 0, limit: int = 30, today: date | None = None) -> dict[str, Any]:
        """The newest published violations by arrival (ledger order), those after ``after`` only."""
        rules = self.rules(today)
        r = t.records
        picked: list[tuple[PubRecord, str, str]] = []
        with self.engine.connect() as conn:
            head = int(conn.execute(select(t.ledger_head.c.seq).where(t.ledger_head.c.id == 1)).scalar() or 0)
            cond = rules.condition(self._category_numbers(conn, rules), warnings_only=True)
            # the newest submissions are at the ledger's end: read it backwards a few blocks at a
            # time and keep the records the publication rule shows (one indexed look-up per block)
            cache = ledger.BlockCache(size=4)
            upper = head
            while upper > after and len(picked) < limit:
                lower = max(after, upper - ledger.BLOCK_ENTRIES)
                submits: dict[tuple[str, str], tuple[int, str]] = {}
                for seq in range(upper, lower, -1):
                    e = cache.entry(conn, seq)
                    if e is None or e.kind != "submit":
                        continue
                    body = json.loads(e.body)
                    submits[(str(body["source"]), str(body["record_id"]))] = (seq, e.recorded_at)
                upper = lower
                if not submits:
                    continue
                sources = codes_of(conn).ids(conn, "source", {src for src, _rid in submits})
                keys = [(sources[src], rid) for src, rid in submits if src in sources]
                found = _core_rows(
                    conn,
                    conn.execute(
                        select(*_CORE, t.subjects.c.name)
                        .join(t.subjects, t.subjects.c.subject_id == r.c.subject_id)
                        .where(cond, tuple_(r.c.source, r.c.record_id).in_(keys))
                        .order_by(r.c.first_seq.desc())
                    ),
                )
                found = found[: limit - len(picked)]
                texts = _with_texts(conn, [rec for rec, _name in found])
                for rec, name in found:
                    key = (rec.source, rec.record_id)
                    picked.append((texts[key], name, submits[key][1]))
        items = [self._violation(rules, rec, name, recorded_at) for rec, name, recorded_at in picked]
        return {"seq": head, "as_of": rules.today.isoformat(), "items": items}

    def _category_numbers(self, conn: Connection, rules: Rules) -> dict[str, int]:
        """The dictionary codes of the categories of the catalogs in use."""
        return codes_of(conn).ids(conn, "category", {c for cat in rules.catalogs for c in cat.categories})

    # -------------------------------------------------------------- statistics

    def statistics(self, today: date | None = None) -> dict[str, Any]:
        """Aggregates only (no subject is named), as of the ledger size they were computed at.

        Cached per ledger size. While the ledger grows, the last figures are served (they name their
        ``ledger_size``) and fresh ones are computed in the background at most every ``stats_ttl``
        seconds, so a page never waits for a scoring pass it has already seen the result of.
        """
        rules = self.rules(today)
        seq = self.head_seq()
        cached = self._stats
        if cached is None or cached.key[1] is not rules:
            with self._stats_lock:  # computed once, also when several requests arrive together
                cached = self._stats
                if cached is None or cached.key[1] is not rules:
                    return self._store_statistics(rules, seq)
        elif cached.key[0] != seq and time.monotonic() - cached.at >= self.stats_ttl:
            if self.stats_ttl <= 0:
                with self._stats_lock:
                    return self._store_statistics(rules, seq)
            self._refresh_in_background(rules, seq)
        value: dict[str, Any] = cached.value
        return value

    def warm(self) -> None:
        """Compute the statistics in the background (a server calls this when it starts)."""
        self._refresh_in_background(self.rules(), self.head_seq())

    def _refresh_in_background(self, rules: Rules, seq: int) -> None:
        if not self._stats_lock.acquire(blocking=False):
            return  # already being computed

        def run() -> None:
            try:
                self._store_statistics(rules, seq)
            except Exception:  # the next request tries again; the stale figures stay meanwhile
                log.exception("computing public statistics failed")
            finally:
                self._stats_lock.release()

        threading.Thread(target=run, name="socred-public-stats", daemon=True).start()

    def _store_statistics(self, rules: Rules, seq: int) -> dict[str, Any]:
        value = self._compute_statistics(rules, seq)
        self._stats = _Cached((seq, rules), time.monotonic(), value)
        return value

    def _compute_statistics(self, rules: Rules, seq: int) -> dict[str, Any]:
        r = t.records
        months = _month_starts(rules.today, 12)
        month_keys = [f"{m.year:04d}-{m.month:02d}" for m in months]
        with self.engine.connect() as conn:
            numbers = self._category_numbers(conn, rules)
            kinds: dict[str, int] = {
                str(k): int(n)
                for k, n in conn.execute(select(t.subjects.c.kind, func.count()).group_by(t.subjects.c.kind))
            }
            total = int(conn.execute(select(func.count()).select_from(r)).scalar_one())
            shown = int(
                conn.execute(select(func.count()).select_from(r).where(rules.condition(numbers))).scalar_one()
            )
            daily = conn.execute(
                select(r.c.source, r.c.occurred_on, func.count())
                .where(not_(r.c.retracted), r.c.occurred_on >= months[0], r.c.occurred_on <= rules.today)
                .group_by(r.c.source, r.c.occurred_on)
            ).all()
            names = codes_of(conn).values(conn)
            receipts = self._receipts(conn)
        counts: dict[str, dict[str, int]] = {}
        for source, day, n in daily:
            row = counts.setdefault(names.get(int(source), str(source)), dict.fromkeys(month_keys, 0))
            key = f"{day.year:04d}-{day.month:02d}"
            if key in row:
                row[key] += int(n)
        grade_order: list[str] = []
        for c in rules.catalogs:
            grade_order += [b.grade for b in c.grades if b.grade not in grade_order]
        if total > BATCH_STATISTICS:
            grades, lists = self._grades_batch(rules)
        else:
            grades, lists = self._grades_python(rules)
        titles = {code: ld for c in rules.catalogs for code, ld in c.lists.items()}
        providers = self.providers()
        return {
            "as_of": rules.today.isoformat(),
            "ledger_size": seq,
            "subjects": {k: int(kinds.get(k, 0)) for k in ("person", "organization")},
            "records": total,
            "records_shown": shown,
            "months": month_keys,
            "records_by_provider": [
                {"provider": code, "name": providers.get(code, code), "counts": [n[m] for m in month_keys]}
                for code, n in sorted(counts.items())
            ],
            "grades": grade_order,
            "subjects_by_grade": {
                kind: {g: grades.get((kind, g), 0) for g in grade_order}
                for kind in ("person", "organization")
            },
            "lists": sorted(
                (
                    {
                        "code": code,
                        "kind": titles[code].kind,
                        "title": titles[code].title,
                        "person": lists.get((code, "person"), 0),
                        "organization": lists.get((code, "organization"), 0),
                    }
                    for code in sorted({code for code, _ in lists})
                    if code in titles
                ),
                key=lambda e: (e["kind"] != "black", e["code"]),
            ),
            "checks": receipts,
        }

    def _grades_python(self, rules: Rules) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        """(kind, grade) and (list, kind) counts, scoring subject by subject (small populations)."""
        by_subject: dict[str, tuple[str, str, list[ScoringRecord]]] = {}
        with self.engine.connect() as conn:
            ids = [str(x) for x in conn.execute(select(t.records.c.subject_id).distinct()).scalars()]
            for sid, rows in repo.subject_rows(conn, ids).items():
                if rows:
                    by_subject[sid] = (rows[0].kind, rows[0].subject_region, [x.scoring() for x in rows])
        grades: dict[tuple[str, str], int] = {}
        lists: dict[tuple[str, str], int] = {}
        for sid, (kind, region, recs) in by_subject.items():
            catalog = rules.catalog_for(region, kind)
            if catalog is None:
                continue
            result = scoring.score(catalog, sid, kind, recs, rules.today)
            grades[(kind, result.grade)] = grades.get((kind, result.grade), 0) + 1
            for m in result.lists:
                lists[(m.code, kind)] = lists.get((m.code, kind), 0) + 1
        return grades, lists

    def _grades_batch(self, rules: Rules) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        """The same counts from the batch engine (``score-all`` on DuckDB) for large populations."""
        import tempfile
        from pathlib import Path

        import pyarrow.parquet as pq

        from socred.service.batch import score_all

        with tempfile.TemporaryDirectory(prefix="socred-stats-") as tmp:
            out = Path(tmp) / "scores.parquet"
            score_all(self.platform, out, rules.today, None, "duckdb")
            table = pq.read_table(out, columns=["kind", "grade", "lists"])
        grades: dict[tuple[str, str], int] = {}
        lists: dict[tuple[str, str], int] = {}
        for kind, grade, held in zip(
            table.column("kind").to_pylist(),
            table.column("grade").to_pylist(),
            table.column("lists").to_pylist(),
            strict=True,
        ):
            grades[(kind, grade)] = grades.get((kind, grade), 0) + 1
            for code in held or ():
                lists[(code, kind)] = lists.get((code, kind), 0) + 1
        return grades, lists

    def _receipts(self, conn: Connection) -> list[dict[str, Any]] | None:
        if self._has_receipts is None:
            self._has_receipts = inspect(conn).has_table("receipts")
        if not self._has_receipts:
            return None
        from socred.service.receipts import counts_by_activity

        out: dict[str, dict[str, Any]] = {}
        for activity, decision, n in sorted(counts_by_activity(conn)):
            entry = out.setdefault(str(activity), {"activity": str(activity), "allowed": 0, "restricted": 0})
            entry[str(decision)] = entry.get(str(decision), 0) + int(n)
        return list(out.values())


def _check_page(page: int) -> None:
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput("page", f"must be between 1 and {MAX_PAGE}")


def parse_day(value: str | None, field: str) -> date | None:
    """A ``YYYY-MM-DD`` query value; InvalidInput naming ``field`` otherwise."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
        raise InvalidInput(field, "must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(v)
    except ValueError:
        raise InvalidInput(field, "is not a real calendar date") from None
