"""The caller's own view: who am I, and for subjects their full report and access log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from socred.api.deps import ERRORS_AUTH, get_services, require_principal, require_role
from socred.api.routers.subjects import (
    AccessLog,
    RecordView,
    SubjectReport,
    before_query,
    read_access_log,
    subject_report,
)
from socred.domain.ids import parse_subject_id
from socred.service.auth import Principal
from socred.service.due_process import DueProcess

router = APIRouter(prefix="/api/v1/me", tags=["me"])


class Me(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "kind": "party",
                    "id": "air.cn",
                    "name": "China Air",
                    "activities": ["air_travel"],
                    "categories": [],
                    "expires_at": None,
                },
                {
                    "kind": "subject",
                    "id": "11010519491231002X",
                    "name": "",
                    "activities": [],
                    "categories": [],
                    "expires_at": 1796000000,
                },
            ]
        }
    }

    kind: str = Field(description="provider | party | subject | reviewer | admin | auditor")
    id: str
    name: str
    activities: list[str]
    categories: list[str]
    expires_at: int | None = Field(description="Unix time the session token expires; null for API keys.")


@router.get("", response_model=Me, responses=ERRORS_AUTH, summary="Who the credential belongs to")
def me(principal: Principal = Depends(require_principal)) -> dict[str, Any]:
    return {
        "kind": principal.kind,
        "id": principal.id,
        "name": principal.name,
        "activities": sorted(principal.activities),
        "categories": sorted(principal.categories),
        "expires_at": principal.expires_at,
    }


class MyRecordView(RecordView):
    disputed: bool = Field(description="An objection or appeal about this record is open.")
    severity: str | None = Field(description="minor | general | serious (null when no catalog counts it).")
    negative: bool = Field(description="Warning information (negative points).")
    expires_on: str | None = Field(description="The first day the record no longer counts.")
    published: bool = Field(description="Whether it appears on public pages today.")
    publicity_ends_on: str | None = Field(description="The first day it is no longer published.")
    repair_eligible_on: str | None = Field(description="The first day credit repair may be applied for.")


class MyReport(SubjectReport):
    """My full report: every record (public or not) with its due-process facts, the score, lists and
    measures with what would lift each restriction, my objections, repair applications, notices and
    who read my data."""

    records: list[MyRecordView]  # type: ignore[assignment]
    restrictions: list[dict[str, Any]] = Field(
        description="Each list I am on: measures, until, the records holding me and what would lift it."
    )
    objections: list[dict[str, Any]]
    repairs: list[dict[str, Any]]
    notices: list[dict[str, Any]] = Field(description="Placements on lists, newest first.")
    access_log: AccessLog = Field(description="The newest 100 entries; page on with /me/access-log.")


@router.get(
    "/report",
    response_model=MyReport,
    responses=ERRORS_AUTH,
    summary="My full report: every record about me, my score with its explanation, due process (subjects)",
)
def my_report(request: Request, principal: Principal = Depends(require_role("subject"))) -> dict[str, Any]:
    platform = get_services(request).platform
    sid = parse_subject_id(principal.id)
    report = subject_report(platform, sid)
    extras = DueProcess(platform).report_extras(sid, report["score"])
    items = extras.pop("items")
    empty = {
        "disputed": False,
        "severity": None,
        "negative": False,
        "expires_on": None,
        "published": False,
        "publicity_ends_on": None,
        "repair_eligible_on": None,
    }
    for r in report["records"]:
        r.update(items.get(f"{r['source']}\x00{r['record_id']}", empty))
    report.update(extras)
    report["access_log"] = read_access_log(platform, sid.value, 100, None)
    return report


@router.get(
    "/access-log",
    response_model=AccessLog,
    responses=ERRORS_AUTH,
    summary="Who read my non-public data, when, what and why (subjects)",
)
def my_access_log(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    before: str | None = before_query(),
    principal: Principal = Depends(require_role("subject")),
) -> dict[str, Any]:
    return read_access_log(get_services(request).platform, principal.id, limit, before)
