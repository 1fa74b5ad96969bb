"""Due process over HTTP: objections and appeals, credit repair, notices (docs/due-process.md).

Subjects file (``/api/v1/me/objections``, ``/me/objections/{id}/appeal``, ``/me/repairs``);
reviewers decide (``/objections/{id}/decision``, ``/repairs/{id}/decision``); the record's
provider or an administrator confirms that a repaired obligation was fulfilled
(``/repairs/{id}/confirmation``); reviewers and administrators list objections, overdue ones
flagged; administrators run the notice sweep and the e-mail outbox (``/notices/sync``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from socred.api.auth import ApiError
from socred.api.deps import ERRORS_AUTH, ErrorBody, get_platform, require_role
from socred.api.routers.me import my_report
from socred.domain.ids import parse_subject_id
from socred.ledger.chain import utc_timestamp
from socred.service import report_pdf
from socred.service.auth import Principal
from socred.service.due_process import DueProcess, DueProcessError
from socred.service.list_actions import ListActionError, ListActions

router = APIRouter(tags=["due process"])
T = TypeVar("T")

RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS_AUTH,
    404: {"model": ErrorBody, "description": "No such record, objection or application for you."},
    409: {"model": ErrorBody, "description": "The case is not in a state that allows this step."},
}


def run(call: Callable[[], T]) -> T:
    """Translate the service's refusals into the API's error format."""
    try:
        return call()
    except (DueProcessError, ListActionError) as e:
        if e.status == 422:
            item: dict[str, Any] = {
                "field": e.field or "request",
                "reason": e.message,
                "loc": ["body", e.field] if e.field else ["body"],
                "type": "value_error",
                **e.extra,
            }
            raise ApiError(422, "invalid_request", [item]) from None
        raise ApiError(e.status, e.error, e.message) from None


def service(request: Request) -> DueProcess:
    return DueProcess(get_platform(request))


def actor(principal: Principal) -> str:
    return principal.describe()


def id_path() -> Any:
    return Path(max_length=40, description="The id the filing answered with.")


# ---------------------------------------------------------------- models


class ObjectionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"record_id": "(2026)沪0101执123号", "reason": "I paid on 2026-02-10"}]
        },
    )

    record_id: str = Field(min_length=1, max_length=128, description="The provider's record id.")
    reason: str = Field(min_length=1, max_length=2000)
    source: str | None = Field(
        None, max_length=64, description="The provider, needed only when two providers used the same id."
    )


class AppealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class Filed(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [{"id": "ob_01JDZ3Q6W4Q8X7R2M5N9T0V1B2", "status": "open", "due_by": "2026-12-13"}]
        }
    }

    id: str
    status: str
    due_by: str = Field(description="The date a reviewer must decide by (the catalog's objection_days).")


class ObjectionDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["upheld", "rejected"]
    reason: str = Field(min_length=1, max_length=2000)


class RepairIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"record_id": "j1", "commitment": "I commit to honour court judgments in full and on time."}
            ]
        },
    )

    record_id: str = Field(min_length=1, max_length=128)
    commitment: str = Field(min_length=1, max_length=2000, description="The public credit commitment.")
    source: str | None = Field(None, max_length=64)


class RepairDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["approved", "refused"]
    reason: str = Field(min_length=1, max_length=2000)


# ---------------------------------------------------------------- subjects


@router.post(
    "/api/v1/me/objections",
    response_model=Filed,
    status_code=201,
    responses=RESPONSES,
    summary="Object to a record about me (subjects)",
)
def file_objection(
    request: Request, body: ObjectionIn, principal: Principal = Depends(require_role("subject"))
) -> dict[str, Any]:
    sid = parse_subject_id(principal.id)
    dp = service(request)
    return run(lambda: dp.file_objection(sid, body.record_id, body.reason, body.source).to_dict())


@router.post(
    "/api/v1/me/objections/{objection_id}/appeal",
    response_model=Filed,
    status_code=201,
    responses=RESPONSES,
    summary="Appeal once against a rejected objection (subjects)",
)
def appeal(
    request: Request,
    body: AppealIn,
    objection_id: str = id_path(),
    principal: Principal = Depends(require_role("subject")),
) -> dict[str, Any]:
    sid = parse_subject_id(principal.id)
    dp = service(request)
    return run(lambda: dp.appeal(sid, objection_id, body.reason).to_dict())


@router.post(
    "/api/v1/me/repairs",
    status_code=201,
    responses=RESPONSES,
    summary="Apply for credit repair of a record about me (subjects)",
)
def apply_repair(
    request: Request, body: RepairIn, principal: Principal = Depends(require_role("subject"))
) -> dict[str, Any]:
    sid = parse_subject_id(principal.id)
    dp = service(request)
    return run(lambda: dp.apply_repair(sid, body.record_id, body.commitment, body.source))


@router.get(
    "/api/v1/me/report.pdf",
    responses={
        **ERRORS_AUTH,
        200: {"content": {"application/pdf": {}}, "description": "The report as a PDF."},
    },
    response_class=Response,
    summary="My full report as a PDF (subjects)",
)
def my_report_pdf(request: Request, principal: Principal = Depends(require_role("subject"))) -> Response:
    body = report_pdf.render(my_report(request, principal), utc_timestamp())
    return Response(
        body,
        media_type="application/pdf",
        headers={
            "Content-Disposition": 'attachment; filename="socred-report.pdf"',
            "Cache-Control": "no-store",
        },
    )


# ---------------------------------------------------------------- reviewers, providers, administrators


@router.get(
    "/api/v1/objections",
    responses=ERRORS_AUTH,
    summary="Objections and appeals, overdue ones flagged (reviewers, administrators)",
)
def list_objections(
    request: Request,
    status: Literal["open", "upheld", "rejected"] | None = Query(None),
    overdue: bool | None = Query(None, description="true: only open objections past their due date."),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(require_role("reviewer", "admin")),
) -> dict[str, Any]:
    items = service(request).list_objections(status, overdue, limit)
    return {"objections": items, "overdue": sum(1 for o in items if o["overdue"])}


@router.get(
    "/api/v1/repairs",
    responses=ERRORS_AUTH,
    summary="Credit repair applications by due date, overdue ones flagged (reviewers, administrators)",
)
def list_repairs(
    request: Request,
    status: Literal["applied", "confirmed", "approved", "refused"] | None = Query(None),
    overdue: bool | None = Query(None, description="true: only pending applications past their due date."),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(require_role("reviewer", "admin")),
) -> dict[str, Any]:
    items = service(request).list_repairs(status, overdue, limit)
    return {"repairs": items, "overdue": sum(1 for o in items if o["overdue"])}


@router.post(
    "/api/v1/objections/{objection_id}/decision",
    responses=RESPONSES,
    summary="Decide an objection or appeal: upheld retracts the record in the ledger (reviewers)",
)
def decide_objection(
    request: Request,
    body: ObjectionDecisionIn,
    objection_id: str = id_path(),
    principal: Principal = Depends(require_role("reviewer")),
) -> dict[str, Any]:
    dp = service(request)
    return run(lambda: dp.decide_objection(objection_id, actor(principal), body.outcome, body.reason))


@router.post(
    "/api/v1/repairs/{repair_id}/confirmation",
    responses=RESPONSES,
    summary="Confirm the obligation fulfilled (the record's provider, or an administrator)",
)
def confirm_repair(
    request: Request,
    repair_id: str = id_path(),
    principal: Principal = Depends(require_role("provider", "admin")),
) -> dict[str, Any]:
    dp = service(request)
    return run(lambda: dp.confirm_repair(repair_id, principal.kind, principal.id))


@router.post(
    "/api/v1/repairs/{repair_id}/decision",
    responses=RESPONSES,
    summary="Approve (a repair operation in the ledger, from today) or refuse credit repair (reviewers)",
)
def decide_repair(
    request: Request,
    body: RepairDecisionIn,
    repair_id: str = id_path(),
    principal: Principal = Depends(require_role("reviewer")),
) -> dict[str, Any]:
    dp = service(request)
    return run(lambda: dp.decide_repair(repair_id, actor(principal), body.outcome, body.reason))


@router.post(
    "/api/v1/notices/sync",
    responses=ERRORS_AUTH,
    summary="Generate notices for subjects changed since the last sweep; send the outbox (administrators)",
)
def sync_notices(request: Request, principal: Principal = Depends(require_role("admin"))) -> dict[str, Any]:
    dp = service(request)
    created = dp.sync_notices()
    sent = dp.deliver()
    return {"created": created, "sent": sent}


# ---------------------------------------------------------------- manual list actions (administrators)


class ListActionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subject_id": "11010519491231002X",
                    "list": "DISHONEST_JUDGMENT_DEBTOR",
                    "action": "add",
                    "reason": "court order (2026)京0105执456号 received on paper",
                    "until": "2027-06-30",
                }
            ]
        },
    )

    subject_id: str = Field(min_length=1, max_length=64)
    list: str = Field(
        min_length=1, max_length=64, description="A list code of the catalog that scores the subject."
    )
    action: Literal["add", "remove"]
    reason: str = Field(min_length=1, max_length=2000)
    until: date | None = Field(
        None, description="The action applies before this date; null: until another action."
    )


class ListActionDecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["approved", "refused"]
    reason: str = Field(min_length=1, max_length=2000)


@router.post(
    "/api/v1/list-actions",
    status_code=201,
    responses=RESPONSES,
    summary="Propose adding or removing a subject on a list outside the rules (administrators)",
)
def propose_list_action(
    request: Request, body: ListActionIn, principal: Principal = Depends(require_role("admin"))
) -> dict[str, Any]:
    la = ListActions(get_platform(request))
    return run(
        lambda: la.propose(actor(principal), body.subject_id, body.list, body.action, body.reason, body.until)
    )


@router.post(
    "/api/v1/list-actions/{action_id}/decision",
    responses=RESPONSES,
    summary="Approve (a list_action ledger entry naming both administrators) or refuse; not the proposer",
)
def decide_list_action(
    request: Request,
    body: ListActionDecisionIn,
    action_id: str = id_path(),
    principal: Principal = Depends(require_role("admin")),
) -> dict[str, Any]:
    la = ListActions(get_platform(request))
    return run(lambda: la.decide(action_id, actor(principal), body.outcome, body.reason))


@router.get(
    "/api/v1/list-actions",
    responses=ERRORS_AUTH,
    summary="Manual list actions, oldest proposal first (administrators, auditors)",
)
def list_list_actions(
    request: Request,
    status: Literal["pending", "approved", "refused"] | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(require_role("admin", "auditor")),
) -> dict[str, Any]:
    return {"list_actions": ListActions(get_platform(request)).find(status, None, limit)}
