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

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from socred.domain import scoring
from socred.domain.catalog import Catalog
from socred.domain.federation import NationalMembership
from socred.domain.federation import overlay as national_overlay
from socred.domain.list_actions import ListAction
from socred.domain.list_actions import apply as apply_actions
from socred.domain.scoring import ScoreResult, ScoringRecord

__all__ = ["check_answer", "relevant_categories", "subject_score"]


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
