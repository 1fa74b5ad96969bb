"""The pure due-process rules: publicity windows, repair eligibility, objection deadlines."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from socred.domain import due_process as dp
from socred.domain.catalog import Category
from socred.domain.scoring import ScoringRecord

D = date(2026, 1, 10)


def cat(severity: str = "general", public: bool = True, points: int = -100) -> Category:
    return Category(
        code="X",
        title="X",
        domain="judicial",
        subjects=frozenset({"person"}),
        points=points,
        valid_for=730,
        legal_basis="basis",
        public=public,
        severity=severity,  # type: ignore[arg-type]
    )


def rec(occurred: date = D, retracted: bool = False, repaired: date | None = None) -> ScoringRecord:
    return ScoringRecord("r1", "court", "X", occurred, retracted, repaired)


@pytest.mark.parametrize(
    ("severity", "lo", "hi"), [("minor", 0, 0), ("general", 90, 365), ("serious", 365, 1095)]
)
def test_publicity_windows(severity: str, lo: int, hi: int) -> None:
    assert dp.min_publicity_days(severity) == lo
    assert dp.max_publicity_days(severity) == hi


def test_is_published_general() -> None:
    c = cat("general")
    assert not dp.is_published(c, rec(), date(2026, 1, 9))  # before it occurred
    assert dp.is_published(c, rec(), D)
    assert dp.is_published(c, rec(), date(2027, 1, 9))  # day 364
    assert not dp.is_published(c, rec(), date(2027, 1, 10))  # the maximum ran out
    assert dp.publicity_ends_on(c, D) == date(2027, 1, 10)


def test_is_published_serious_runs_three_years() -> None:
    c = cat("serious")
    assert dp.is_published(c, rec(), date(2028, 12, 1))
    assert not dp.is_published(c, rec(), date(2029, 1, 9))


def test_minor_and_non_public_are_never_published() -> None:
    assert not dp.is_published(cat("minor"), rec(), D)
    assert dp.publicity_ends_on(cat("minor"), D) is None
    assert not dp.is_published(cat("serious", public=False), rec(), D)


def test_retracted_and_repaired_stop_publication() -> None:
    c = cat("general")
    assert not dp.is_published(c, rec(retracted=True), D)
    r = rec(repaired=date(2026, 6, 1))
    assert dp.is_published(c, r, date(2026, 5, 31))
    assert not dp.is_published(c, r, date(2026, 6, 1))


def test_repair_eligibility_by_severity() -> None:
    assert dp.repair_eligible_on(cat("minor"), D) == D
    assert dp.repair_eligible_on(cat("general"), D) == date(2026, 4, 10)
    assert dp.repair_eligible_on(cat("serious"), D) == date(2027, 1, 10)
    early = dp.check_repair(cat("general"), rec(), date(2026, 4, 9))
    assert not early.eligible and early.eligible_on == date(2026, 4, 10)
    assert "2026-04-10" in early.reason
    assert dp.check_repair(cat("general"), rec(), date(2026, 4, 10)).eligible
    assert dp.check_repair(cat("minor"), rec(), D).eligible


def test_repair_refused_for_retracted_repaired_or_good_records() -> None:
    today = date(2027, 1, 1)
    assert not dp.check_repair(cat(), rec(retracted=True), today).eligible
    assert not dp.check_repair(cat(), rec(repaired=date(2026, 12, 1)), today).eligible
    assert not dp.check_repair(cat(points=40), rec(), today).eligible
    # a repair on the ledger for a later date does not block a new application
    assert dp.check_repair(cat(), replace(rec(), repaired_on=date(2027, 2, 1)), today).eligible


def test_objection_deadlines() -> None:
    assert dp.objection_due_by(D) == date(2026, 1, 25)
    assert dp.objection_due_by(D, 20) == date(2026, 1, 30)
    assert not dp.is_overdue(date(2026, 1, 25), date(2026, 1, 25))
    assert dp.is_overdue(date(2026, 1, 25), date(2026, 1, 26))
    assert not dp.is_overdue(date(2026, 1, 25), date(2026, 2, 26), open_=False)
    with pytest.raises(ValueError):
        dp.objection_due_by(D, 0)
