"""Administration: relying parties and providers, their keys (administrators)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from socred.api.auth import invalid, not_found
from socred.api.deps import ERRORS_AUTH, ErrorBody, get_services, require_role
from socred.service import auth as keys
from socred.service.auth import Principal
from socred.service.platform import NotFound, UsageError
from socred.store import repo

router = APIRouter(prefix="/api/v1/admin", tags=["administration"])
ADMIN = Depends(require_role("admin"))
RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS_AUTH,
    404: {"model": ErrorBody, "description": "Unknown code."},
}


def code_path() -> Any:
    return Path(max_length=64, pattern=r"^[a-z0-9.-]{1,64}$")


class PartyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"code": "air.cn", "name": "China Air", "activities": ["air_travel"]}]
        },
    )

    code: str = Field(pattern=r"^[a-z0-9.-]{1,64}$")
    name: str = Field(min_length=1, max_length=200)
    activities: list[str] = Field(min_length=1, max_length=100)


class PartyOut(BaseModel):
    code: str
    name: str
    activities: list[str]
    revoked: bool
    created_at: str


class NewKey(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"code": "air.cn", "api_key": "rp_…(shown once)"}]}}

    code: str
    api_key: str = Field(description="Shown once: only its SHA-256 is kept.")


class ProviderIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "court.sh",
                    "name": "Shanghai High People's Court",
                    "categories": ["DISHONEST_JUDGMENT_DEBTOR"],
                }
            ]
        },
    )

    code: str = Field(pattern=r"^[a-z0-9.-]{1,64}$")
    name: str = Field(min_length=1, max_length=200)
    categories: list[str] = Field(min_length=1, max_length=500)


class ProviderOut(BaseModel):
    code: str
    name: str
    categories: list[str]
    revoked: bool


def _usage(e: UsageError, field: str) -> Exception:
    if isinstance(e, NotFound):
        return not_found(str(e))
    return invalid(field, str(e))


@router.get("/parties", response_model=list[PartyOut], responses=ERRORS_AUTH, summary="List relying parties")
def parties(request: Request, principal: Principal = ADMIN) -> list[dict[str, Any]]:
    return [p.to_dict() for p in keys.list_parties(get_services(request).platform)]


@router.post(
    "/parties",
    response_model=NewKey,
    status_code=201,
    responses=ERRORS_AUTH,
    summary="Register a relying party; its API key is shown once",
)
def add_party(request: Request, body: PartyIn = Body(), principal: Principal = ADMIN) -> dict[str, str]:
    try:
        key = keys.add_party(get_services(request).platform, body.code, body.name, body.activities)
    except UsageError as e:
        raise _usage(e, "code" if "already" in str(e) or "code" in str(e) else "activities") from None
    return {"code": body.code, "api_key": key}


@router.post("/parties/{code}/revoke", status_code=204, responses=RESPONSES, summary="Revoke a party's key")
def revoke_party(request: Request, code: str = code_path(), principal: Principal = ADMIN) -> None:
    try:
        keys.revoke_party(get_services(request).platform, code)
    except UsageError as e:
        raise _usage(e, "code") from None


@router.post(
    "/parties/{code}/rotate",
    response_model=NewKey,
    responses=RESPONSES,
    summary="Give a party a new key (the old one stops working at once)",
)
def rotate_party(request: Request, code: str = code_path(), principal: Principal = ADMIN) -> dict[str, str]:
    try:
        return {"code": code, "api_key": keys.rotate_party(get_services(request).platform, code)}
    except UsageError as e:
        raise _usage(e, "code") from None


@router.get("/providers", response_model=list[ProviderOut], responses=ERRORS_AUTH, summary="List providers")
def providers(request: Request, principal: Principal = ADMIN) -> list[dict[str, Any]]:
    platform = get_services(request).platform
    platform.ensure_schema()
    with platform.engine.connect() as conn:
        return [
            {"code": p.code, "name": p.name, "categories": sorted(p.categories), "revoked": p.revoked}
            for p in repo.list_providers(conn)
        ]


@router.post(
    "/providers",
    response_model=NewKey,
    status_code=201,
    responses=ERRORS_AUTH,
    summary="Register a provider; its API key is shown once",
)
def add_provider(request: Request, body: ProviderIn = Body(), principal: Principal = ADMIN) -> dict[str, str]:
    try:
        key = get_services(request).platform.add_provider(body.code, body.name, body.categories)
    except UsageError as e:
        raise _usage(e, "categories" if "categor" in str(e) else "code") from None
    return {"code": body.code, "api_key": key}


@router.post(
    "/providers/{code}/revoke", status_code=204, responses=RESPONSES, summary="Revoke a provider's key"
)
def revoke_provider(request: Request, code: str = code_path(), principal: Principal = ADMIN) -> None:
    try:
        keys.revoke_provider(get_services(request).platform, code)
    except UsageError as e:
        raise _usage(e, "code") from None


@router.post(
    "/providers/{code}/rotate",
    response_model=NewKey,
    responses=RESPONSES,
    summary="Give a provider a new key (the old one stops working at once)",
)
def rotate_provider(
    request: Request, code: str = code_path(), principal: Principal = ADMIN
) -> dict[str, str]:
    try:
        return {"code": code, "api_key": keys.rotate_provider(get_services(request).platform, code)}
    except UsageError as e:
        raise _usage(e, "code") from None
