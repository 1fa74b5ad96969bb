"""``POST /api/v1/check`` and ``/check/batch``: restriction checks for relying parties.

A party asks only about the activities it is registered for (403 otherwise) and
sees only the ``check --json`` object of cli.md (batch: subject, decision and end
date). Every answer is logged as a receipt before it is sent; the receipt's id is
in the ``Socred-Receipt`` header (a batch's in ``Socred-Batch``; its answers are
``<batch>.<position>``).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from socred.api.auth import ApiError, bearer_credential, forbidden, invalid, unauthorized
from socred.api.deps import ERRORS_AUTH, ErrorBody, Services, get_services
from socred.domain import clock
from socred.service.auth import PARTY_PREFIX, Party, TokenError, party_by_key_hash
from socred.service.checks import CheckJob, CheckOutcome, parse_subjects
from socred.service.platform import hash_key

router = APIRouter(prefix="/api/v1", tags=["checks"])

MAX_BATCH = 10_000
ACTIVITY_PATTERN = r"^[a-z0-9_]{1,64}$"
EARLIEST, LATEST = date(1900, 1, 1), date(2999, 12, 31)
PERSON_EXAMPLE = "11010519491231002X"


def parse_at(v: Any) -> date | None:
    if v is None:
        return None
    if not isinstance(v, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v.strip()):
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        d = date.fromisoformat(v.strip())
    except ValueError:
        raise ValueError(f"{v.strip()!r} is not a real calendar date") from None
    if not EARLIEST <= d <= LATEST:
        raise ValueError(f"must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
    return d


class CheckRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"subject_id": PERSON_EXAMPLE, "activity": "air_travel", "at": "2026-11-28"}]
        },
    )

    subject_id: str = Field(
        max_length=64, description="A resident identity number or unified social credit code."
    )
    activity: str = Field(pattern=ACTIVITY_PATTERN, description="The activity word, e.g. air_travel.")
    at: date | None = Field(None, description="The date asked about (default: today in Asia/Shanghai).")

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, v: Any) -> date | None:
        return parse_at(v)


class CheckAnswer(BaseModel):
    """The ``check --json`` object of cli.md."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "subject_id": PERSON_EXAMPLE,
                    "activity": "air_travel",
                    "at": "2026-11-28",
                    "catalog": "shanghai@3",
                    "decision": "restricted",
                    "measures": ["NO_AIR_TRAVEL"],
                    "lists": ["DISHONEST_JUDGMENT_DEBTOR"],
                    "until": "2028-02-29",
                }
            ]
        }
    )

    subject_id: str
    activity: str
    at: date
    catalog: str = Field(description="The catalog version that decided, id@version.")
    decision: Literal["allowed", "restricted"]
    measures: list[str] = Field(
        description="Every measure of the subject for this activity (restrictions and benefits)."
    )
    lists: list[str] = Field(description="The lists carrying those measures.")
    until: date | None = Field(
        description="When the restriction ends; null when allowed or without a fixed end."
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"activity": "air_travel", "subject_ids": [PERSON_EXAMPLE, "91330100799655058B"]}]
        },
    )

    activity: str = Field(pattern=ACTIVITY_PATTERN, description="The activity word, e.g. air_travel.")
    subject_ids: list[str] = Field(max_length=MAX_BATCH, description=f"At most {MAX_BATCH:,} identifiers.")
    at: date | None = Field(None, description="The date asked about (default: today in Asia/Shanghai).")

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, v: Any) -> date | None:
        return parse_at(v)


class BatchResult(BaseModel):
    subject_id: str
    decision: Literal["allowed", "restricted"]
    until: date | None


class BatchAnswer(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {"subject_id": PERSON_EXAMPLE, "decision": "restricted", "until": "2028-02-29"},
                        {"subject_id": "91330100799655058B", "decision": "allowed", "until": None},
                    ]
                }
            ]
        }
    )

    results: list[BatchResult] = Field(description="One answer per identifier, in the order asked.")


# ------------------------------------------------------------------ the door


@dataclass(frozen=True, slots=True)
class PartyDoor:
    """The relying party as admitted at the door; the worker re-verifies it in the answer's snapshot."""

    code: str
    activities: frozenset[str]
    key_hash: str


MAX_DOOR_CACHE = 10_000
ANSWER_TIMEOUT = 120.0  # seconds; a batch of 10,000 takes well under one


async def party_door(request: Request) -> PartyDoor:
    """401 without a valid credential, 403 for a valid one that is not a relying party's key."""
    services = get_services(request)
    credential = bearer_credential(request)
    if credential is None:
        raise unauthorized("missing credential: send Authorization: Bearer <relying-party API key>")
    if not credential.startswith(PARTY_PREFIX):
        try:
            principal = await run_in_threadpool(services.authenticator().authenticate, credential)
        except TokenError as e:
            raise unauthorized(str(e)) from None
        raise forbidden(f"{_a(principal.kind)} may not ask checks: they are for relying parties")
    h = hash_key(credential)
    cache: dict[str, Party | None] = services.checks.party_cache
    if h in cache:
        party = cache[h]
    else:
        party = await run_in_threadpool(_lookup_party, services, h)
        if len(cache) >= MAX_DOOR_CACHE:
            cache.clear()
        cache[h] = party
    if party is None or party.revoked:
        raise unauthorized("unknown or revoked relying-party key")
    request.state.party = party.code
    return PartyDoor(party.code, party.activities, h)


def _lookup_party(services: Services, key_hash: str) -> Party | None:
    with services.platform.engine.connect() as conn:
        return party_by_key_hash(conn, key_hash)


def _refuse(outcome: CheckOutcome) -> ApiError:
    if outcome.status == 401:
        return unauthorized(outcome.error or "unknown or revoked relying-party key")
    if outcome.status == 403:
        return forbidden(outcome.error or "not registered for this activity")
    if outcome.status == 422:
        return invalid(outcome.field or "subject_id", outcome.error or "cannot be checked")
    return ApiError(503, "unavailable", outcome.error or "the service is not available; retry")


def _authorise_activity(door: PartyDoor, activity: str) -> None:
    if activity not in door.activities:
        raise forbidden(f"relying party {door.code!r} is not registered for activity {activity!r}")


async def _ask(services: Services, job: CheckJob) -> CheckOutcome:
    checks = services.checks
    try:
        if checks.inline:
            outcome = await checks.submit_inline(job)
        else:
            outcome = await asyncio.wait_for(asyncio.wrap_future(checks.submit(job)), ANSWER_TIMEOUT)
    except TimeoutError:
        raise ApiError(503, "unavailable", "the check service did not answer in time; retry") from None
    if outcome.status != 200:
        raise _refuse(outcome)
    counter = services.metrics.checks
    if outcome.answers is not None:
        restricted = outcome.answers.restricted()
        allowed = len(outcome.answers.subjects) - restricted
        if restricted:
            counter.labels(job.activity, "restricted").inc(restricted)
        if allowed:
            counter.labels(job.activity, "allowed").inc(allowed)
    return outcome


RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS_AUTH,
    503: {"model": ErrorBody, "description": "The database is unavailable; nothing was answered."},
}


@router.post(
    "/check",
    response_model=CheckAnswer,
    responses=RESPONSES,
    summary="Is a subject restricted from an activity?",
    description="For relying parties, about the activities they are registered for. The answer is logged as a "
    "receipt (header `Socred-Receipt`) and in the subject's access log before it is sent; it reflects every "
    "write to the ledger committed before the request arrived (header `Socred-Ledger-Size`).",
)
async def check(request: Request, body: CheckRequest = Body(), door: PartyDoor = Depends(party_door)) -> Any:
    _authorise_activity(door, body.activity)
    sids, bad = parse_subjects([body.subject_id])
    if bad:
        raise invalid("subject_id", bad[0][1])
    services = get_services(request)
    job = CheckJob(
        door.code, body.activity, sids, body.at or clock.today(), batch=False, key_hash=door.key_hash
    )
    out = await _ask(services, job)
    return JSONResponse(
        out.results[0],
        headers={"Socred-Receipt": out.receipt or "", "Socred-Ledger-Size": str(out.ledger_size)},
    )


@router.post(
    "/check/batch",
    response_model=BatchAnswer,
    responses=RESPONSES,
    summary=f"Check up to {MAX_BATCH:,} subjects for one activity",
    description="Answers in the order asked. Every answer is a receipt `<Socred-Batch>.<position>` and an entry "
    "of the subject's access log. One invalid identifier refuses the whole batch (422 naming each position).",
)
async def check_batch(
    request: Request, body: BatchRequest = Body(), door: PartyDoor = Depends(party_door)
) -> Any:
    _authorise_activity(door, body.activity)
    sids, bad = parse_subjects(body.subject_ids)
    if bad:
        raise ApiError(
            422,
            "invalid_request",
            [
                {
                    "field": f"subject_ids[{i}]",
                    "reason": reason,
                    "loc": ["body", "subject_ids", i],
                    "type": "value_error",
                }
                for i, reason in bad[:100]
            ],
        )
    services = get_services(request)
    job = CheckJob(
        door.code, body.activity, sids, body.at or clock.today(), batch=True, key_hash=door.key_hash
    )
    out = await _ask(services, job) if sids else CheckOutcome(200)
    return Response(
        out.batch_json(),
        media_type="application/json",
        headers={"Socred-Batch": out.receipt or "", "Socred-Ledger-Size": str(out.ledger_size)},
    )


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word
