"""Scoring semantics for one subject (scoring.md): the one definition of score, lists and check.

Everything here is a pure function of a :class:`~socred.domain.catalog.Catalog`, the
subject's records (as the ledger replay left them: corrections applied) and a date.
No I/O, no global state: the same inputs give the same result, in any call order.

Orderings used in every result (all deterministic):

* ``contributions``: by ``occurred_on``, then ``record_id`` (code-point string order),
  then ``source``.
* ``max_count``: the records kept are the first ``max_count`` in the order ``occurred_on``
  descending, then ``record_id`` descending, then ``source`` descending (the last key only
  separates equal record ids from different sources; it never changes the points).
* ``lists``: catalog file order; each list's ``records`` by ``occurred_on``, then
  ``record_id``, then ``source`` (one entry per record).
* ``measures``: sorted by code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from socred.domain.catalog import SUBJECT_KINDS, Catalog, Category

__all__ = [
    "CheckResult",
    "Chooser",
    "Contribution",
    "ListMembership",
    "Route",
    "ScoreResult",
    "ScoringError",
    "ScoringRecord",
    "check",
    "check_from_score",
    "routes",
    "score",
    "select_catalog",
    "unserved",
    "versions_in_effect",
]

_fromordinal = date.fromordinal


class ScoringError(ValueError):
    """Scoring cannot answer (no catalog serves the subject, or the catalog is not yet in effect)."""


@dataclass(frozen=True, slots=True)
class ScoringRecord:
    """A record as the scorer sees it, after the ledger was replayed (corrections applied)."""

    record_id: str
    source: str
    category: str
    occurred_on: date
    retracted: bool = False
    repaired_on: date | None = None


@dataclass(frozen=True, slots=True)
class Contribution:
    """One counting record and the points it moves."""

    record_id: str
    source: str
    category: str
    domain: str
    points: int
    occurred_on: date
    expires_on: date
    legal_basis: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "source": self.source,
            "category": self.category,
            "domain": self.domain,
            "points": self.points,
            "occurred_on": self.occurred_on.isoformat(),
            "expires_on": self.expires_on.isoformat(),
            "legal_basis": self.legal_basis,
        }


@dataclass(frozen=True, slots=True)
class ListMembership:
    """The subject is on list ``code`` at the scoring date.

    For a record-triggered list, ``records`` are the record ids keeping the subject on it,
    ordered by ``occurred_on`` then ``record_id``; ``since`` is the earliest of their
    ``occurred_on`` and ``until`` the latest date one of them holds the subject until.
    For a grade-triggered list ``since`` and ``until`` are None and ``records`` is empty.
    """

    code: str
    kind: Literal["black", "red"]
    since: date | None
    until: date | None
    records: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "kind": self.kind,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "records": list(self.records),
        }


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The score of one subject under one catalog as of one date, with its full explanation."""

    subject_id: str
    kind: str
    catalog: str  # "id@version"
    as_of: date
    score: int
    grade: str
    domains: dict[str, int]  # government, commercial, social, judicial (in this order)
    contributions: tuple[Contribution, ...]
    lists: tuple[ListMembership, ...]
    measures: tuple[str, ...]  # sorted

    def to_dict(self) -> dict[str, Any]:
        """The ``score --json`` object of cli.md."""
        return {
            "subject_id": self.subject_id,
            "kind": self.kind,
            "catalog": self.catalog,
            "as_of": self.as_of.isoformat(),
            "score": self.score,
            "grade": self.grade,
            "domains": dict(self.domains),
            "contributions": [c.to_dict() for c in self.contributions],
            "lists": [m.to_dict() for m in self.lists],
            "measures": list(self.measures),
        }

    def reasons(self, catalog: Catalog, limit: int = 4) -> list[str]:
        """The principal reasons behind a low score, at most ``limit``, in plain English.

        Negative contributions are aggregated per category and ranked by points lost (most
        negative first; equal losses by category code). Each sentence names the category
        title, the points and the legal basis. Empty when nothing negative counts.
        """
        lost: dict[str, list[int]] = {}  # category -> [points, records]
        for c in self.contributions:
            if c.points < 0:
                agg = lost.get(c.category)
                if agg is None:
                    lost[c.category] = [c.points, 1]
                else:
                    agg[0] += c.points
                    agg[1] += 1
        ranked = sorted(lost.items(), key=lambda kv: (kv[1][0], kv[0]))
        out: list[str] = []
        for code, (points, n) in ranked[: max(limit, 0)]:
            cat = catalog.categories.get(code)
            title = cat.title if cat is not None else code
            basis = next((c.legal_basis for c in self.contributions if c.category == code), "")
            noun = "record" if n == 1 else "records"
            sentence = f"{title}: {points} points from {n} {noun}"
            sentence += f" (legal basis: {basis})." if basis else "."
            out.append(sentence)
        return out


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The answer to a restriction check (scoring.md step 9)."""

    subject_id: str
    activity: str
    at: date
    catalog: str
    decision: Literal["restricted", "allowed"]
    measures: tuple[str, ...]  # sorted
    lists: tuple[str, ...]  # catalog order
    until: date | None

    def to_dict(self) -> dict[str, Any]:
        """The ``check --json`` object of cli.md."""
        return {
            "subject_id": self.subject_id,
            "activity": self.activity,
            "at": self.at.isoformat(),
            "catalog": self.catalog,
            "decision": self.decision,
            "measures": list(self.measures),
            "lists": list(self.lists),
            "until": None if self.until is None else self.until.isoformat(),
        }


# An entry while scoring: (occurred ordinal, record_id, source, position, record, category).
# The position makes every tuple distinct, so tuple comparison never reaches the record.
_Entry = tuple[int, str, str, int, ScoringRecord, Category]
# A list hold: (occurred ordinal, record_id, source, position, holds-until ordinal).
_Hold = tuple[int, str, str, int, int]


def score(
    catalog: Catalog, subject_id: str, kind: str, records: Iterable[ScoringRecord], as_of: date
) -> ScoreResult:
    """Score subject ``subject_id`` of ``kind`` under ``catalog`` as of ``as_of`` (scoring.md)."""
    if catalog.effective_from > as_of:
        raise ScoringError(
            f"catalog {catalog.ref} takes effect on {catalog.effective_from.isoformat()}, "
            f"after {as_of.isoformat()}"
        )
    t = as_of.toordinal()
    categories = catalog.categories
    list_defs = catalog.lists

    counting: list[_Entry] = []
    capped: dict[str, list[_Entry]] | None = None
    holds: dict[str, list[_Hold]] | None = None

    for i, r in enumerate(records):
        if r.retracted:
            continue
        cat = categories.get(r.category)
        if cat is None or kind not in cat.subjects:
            continue
        occ = r.occurred_on.toordinal()
        if occ > t:
            continue
        rep = r.repaired_on
        rep_o = 0
        if rep is not None:
            rep_o = rep.toordinal()
            if rep_o <= t:  # repaired on or before T: neither counts nor lists
                continue
        if t < occ + cat.valid_for:
            entry = (occ, r.record_id, r.source, i, r, cat)
            if cat.max_count is None:
                counting.append(entry)
            else:
                if capped is None:
                    capped = {}
                bucket = capped.get(cat.code)
                if bucket is None:
                    capped[cat.code] = [entry]
                else:
                    bucket.append(entry)
        for code in cat.lists:
            duration = list_defs[code].duration
            if duration is None:  # grade-triggered: parse_catalog never lets a category name one
                continue
            end = occ + duration
            if t < end:
                if rep is not None and rep_o < end:
                    end = rep_o
                if holds is None:
                    holds = {}
                h = holds.get(code)
                hold = (occ, r.record_id, r.source, i, end)
                if h is None:
                    holds[code] = [hold]
                else:
                    h.append(hold)

    if capped is not None:
        for bucket in capped.values():
            limit = bucket[0][5].max_count
            if limit is not None and len(bucket) > limit:
                bucket.sort(reverse=True)
                del bucket[limit:]
            counting.extend(bucket)

    domains = {"government": 0, "commercial": 0, "social": 0, "judicial": 0}
    contributions: tuple[Contribution, ...] = ()
    if counting:
        counting.sort()
        contribs: list[Contribution] = []
        for occ, rid, src, _, r, cat in counting:
            points = cat.points
            domains[cat.domain] += points
            contribs.append(
                Contribution(
                    rid,
                    src,
                    cat.code,
                    cat.domain,
                    points,
                    r.occurred_on,
                    _fromordinal(occ + cat.valid_for),
                    cat.legal_basis,
                )
            )
        contributions = tuple(contribs)

    total = catalog.clamp(
        catalog.base_score
        + domains["government"]
        + domains["commercial"]
        + domains["social"]
        + domains["judicial"]
    )
    grade = catalog.grade_for(total)

    memberships: list[ListMembership] = []
    measures: set[str] = set()
    for code, ld in list_defs.items():
        if ld.grades is not None:
            if grade not in ld.grades:
                continue
            memberships.append(ListMembership(code, ld.kind, None, None, ()))
        else:
            if holds is None:
                continue
            h = holds.get(code)
            if h is None:
                continue
            h.sort()
            memberships.append(
                ListMembership(
                    code,
                    ld.kind,
                    _fromordinal(h[0][0]),
                    _fromordinal(max(x[4] for x in h)),
                    tuple(x[1] for x in h),
                )
            )
        measures.update(ld.measures)

    return ScoreResult(
        subject_id,
        kind,
        catalog.ref,
        as_of,
        total,
        grade,
        domains,
        contributions,
        tuple(memberships),
        tuple(sorted(measures)),
    )


def check_from_score(catalog: Catalog, result: ScoreResult, activity: str) -> CheckResult:
    """The restriction check for ``activity`` from an already computed score (scoring.md step 9).

    ``until`` is the latest ``until`` among the lists carrying a restricting measure for the
    activity, None when one of those lists has no fixed end, and None when allowed.
    """
    if result.catalog != catalog.ref:
        raise ScoringError(f"score was computed under catalog {result.catalog}, not {catalog.ref}")
    measure_defs = catalog.measures
    list_defs = catalog.lists
    found: set[str] = set()
    carrying: list[str] = []
    restricted = False
    open_ended = False
    latest: date | None = None
    for m in result.lists:
        restricting = False
        carries = False
        for mc in list_defs[m.code].measures:
            md = measure_defs[mc]
            if md.activity != activity:
                continue
            carries = True
            found.add(mc)
            if md.effect == "restrict":
                restricting = True
        if not carries:
            continue
        carrying.append(m.code)
        if restricting:
            restricted = True
            if m.until is None:
                open_ended = True
            elif latest is None or m.until > latest:
                latest = m.until
    return CheckResult(
        result.subject_id,
        activity,
        result.as_of,
        result.catalog,
        "restricted" if restricted else "allowed",
        tuple(sorted(found)),
        tuple(carrying),
        None if (not restricted or open_ended) else latest,
    )


def check(
    catalog: Catalog,
    subject_id: str,
    kind: str,
    records: Iterable[ScoringRecord],
    activity: str,
    at: date,
) -> CheckResult:
    """check(S, activity, T) of scoring.md: restricted or allowed, with measures, lists and until."""
    return check_from_score(catalog, score(catalog, subject_id, kind, records, at), activity)


@dataclass(frozen=True, slots=True)
class Route:
    """One line of the catalog choice on a date: subjects of ``kind`` whose region starts with
    ``prefix`` are scored by ``catalog`` (unless a longer prefix has a route of its own)."""

    prefix: str
    kind: str
    catalog: Catalog


def routes(versions: Iterable[Catalog], as_of: date) -> tuple[Route, ...]:
    """The choice of scoring.md on ``as_of`` as a routing table, longest prefix first.

    For every region prefix and subject kind that some version in effect serves, the smallest
    catalog id among those that do. A subject of region R and kind K is scored by the first route
    (in this order) with that kind whose prefix starts R: :func:`select_catalog` reads it so, the
    batch assigns (region, kind) groups with it and the public pages compile it into one SQL CASE.
    """
    in_effect = versions_in_effect(versions, as_of)
    best: dict[tuple[str, str], Catalog] = {}
    for cid in sorted(in_effect):
        c = in_effect[cid]
        for kind in SUBJECT_KINDS:
            if c.serves_kind(kind):
                for prefix in c.regions:
                    best.setdefault((prefix, kind), c)
    return tuple(
        Route(prefix, kind, c)
        for (prefix, kind), c in sorted(best.items(), key=lambda kv: (-len(kv[0][0]), kv[0][0], kv[0][1]))
    )


def select_catalog(
    versions: Sequence[Catalog], region: str, kind: str, as_of: date, catalog_id: str | None = None
) -> Catalog:
    """Choose the catalog that scores a subject of ``region`` and ``kind`` as of ``as_of`` (scoring.md).

    1. Each catalog id is represented at ``as_of`` by its highest version with
       ``effective_from <= as_of``; an id with no such version takes no part, so a version not yet
       in effect never changes which catalog serves an earlier date.
    2. Of those versions, the ones that serve the subject are those whose ``regions`` hold a prefix
       of ``region`` (``""`` serves every region) and that define at least one category for
       ``kind``. The longest prefix wins; on equal length, the smallest id (:func:`routes`).

    With ``catalog_id``, that id's version in effect at ``as_of`` is used (whether or not it serves
    the subject: the caller named it). Every path chooses through here or :func:`routes`: the
    evaluator, the check service, the public pages, receipts, federation and the batch.
    """
    if catalog_id is not None:
        chosen = versions_in_effect(versions, as_of).get(catalog_id)
        if chosen is not None:
            return chosen
        of_id = [c for c in versions if c.id == catalog_id]
        if not of_id:
            raise ScoringError(f"no active catalog with id {catalog_id!r} is loaded")
        earliest = min(c.effective_from for c in of_id)
        raise ScoringError(
            f"no version of catalog {catalog_id} is in effect on {as_of.isoformat()}: "
            f"the earliest takes effect on {earliest.isoformat()}"
        )
    for r in routes(versions, as_of):
        if r.kind == kind and region.startswith(r.prefix):
            return r.catalog
    raise unserved(versions, region, kind, as_of)


def unserved(versions: Iterable[Catalog], region: str, kind: str, as_of: date) -> ScoringError:
    """The error for a subject no catalog serves on ``as_of``, naming a later version that would."""
    plural = "persons" if kind == "person" else "organizations"
    later = sorted(
        (
            c
            for c in versions
            if c.effective_from > as_of and c.serves_kind(kind) and c.serves_region(region) is not None
        ),
        key=lambda c: (c.effective_from, c.id, c.version),
    )
    hint = f" (catalog {later[0].ref} takes effect on {later[0].effective_from.isoformat()})" if later else ""
    return ScoringError(
        f"no catalog in effect on {as_of.isoformat()} serves {plural} of region {region}{hint}"
    )


class Chooser:
    """:func:`select_catalog` over one set of loaded versions, with its routes cached per date."""

    def __init__(self, versions: Sequence[Catalog]) -> None:
        self.versions = list(versions)
        self._routes: dict[date, tuple[Route, ...]] = {}
        self._chosen: dict[tuple[str, str, date], Catalog | ScoringError] = {}

    def routes(self, as_of: date) -> tuple[Route, ...]:
        got = self._routes.get(as_of)
        if got is None:
            if len(self._routes) > 4096:
                self._routes.clear()
            got = self._routes[as_of] = routes(self.versions, as_of)
        return got

    def choose(self, region: str, kind: str, as_of: date, catalog_id: str | None = None) -> Catalog:
        if catalog_id is not None:
            return select_catalog(self.versions, region, kind, as_of, catalog_id)
        key = (region, kind, as_of)
        hit = self._chosen.get(key)
        if hit is None:
            hit = unserved(self.versions, region, kind, as_of)
            for r in self.routes(as_of):
                if r.kind == kind and region.startswith(r.prefix):
                    hit = r.catalog
                    break
            if len(self._chosen) > 100_000:
                self._chosen.clear()
            self._chosen[key] = hit
        if isinstance(hit, ScoringError):
            raise hit
        return hit


def versions_in_effect(versions: Iterable[Catalog], as_of: date) -> dict[str, Catalog]:
    """Step 1 of the choice: each catalog id's highest version with ``effective_from <= as_of``."""
    out: dict[str, Catalog] = {}
    for c in versions:
        if c.effective_from <= as_of:
            h = out.get(c.id)
            if h is None or c.version > h.version:
                out[c.id] = c
    return out
