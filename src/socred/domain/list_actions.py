"""Manual list actions as an overlay on the rule-based lists (pure; service/list_actions.py stores them).

An approved action is live at T when ``effective_from <= T`` and (no ``until`` or ``T < until``);
among live actions on one list the latest approved (highest ledger seq) wins. ``add`` puts the
subject on the list (``since`` = effective_from, ``until`` = the action's until), ``remove`` takes it
off; measures follow the lists. The **score never changes** (nothing but records moves a score); the
explanation names the action. :func:`apply` is the one place that applies them: the evaluator's
answers (score, check, report, receipts' reproduction) and the batch engines' equal it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from socred.domain.catalog import Catalog
from socred.domain.scoring import ListMembership, ScoreResult

__all__ = ["ListAction", "ManualMembership", "OverlaidResult", "apply"]


def _name(actor: str) -> str:
    """``admin:alice`` -> ``alice`` (the user name, for sentences)."""
    return actor.split(":", 1)[1] if ":" in actor else actor


def _day(v: Any) -> date:
    return v if isinstance(v, date) else date.fromisoformat(str(v)[:10])


def _iso(v: date | None) -> str | None:
    return None if v is None else v.isoformat()


@dataclass(frozen=True, slots=True)
class ListAction:
    """An approved manual action on one subject's membership of one list."""

    id: str
    subject_id: str
    list_code: str
    action: Literal["add", "remove"]
    effective_from: date
    until: date | None
    reason: str
    proposed_by: str
    approved_by: str
    seq: int

    def live(self, at: date) -> bool:
        return self.effective_from <= at and (self.until is None or at < self.until)

    def explanation(self) -> str:
        verb = "added to" if self.action == "add" else "removed from"
        return (
            f"{verb} {self.list_code} by manual list action by {_name(self.proposed_by)} "
            f"approved by {_name(self.approved_by)}, {self.reason}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "list": self.list_code,
            "action": self.action,
            "effective_from": self.effective_from.isoformat(),
            "until": _iso(self.until),
            "proposed_by": self.proposed_by,
            "approved_by": self.approved_by,
            "reason": self.reason,
            "ledger_seq": self.seq,
            "explanation": self.explanation(),
        }

    @classmethod
    def from_body(cls, seq: int, body: Mapping[str, Any]) -> ListAction:
        action: Literal["add", "remove"] = "add" if body["action"] == "add" else "remove"
        return cls(
            str(body["id"]),
            str(body["subject_id"]),
            str(body["list"]),
            action,
            _day(body["effective_from"]),
            None if body.get("until") is None else _day(body["until"]),
            str(body["reason"]),
            str(body["proposed_by"]),
            str(body["approved_by"]),
            seq,
        )


@dataclass(frozen=True, slots=True)
class ManualMembership(ListMembership):
    """A list membership made or kept by a manual action; ``manual`` explains it."""

    manual: str = ""
    action: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = ListMembership.to_dict(self)
        out["manual"] = {"action": self.action, "explanation": self.manual}
        return out


@dataclass(frozen=True, slots=True)
class OverlaidResult(ScoreResult):
    """A score whose lists carry live manual actions (the score itself is the rule-based one)."""

    list_actions: tuple[ListAction, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = ScoreResult.to_dict(self)
        out["list_actions"] = [a.to_dict() for a in self.list_actions]
        return out


def apply(catalog: Catalog, result: ScoreResult, actions: Iterable[ListAction]) -> ScoreResult:
    """The rule-based ``result`` with the subject's live manual actions applied to its lists.

    Unchanged (the same object) when no action is live at ``result.as_of``. Actions on a list the
    catalog does not define are ignored. The score, grade, domains and contributions are untouched.
    """
    at = result.as_of
    latest: dict[str, ListAction] = {}
    for a in sorted(actions, key=lambda a: a.seq):
        if a.subject_id == result.subject_id and a.live(at) and a.list_code in catalog.lists:
            latest[a.list_code] = a
    if not latest:
        return result
    current = {m.code: m for m in result.lists}
    lists: list[ListMembership] = []
    measures: set[str] = set()
    for code, ld in catalog.lists.items():
        m = current.get(code)
        act = latest.get(code)
        if act is None:
            if m is None:
                continue
            lists.append(m)
        elif act.action == "remove":
            continue
        elif m is None:
            lists.append(
                ManualMembership(code, ld.kind, act.effective_from, act.until, (), act.explanation(), "add")
            )
        else:
            until = None if m.until is None or act.until is None else max(m.until, act.until)
            lists.append(ManualMembership(code, ld.kind, m.since, until, m.records, act.explanation(), "add"))
        measures.update(ld.measures)
    return OverlaidResult(
        result.subject_id,
        result.kind,
        result.catalog,
        result.as_of,
        result.score,
        result.grade,
        dict(result.domains),
        result.contributions,
        tuple(lists),
        tuple(sorted(measures)),
        tuple(sorted(latest.values(), key=lambda a: a.seq)),
    )
