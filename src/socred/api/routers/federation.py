"""Federation over HTTP: national lists published to downstream nodes; upstream status and name conflicts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from socred.api.auth import forbidden
from socred.api.deps import ERRORS_AUTH, get_services, require_role
from socred.domain.federation import check_regions, in_regions
from socred.service import federation
from socred.service.auth import Principal

router = APIRouter(prefix="/api/v1/federation", tags=["federation"])


class Measure(BaseModel):
    code: str
    activity: str
    effect: str


class Membership(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    subject_id: str
    catalog: str = Field(description="id@version of this node's catalog that puts the subject on the list.")
    list_code: str = Field(alias="list", description="The list's code in that catalog.")
    kind: str
    title: str
    since: str | None
    until: str | None
    measures: list[Measure]


class ListSnapshot(BaseModel):
    """This node's list memberships for the caller's regions, signed with the ledger key."""

    node: str
    regions: list[str]
    as_of: str
    ledger_size: int
    root_hash: str
    memberships: list[Membership]
    signature: str = Field(description="Ed25519 over the canonical JSON of every other field, base64.")


class NodeStatus(BaseModel):
    code: str
    url: str
    pull: str
    regions: list[str]
    verified_seq: int
    verified_hash: str
    verified_at: str | None
    upstream_size: int
    lag_entries: int
    lag_seconds: float
    applied: int
    duplicates: int
    rejected: int
    errors: int
    last_error: str | None
    last_error_at: str | None


class NameConflict(BaseModel):
    id: int
    subject_id: str
    name: str
    other_name: str
    node: str
    origin_seq: int
    flagged_at: str
    resolved_at: str | None


@router.get(
    "/lists",
    response_model=ListSnapshot,
    responses=ERRORS_AUTH,
    summary="List memberships for a downstream node's regions (nodes)",
)
async def lists(
    request: Request,
    regions: str = Query(
        "", max_length=200, description="Comma-separated region prefixes; default: all allowed."
    ),
    principal: Principal = Depends(require_role("node")),
) -> dict[str, Any]:
    allowed: list[str] = list(principal.claims.get("regions") or [])
    try:
        asked = check_regions([r for r in regions.split(",") if r.strip()]) if regions.strip() else allowed
    except ValueError as e:
        raise forbidden(str(e)) from None
    outside = [r for r in asked if not in_regions(r, allowed)]
    if outside:
        raise forbidden(
            f"node {principal.id} may read regions {', '.join(allowed) or '(none)'}, not {', '.join(outside)}"
        )
    s = get_services(request)
    result: dict[str, Any] = await run_in_threadpool(federation.list_snapshot, s.platform, s.signer(), asked)
    return result


@router.get(
    "/nodes",
    response_model=list[NodeStatus],
    responses=ERRORS_AUTH,
    summary="Upstream nodes: verified position, lag and errors (administrators, auditors)",
)
def nodes(
    request: Request, principal: Principal = Depends(require_role("admin", "auditor"))
) -> list[dict[str, Any]]:
    return [n.status() for n in federation.list_nodes(get_services(request).platform)]


@router.get(
    "/conflicts",
    response_model=list[NameConflict],
    responses=ERRORS_AUTH,
    summary="Subjects named differently by different nodes, flagged for review (reviewers, administrators, auditors)",
)
def conflicts(
    request: Request, principal: Principal = Depends(require_role("reviewer", "admin", "auditor"))
) -> list[dict[str, Any]]:
    return federation.conflicts(get_services(request).platform)
