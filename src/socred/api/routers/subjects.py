"""Staff reads of a subject's full data: reviewers, administrators and auditors, each read logged.

``GET /api/v1/subjects/{subject_id}/report`` and ``.../access-log`` need a stated
``reason``; the read is appended to the subject's access log (who, when, what, why)
before the answer is sent.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from socred.api.auth import invalid
from socred.api.deps import ERRORS_AUTH, get_services, require_role
from socred.api.routers.ledger import reason_query
from socred.domain.ids import IdentifierError, SubjectId, mask_subject_id, parse_subject_id
from socred.domain.scoring import ScoringError
from socred.service import access_log
from socred.service.auth import Principal
from socred.service.due_process import DueProcess
from socred.service.platform import Platform
from socred.store import repo

router = APIRouter(prefix="/api/v1/subjects", tags=["subjects"])


class RecordView(BaseModel):
    source: str
    record_id: str
    subject_name: str
    category: str
    occurred_on: str
    case_number: str | None
    summary: str | None
    region: str | None
    attributes: dict[str, Any] | None
    retracted: bool
    retract_reason: str | None
    repaired_on: str | None
    repair_reason: str | None
    disputed: bool = Field(False, description="An objection or appeal about this record is open.")


class SubjectReport(BaseModel):
    """A subject's full report: every record (corrections applied) and the score with its explanation."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "subject_id": "11010519491231002X",
                    "kind": "person",
                    "region": "110105",
                    "name": "张三",
                    "score": {
                        "subject_id": "11010519491231002X",
                        "kind": "person",
                        "catalog": "national@1",
                        "as_of": "2026-11-28",
                        "score": 900,
                        "grade": "B",
                        "domains": {"government": 0, "commercial": 0, "social": 0, "judicial": -100},
                        "contributions": [],
                        "lists": [],
                        "measures": [],
                    },
                    "score_error": None,
                    "records": [],
                }
            ]
        }
    }

    subject_id: str
    kind: str
    region: str
    name: str | None = Field(description="The name as last submitted.")
    score: dict[str, Any] | None = Field(description="The `score --json` object of cli.md, or null.")
    score_error: str | None = Field(
        description="Why there is no score (no catalog serves the subject), or null."
    )
    records: list[RecordView]


class AccessEntry(BaseModel):
    id: str = Field(description="The entry's id; pass it as `before` to read older entries.")
    at: str = Field(description="UTC timestamp.")
    who: dict[str, str] = Field(description="{kind: party | provider | reviewer | admin | auditor, id}.")
    what: str = Field(description="check | report | ledger | access-log | receipt | reproduce")
    why: str = Field(description="The activity checked, or the reason the reader stated.")
    detail: dict[str, Any] | None


class AccessLog(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "subject_id": "11010519491231002X",
                    "entries": [
                        {
                            "id": 7,
                            "at": "2026-11-28T02:14:09.120331Z",
                            "who": {"kind": "party", "id": "air.cn"},
                            "what": "check",
                            "why": "activity check: air_travel",
                            "detail": {
                                "activity": "air_travel",
                                "decision": "restricted",
                                "receipt": "rc_01JDZ3Q6W4Q8X7R2M5N9T0V1B2",
                            },
                        }
                    ],
                    "next_before": None,
                }
            ]
        }
    }

    subject_id: str
    entries: list[AccessEntry]
    next_before: str | None = Field(description="Pass as `before` for older entries; null at the end.")


def parse_subject_param(value: str, where: str = "path") -> SubjectId:
    try:
        return parse_subject_id(value)
    except IdentifierError as e:
        reason = e.reason
        raw = value.strip().upper()
        if raw and raw in reason:
            reason = reason.replace(raw, mask_subject_id(raw))
        raise invalid("subject_id", reason, [where, "subject_id"]) from None


def subject_report(platform: Platform, sid: SubjectId) -> dict[str, Any]:
    platform.ensure_schema()
    with platform.engine.connect() as conn:
        states = repo.subject_records(conn, sid.value)
        row = repo.subject_row(conn, sid.value)
        disputed = DueProcess(platform).disputed(conn, sid.value)
    score: dict[str, Any] | None = None
    error: str | None = None
    try:
        score = platform.score(sid.value).to_dict()
    except ScoringError as e:
        error = str(e)
    records = [
        {
            "source": s.source,
            "record_id": s.record_id,
            "subject_name": s.subject_name,
            "category": s.category,
            "occurred_on": s.occurred_on.isoformat(),
            "case_number": s.case_number,
            "summary": s.summary,
            "region": s.region,
            "attributes": dict(s.attributes) if s.attributes else None,
            "retracted": s.retracted,
            "retract_reason": s.retract_reason,
            "repaired_on": s.repaired_on.isoformat() if s.repaired_on else None,
            "repair_reason": s.repair_reason,
            "disputed": (s.source, s.record_id) in disputed,
        }
        for s in sorted(states, key=lambda s: (s.occurred_on, s.source, s.record_id))
    ]
    return {
        "subject_id": sid.value,
        "kind": sid.kind,
        "region": sid.region,
        "name": row.name if row else None,
        "score": score,
        "score_error": error,
        "records": records,
    }


def read_access_log(platform: Platform, subject_id: str, limit: int, before: str | None) -> dict[str, Any]:
    platform.ensure_schema()
    try:
        with platform.engine.connect() as conn:
            entries, next_before = access_log.read(conn, subject_id, limit=limit, before=before)
    except ValueError as e:
        raise invalid("before", str(e), ["query", "before"]) from None
    return {"subject_id": subject_id, "entries": entries, "next_before": next_before}


def before_query() -> Any:
    return Query(None, max_length=120, description="An entry id (`next_before` of the previous page).")


def subject_path() -> Any:
    return Path(max_length=64, description="A resident identity number or unified social credit code.")


@router.get(
    "/{subject_id}/report",
    response_model=SubjectReport,
    responses=ERRORS_AUTH,
    summary="A subject's full report (reviewers, administrators, auditors; logged)",
)
def report(
    request: Request,
    subject_id: str = subject_path(),
    reason: str = reason_query(),
    principal: Principal = Depends(require_role("reviewer", "admin", "auditor")),
) -> dict[str, Any]:
    sid = parse_subject_param(subject_id)
    platform = get_services(request).platform
    access_log.record(
        platform.engine, [access_log.Access(sid.value, principal.kind, principal.id, "report", reason)]
    )
    return subject_report(platform, sid)


@router.get(
    "/{subject_id}/access-log",
    response_model=AccessLog,
    responses=ERRORS_AUTH,
    summary="A subject's access log (administrators, auditors; the read is logged too)",
)
def subject_access_log(
    request: Request,
    subject_id: str = subject_path(),
    reason: str = reason_query(),
    limit: int = Query(100, ge=1, le=1000),
    before: str | None = before_query(),
    principal: Principal = Depends(require_role("admin", "auditor")),
) -> dict[str, Any]:
    sid = parse_subject_param(subject_id)
    platform = get_services(request).platform
    access_log.record(
        platform.engine, [access_log.Access(sid.value, principal.kind, principal.id, "access-log", reason)]
    )
    return read_access_log(platform, sid.value, limit, before)
