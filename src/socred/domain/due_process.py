"""Due-process rules as pure functions: publicity windows, credit repair eligibility, objection deadlines.

The publicity windows follow the 2026 national credit repair measures (docs/due-process.md):

* ``minor`` — never published; credit repair may be applied for at once;
* ``general`` — published at least 90 days, at most 365 days from ``occurred_on``;
* ``serious`` — published at least 365 days, at most 1,095 days from ``occurred_on``.

After the minimum period a subject may apply for credit repair; after the maximum period the
record stops being published by itself. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from socred.domain.catalog import PUBLICITY_DAYS, Category

DEFAULT_OBJECTION_DAYS = 15


class RecordLike(Protocol):
    """What the rules need of a record (a ``ScoringRecord`` or a ``RecordState``)."""

    @property
    def occurred_on(self) -> date: ...

    @property
    def retracted(self) -> bool: ...

    @property
    def repaired_on(self) -> date | None: ...


def min_publicity_days(severity: str) -> int:
    """Days a record of ``severity`` stays published at least (0 for minor)."""
    return PUBLICITY_DAYS[severity][0]


def max_publicity_days(severity: str) -> int:
    """Days after which publication of a record of ``severity`` stops by itself (0 for minor)."""
    return PUBLICITY_DAYS[severity][1]


def publicity_ends_on(category: Category, occurred_on: date) -> date | None:
    """The first day the record is no longer published; None when it is never published."""
    if not category.public or category.severity == "minor":
        return None
    return occurred_on + timedelta(days=max_publicity_days(category.severity))


def is_published(category: Category, record: RecordLike, today: date) -> bool:
    """Whether the record may appear on public pages on ``today``.

    A record is published when its category is public and not minor, it is not retracted, it
    occurred on or before ``today``, the maximum publicity period has not run out, and it was
    not repaired on or before ``today`` (a repair stops publication from ``repaired_on``).
    """
    end = publicity_ends_on(category, record.occurred_on)
    if end is None or record.retracted:
        return False
    if not (record.occurred_on <= today < end):
        return False
    return record.repaired_on is None or today < record.repaired_on


def repair_eligible_on(category: Category, occurred_on: date) -> date:
    """The first day a subject may apply for credit repair of a record (minimum publicity reached)."""
    return occurred_on + timedelta(days=min_publicity_days(category.severity))


def objection_due_by(filed_on: date, objection_days: int = DEFAULT_OBJECTION_DAYS) -> date:
    """The day an objection filed on ``filed_on`` must be decided by (inclusive)."""
    if objection_days <= 0:
        raise ValueError(f"objection_days must be positive, got {objection_days}")
    return filed_on + timedelta(days=objection_days)


def is_overdue(due_by: date, today: date, *, open_: bool = True) -> bool:
    """An open objection is overdue from the day after its due date."""
    return open_ and today > due_by


@dataclass(frozen=True, slots=True)
class RepairCheck:
    """Whether a repair application may be accepted now, and if not from when."""

    eligible: bool
    eligible_on: date
    reason: str


def check_repair(category: Category, record: RecordLike, today: date) -> RepairCheck:
    """May the subject apply for credit repair of ``record`` on ``today``?"""
    when = repair_eligible_on(category, record.occurred_on)
    if record.retracted:
        return RepairCheck(False, when, "the record was retracted; there is nothing to repair")
    if record.repaired_on is not None and record.repaired_on <= today:
        return RepairCheck(
            False, when, f"the record was already repaired on {record.repaired_on.isoformat()}"
        )
    if category.points > 0:
        return RepairCheck(False, when, "the record is good information; there is nothing to repair")
    if today < when:
        return RepairCheck(
            False,
            when,
            f"the minimum publicity period of a {category.severity} record "
            f"({min_publicity_days(category.severity)} days) has not passed: "
            f"credit repair is possible from {when.isoformat()}",
        )
    return RepairCheck(True, when, "eligible")


__all__ = [
    "DEFAULT_OBJECTION_DAYS",
    "RepairCheck",
    "check_repair",
    "is_overdue",
    "is_published",
    "max_publicity_days",
    "min_publicity_days",
    "objection_due_by",
    "publicity_ends_on",
    "repair_eligible_on",
]
