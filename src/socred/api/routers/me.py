"""The caller's own view: who am I, and for subjects their full report and access log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from socred.api.deps import ERRORS_AUTH, get_services, require_principal, require_role
from socred.api.routers.subjects import (
    AccessLog,
    SubjectReport,
    before_query,
    read_access_log,
    subject_report,
)
from socred.domain.ids import parse_subject_id
from socred.service.auth import Principal

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


@router.get(
    "/report",
    response_model=SubjectReport,
    responses=ERRORS_AUTH,
    summary="My full report: every record about me and my score with its explanation (subjects)",
)
def my_report(request: Request, principal: Principal = Depends(require_role("subject"))) -> dict[str, Any]:
    return subject_report(get_services(request).platform, parse_subject_id(principal.id))


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
