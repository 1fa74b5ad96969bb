"""``POST /api/v1/records``: a provider submits operations on its own records (records.md)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError

from socred.api.auth import unauthorized
from socred.api.deps import ERRORS_AUTH, get_services, require_role
from socred.ingest.readers import BadRow, Row
from socred.service.auth import Principal
from socred.service.due_process import DueProcess
from socred.service.platform import Platform, UsageError

router = APIRouter(prefix="/api/v1", tags=["records"])
log = logging.getLogger("socred.records")

MAX_OPERATIONS = 10_000

EXAMPLE_OPS: Any = [
    {
        "record_id": "2026-zx-001",
        "subject_id": "11010519491231002X",
        "subject_name": "张三",
        "category": "DISHONEST_JUDGMENT_DEBTOR",
        "occurred_on": "2026-03-01",
        "case_number": "(2026)沪01执123号",
    },
    {"op": "retract", "record_id": "2026-zx-000", "reason": "entered in error"},
    {
        "op": "repair",
        "record_id": "2025-zx-417",
        "repaired_on": "2026-05-01",
        "reason": "obligations performed",
    },
]


class RecordsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"operations": EXAMPLE_OPS}]})

    operations: list[Any] = Field(
        max_length=MAX_OPERATIONS,
        description=f"At most {MAX_OPERATIONS:,} operations, each an object as in records.md: `op` (submit, "
        "correct, retract, repair; default submit), `record_id`, `subject_id`, `subject_name`, `category`, "
        "`occurred_on`, `case_number`, `summary`, `region`, `attributes`, `reason`, `repaired_on`. Each is "
        "validated on its own; an item that is not an object is rejected as its line.",
    )


class IngestError(BaseModel):
    line: int = Field(description="Position of the operation in the list, from 1.")
    field: str
    message: str


class IngestSummary(BaseModel):
    """The ingest summary of cli.md."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": 2,
                    "duplicates": 0,
                    "rejected": 1,
                    "errors": [
                        {
                            "line": 3,
                            "field": "record_id",
                            "message": "unknown record '2025-zx-417': provider 'court.sh' never submitted it",
                        }
                    ],
                }
            ]
        }
    )

    accepted: int
    duplicates: int
    rejected: int
    errors: list[IngestError]


def notify_placements(platform: Platform, source: str, after_seq: int) -> None:
    """Notices for subjects the accepted operations put on a list (docs/due-process.md): the subjects
    whose records of ``source`` changed after ledger seq ``after_seq``.

    The records are already committed: a failing run (say, a concurrent one inserting the same
    notice first) must not turn the answer into an error; the next sweep or report read catches up.
    """
    try:
        DueProcess(platform).sync_changed(after_seq, source)
    except SQLAlchemyError as e:
        log.warning("notice sweep after ingest failed; the next sweep catches up: %s", str(e).splitlines()[0])


def _unsafe_text(value: Any, depth: int = 0) -> str | None:
    """Why a value cannot be stored faithfully (a NUL character, text that is not UTF-8), or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return "contains a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains characters that are not valid Unicode (lone surrogates)"
        return None
    if depth > 64:
        return "is nested too deeply"
    if isinstance(value, Mapping):
        for k, v in value.items():
            problem = _unsafe_text(k, depth + 1) or _unsafe_text(v, depth + 1)
            if problem:
                return problem
    elif isinstance(value, list):
        for v in value:
            problem = _unsafe_text(v, depth + 1)
            if problem:
                return problem
    return None


def _row(line: int, op: Any) -> Row:
    if not isinstance(op, Mapping):
        return line, BadRow("op", f"an operation must be a JSON object of fields, got {_json_type(op)}")
    for key, value in op.items():
        problem = _unsafe_text(key) or _unsafe_text(value)
        if problem:
            field = key if isinstance(key, str) and _unsafe_text(key) is None else "op"
            return line, BadRow(field, f"{field} {problem}")
    return line, op


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return type(v).__name__


@router.post(
    "/records",
    response_model=IngestSummary,
    responses=ERRORS_AUTH,
    summary=f"Submit up to {MAX_OPERATIONS:,} operations on your records",
    description="For providers. Each operation is validated on its own, exactly as `socred ingest` does; valid "
    "ones are appended to the ledger, rejected ones are reported with their position in the list (`line`, from "
    "1), the field and the reason. The answer is 200 even when some are rejected.",
)
def submit_records(
    request: Request,
    body: RecordsRequest = Body(
        openapi_examples={"submit, retract and repair": {"value": {"operations": EXAMPLE_OPS}}}
    ),
    principal: Principal = Depends(require_role("provider")),
) -> dict[str, Any]:
    services = get_services(request)
    rows = [_row(i + 1, op) for i, op in enumerate(body.operations)]
    before = services.platform.head()[0]
    try:
        summary = services.platform.ingest(principal.id, rows)
    except UsageError as e:  # revoked between the door and the ingest
        raise unauthorized(str(e)) from None
    if summary.accepted:
        notify_placements(services.platform, principal.id, before)
    m = services.metrics.ingested
    m.labels("accepted").inc(summary.accepted)
    m.labels("duplicate").inc(summary.duplicates)
    m.labels("rejected").inc(summary.rejected)
    return summary.to_dict()
