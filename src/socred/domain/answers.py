"""The per-subject answer, defined once: score and check with manual list actions and national lists.

Every path that answers for one subject composes the same three steps, here:

1. :func:`socred.domain.scoring.score` — the subject's records under its catalog (scoring.md);
2. :func:`socred.domain.list_actions.apply` — approved manual list actions (never the score);
3. for a check, :func:`socred.domain.scoring.check_from_score` and the lists published by upstream
   nodes (:func:`socred.domain.federation.overlay`, ``cn:LIST`` / ``cn:MEASURE``).

The check service, ``socred score``/``check``, the own report, the public pages, the reproduction of
receipts and federation call these; the batch engines are proved equal to them.

:func:`relevant_categories` says which records can change a check at all: when no grade-triggered
list of the catalog carries a measure of the activity, only records of categories that name a list
carrying one can. The check service reads only those (most subjects have none, and then share one
answer): the answer is the same as from all the records, because the score then decides nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from socred.domain import scoring
from socred.domain.catalog import Catalog
from socred.domain.federation import NationalMembership
from socred.domain.federation import overlay as national_overlay
from socred.domain.list_actions import ListAction
from socred.domain.list_actions import apply as apply_actions
from socred.domain.scoring import ScoreResult, ScoringRecord

__all__ = ["ActivityPlan", "check_answer", "plan", "quick_check", "relevant_categories", "subject_score"]


def subject_score(
    catalog: Catalog,
    subject_id: str,
    kind: str,
    records: Iterable[ScoringRecord],
    actions: Sequence[ListAction],
    as_of: date,
) -> ScoreResult:
    """The subject's score, lists and measures: the rules, then its manual list actions."""
    result = scoring.score(catalog, subject_id, kind, records, as_of)
    return apply_actions(catalog, result, actions) if actions else result


def check_answer(
    catalog: Catalog,
    subject_id: str,
    kind: str,
    records: Iterable[ScoringRecord],
    actions: Sequence[ListAction],
    national: Sequence[NationalMembership] | None,
    activity: str,
    at: date,
) -> dict[str, Any]:
    """The ``check --json`` object of cli.md for one subject, lists published from above included."""
    result = subject_score(catalog, subject_id, kind, records, actions, at)
    answer = scoring.check_from_score(catalog, result, activity).to_dict()
    return national_overlay(answer, list(national), activity, at) if national else answer


def relevant_categories(catalog: Catalog, activity: str) -> frozenset[str] | None:
    """The categories whose records can change ``check(activity)`` under ``catalog``, or None when the
    score can (a grade-triggered list carries a measure of the activity): then every record can."""
    carrying = {
        code
        for code, ld in catalog.lists.items()
        if any(catalog.measures[m].activity == activity for m in ld.measures if m in catalog.measures)
    }
    if any(catalog.lists[code].grades is not None for code in carrying):
        return None
    return frozenset(code for code, cat in catalog.categories.items() if carrying.intersection(cat.lists))


@dataclass(frozen=True, slots=True)
class ActivityPlan:
    """What :func:`quick_check` needs of a catalog for one activity (no grade-triggered list carries it)."""

    catalog: Catalog
    activity: str
    #: record-triggered lists carrying a measure of the activity, in catalog order:
    #: (code, duration, restricts, the activity's measures of the list)
    lists: tuple[tuple[str, int, bool, tuple[str, ...]], ...]
    #: category code -> kinds it applies to and the carrying lists it names (indexes into ``lists``)
    categories: Mapping[str, tuple[frozenset[str], tuple[int, ...]]]


def plan(catalog: Catalog, activity: str) -> ActivityPlan | None:
    """The plan of :func:`quick_check` for ``activity``, or None when the score can change the answer."""
    if relevant_categories(catalog, activity) is None:
        return None
    lists: list[tuple[str, int, bool, tuple[str, ...]]] = []
    index: dict[str, int] = {}
    for code, ld in catalog.lists.items():
        mine = tuple(
            m for m in ld.measures if m in catalog.measures and catalog.measures[m].activity == activity
        )
        if not mine or ld.duration is None:
            continue
        index[code] = len(lists)
        lists.append((code, ld.duration, any(catalog.measures[m].effect == "restrict" for m in mine), mine))
    categories = {
        code: (frozenset(cat.subjects), tuple(index[lc] for lc in cat.lists if lc in index))
        for code, cat in catalog.categories.items()
        if any(lc in index for lc in cat.lists)
    }
    return ActivityPlan(catalog, activity, tuple(lists), categories)


class Held(Protocol):
    """What :func:`quick_check` reads of a record (a ScoringRecord, or a projection row)."""

    @property
    def category(self) -> str: ...
    @property
    def occurred_on(self) -> date: ...
    @property
    def retracted(self) -> bool: ...
    @property
    def repaired_on(self) -> date | None: ...


def quick_check(p: ActivityPlan, kind: str, records: Iterable[Held], at: date) -> dict[str, Any]:
    """:func:`check_answer` without its subject, for a subject with no manual list action and no list
    from above, computed from the list holds alone (scoring.md steps 6, 8 and 9).

    Exactly :func:`check_answer`'s answer whenever :func:`plan` gives a plan (the differential tests of
    tests/domain/test_answers.py prove it): no grade-triggered list then carries a measure of the
    activity, so the score decides nothing and only the holds of the carrying lists count.
    """
    t = at.toordinal()
    held: dict[int, int] = {}  # list index -> the latest day (ordinal, exclusive) a record holds it
    cats = p.categories
    lists = p.lists
    for r in records:
        if r.retracted:
            continue
        entry = cats.get(r.category)
        if entry is None or kind not in entry[0]:
            continue
        occ = r.occurred_on.toordinal()
        if occ > t:
            continue
        rep = r.repaired_on.toordinal() if r.repaired_on is not None else None
        if rep is not None and rep <= t:
            continue
        for i in entry[1]:
            end = occ + lists[i][1]
            if t >= end:
                continue
            if rep is not None and rep < end:
                end = rep
            if end > held.get(i, 0):
                held[i] = end
    measures: set[str] = set()
    carrying: list[str] = []
    latest = 0
    for i in sorted(held):
        code, _duration, restricts, mine = lists[i]
        carrying.append(code)
        measures.update(mine)
        if restricts and held[i] > latest:
            latest = held[i]
    restricted = latest > 0
    return {
        "activity": p.activity,
        "at": at.isoformat(),
        "catalog": p.catalog.ref,
        "decision": "restricted" if restricted else "allowed",
        "measures": sorted(measures),
        "lists": carrying,
        "until": date.fromordinal(latest).isoformat() if restricted else None,
    }
