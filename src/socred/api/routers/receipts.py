"""Receipts of check answers: read them (the party its own; auditors and administrators any) and reproduce them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from socred.api.auth import invalid, not_found
from socred.api.deps import ERRORS_AUTH, ErrorBody, get_services, require_role
from socred.api.routers.ledger import reason_query
from socred.domain.ids import IdentifierError, parse_subject_id
from socred.service import access_log
from socred.service.auth import Principal
from socred.service.checks import get_receipt, list_receipts, reproduce
from socred.service.platform import NotFound

router = APIRouter(prefix="/api/v1/receipts", tags=["receipts"])


def receipt_path() -> Any:
    return Path(
        max_length=64,
        pattern=r"^r[cb]_[0-9A-Z]{26}(\.[0-9]{1,5})?$",
        description="A receipt id: rc_… for a single check, rb_….N for answer N of a batch.",
    )


RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS_AUTH,
    404: {"model": ErrorBody, "description": "No such receipt."},
}


class Receipt(BaseModel):
    """One answer as it was given, with the ledger size and head hash it was computed from."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "rc_01JDZ3Q6W4Q8X7R2M5N9T0V1B2",
                    "batch_id": None,
                    "party": "air.cn",
                    "subject_id": "11010519491231002X",
                    "activity": "air_travel",
                    "at": "2026-11-28",
                    "decision": "restricted",
                    "catalog": "national@1",
                    "ledger_size": 1042,
                    "ledger_head": "9f2c…",
                    "issued_at": "2026-11-28T02:14:09Z",
                    "result": {
                        "subject_id": "11010519491231002X",
                        "activity": "air_travel",
                        "at": "2026-11-28",
                        "catalog": "national@1",
                        "decision": "restricted",
                        "measures": ["NO_AIR_TRAVEL"],
                        "lists": ["DISHONEST_JUDGMENT_DEBTOR"],
                        "until": "2028-02-29",
                    },
                }
            ]
        }
    }

    id: str
    batch_id: str | None
    party: str
    subject_id: str
    activity: str
    at: str
    decision: str
    catalog: str
    ledger_size: int
    ledger_head: str
    issued_at: str
    result: dict[str, Any] = Field(description="The full check --json object computed.")


class ReceiptList(BaseModel):
    receipts: list[Receipt]


class Reproduction(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "receipt": "rc_01JDZ3Q6W4Q8X7R2M5N9T0V1B2",
                    "ledger_size": 1042,
                    "ledger_intact": True,
                    "match": True,
                    "recomputed": {"decision": "restricted"},
                    "reason": None,
                }
            ]
        }
    }

    receipt: str
    ledger_size: int | None = None
    ledger_intact: bool
    match: bool
    recomputed: dict[str, Any] | None = None
    reason: str | None = None


def _load(request: Request, receipt_id: str, principal: Principal) -> dict[str, Any]:
    try:
        r = get_receipt(get_services(request).platform, receipt_id)
    except NotFound:
        raise not_found(f"no receipt {receipt_id!r}") from None
    if principal.kind == "party" and r["party"] != principal.id:
        raise not_found(f"no receipt {receipt_id!r}")  # another party's receipts do not exist for you
    return r


def _log(request: Request, principal: Principal, receipts: list[dict[str, Any]], what: str, why: str) -> None:
    if principal.kind == "party" or not receipts:
        return  # a party re-reading its own answers learns nothing new
    access_log.record(
        get_services(request).platform.engine,
        [
            access_log.Access(r["subject_id"], principal.kind, principal.id, what, why, {"receipt": r["id"]})
            for r in receipts
        ],
    )


@router.get(
    "/{receipt_id}",
    response_model=Receipt,
    responses=RESPONSES,
    summary="One receipt (the relying party that got it; auditors and administrators, logged)",
)
def show(
    request: Request,
    receipt_id: str = receipt_path(),
    reason: str | None = Query(
        None,
        min_length=3,
        max_length=500,
        description="Auditors and administrators: why (kept in the access log).",
    ),
    principal: Principal = Depends(require_role("party", "admin", "auditor")),
) -> dict[str, Any]:
    if principal.kind != "party" and reason is None:
        raise invalid(
            "reason", "auditors and administrators must state why they read a receipt", ["query", "reason"]
        )
    r = _load(request, receipt_id, principal)
    _log(request, principal, [r], "receipt", reason or "")
    return r


@router.get(
    "",
    response_model=ReceiptList,
    responses=ERRORS_AUTH,
    summary="Receipts, newest first (a party sees its own; auditors and administrators all, logged)",
)
def index(
    request: Request,
    subject_id: str | None = Query(None, max_length=64),
    batch_id: str | None = Query(None, max_length=40),
    party: str | None = Query(None, max_length=64),
    limit: int = Query(100, ge=1, le=1000),
    reason: str | None = Query(
        None,
        min_length=3,
        max_length=500,
        description="Auditors and administrators: why (kept in the access log).",
    ),
    principal: Principal = Depends(require_role("party", "admin", "auditor")),
) -> dict[str, Any]:
    if principal.kind != "party" and reason is None:
        raise invalid(
            "reason", "auditors and administrators must state why they read receipts", ["query", "reason"]
        )
    sid: str | None = None
    if subject_id is not None:
        try:
            sid = parse_subject_id(subject_id).value
        except IdentifierError as e:
            raise invalid("subject_id", e.reason, ["query", "subject_id"]) from None
    if principal.kind == "party":
        party = principal.id
    rows = list_receipts(
        get_services(request).platform, subject_id=sid, party=party, batch_id=batch_id, limit=limit
    )
    _log(request, principal, rows, "receipt", reason or "")
    return {"receipts": rows}


@router.post(
    "/{receipt_id}/reproduce",
    response_model=Reproduction,
    responses=RESPONSES,
    summary="Recompute a receipt's answer from the ledger alone (auditors, administrators; logged)",
)
def reproduce_receipt(
    request: Request,
    receipt_id: str = receipt_path(),
    reason: str = reason_query(),
    principal: Principal = Depends(require_role("admin", "auditor")),
) -> dict[str, Any]:
    r = _load(request, receipt_id, principal)
    _log(request, principal, [r], "reproduce", reason)
    return reproduce(get_services(request).platform, r)
