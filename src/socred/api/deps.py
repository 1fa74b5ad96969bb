"""Dependencies every router uses: the app's services, the caller, errors.

For routers written elsewhere (the public read layer, the portal):

* ``get_platform(request) -> Platform`` — the one :class:`Platform` of the app;
* ``optional_principal`` — the caller, or ``None`` when no credential was sent
  (a credential that is sent but unknown, revoked or expired is a 401);
* ``require_principal`` — the caller; 401 without a valid credential;
* ``require_role("admin", "auditor", ...)`` — the caller when its kind is one of
  those (provider, party, subject, reviewer, admin, auditor); 401 / 403 otherwise;
* ``get_services(request)`` — settings, platform, check service, metrics;
* ``ApiError`` (and ``invalid``, ``forbidden``, ``not_found``, ``unauthorized``) —
  raise it for an answer in the API's error format.

Routers carry their full paths (``/api/v1/...``); :func:`socred.api.app.create_app`
includes them without a prefix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from pydantic import BaseModel, Field

from socred.api.auth import ApiError, bearer_credential, forbidden, invalid, not_found, unauthorized
from socred.api.settings import Settings
from socred.service.auth import (
    Authenticator,
    LedgerSigner,
    Principal,
    TokenCodec,
    TokenError,
    token_secret,
)
from socred.service.checks import CheckService
from socred.service.platform import Platform

# ------------------------------------------------------------------ errors


class ErrorBody(BaseModel):
    """An error: a short code and a sentence."""

    error: str = Field(description="unauthorized | forbidden | not_found | too_large | unavailable | ...")
    detail: str = Field(description="What went wrong, in one sentence.")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "error": "unauthorized",
                    "detail": "missing credential: send Authorization: Bearer <key or token>",
                },
                {
                    "error": "forbidden",
                    "detail": "relying party 'air.cn' is not registered for activity 'star_hotel'",
                },
            ]
        }
    }


class FieldError(BaseModel):
    field: str = Field(
        description="The offending field: 'subject_id', 'subject_ids[3]', 'operations', 'at', ..."
    )
    reason: str = Field(description="Why it was refused.")
    loc: list[str | int] = Field(description="Where the field is: ['body', 'subject_ids', 3].")
    type: str = Field(description="A machine-readable kind of error.")


class ValidationErrorBody(BaseModel):
    """Malformed input (422): every offending field with the reason. The input is never echoed."""

    error: str = Field("invalid_request")
    detail: list[FieldError]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "error": "invalid_request",
                    "detail": [
                        {
                            "field": "subject_id",
                            "reason": "check character should be 'X', got '7'",
                            "loc": ["body", "subject_id"],
                            "type": "value_error",
                        }
                    ],
                }
            ]
        }
    }


ERRORS_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, unknown, revoked or expired credential."},
    403: {
        "model": ErrorBody,
        "description": "Valid credential without the right to this endpoint or activity.",
    },
    422: {"model": ValidationErrorBody, "description": "Malformed input: the field and the reason."},
}

# ------------------------------------------------------------------ services


@dataclass
class Services:
    """What one app holds: built once by create_app, kept in ``app.state.socred``."""

    settings: Settings
    platform: Platform
    checks: CheckService
    metrics: Any
    verifier: Callable[[str], Principal] | None = None
    _codec: TokenCodec | None = None
    _signer: LedgerSigner | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def codec(self) -> TokenCodec:
        if self._codec is None:
            with self._lock:
                if self._codec is None:
                    secret = (
                        self.settings.token_secret.get_secret_value() if self.settings.token_secret else None
                    )
                    self._codec = TokenCodec(token_secret(self.platform.engine, secret))
        return self._codec

    def signer(self) -> LedgerSigner:
        if self._signer is None:
            with self._lock:
                if self._signer is None:
                    key = self.settings.signing_key.get_secret_value() if self.settings.signing_key else None
                    self._signer = LedgerSigner.load(
                        self.platform.engine, key, self.settings.origin, self.settings.signing_key_file
                    )
        return self._signer

    def authenticator(self) -> Authenticator:
        return Authenticator(self.platform, self.codec, self.verifier)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.socred
    return services


def get_platform(request: Request) -> Platform:
    return get_services(request).platform


# ------------------------------------------------------------------ the caller


def authenticate(request: Request, credential: str) -> Principal:
    try:
        principal = get_services(request).authenticator().authenticate(credential)
    except TokenError as e:
        raise unauthorized(str(e)) from None
    request.state.principal = principal
    return principal


def optional_principal(request: Request) -> Principal | None:
    """The caller, or None when no credential was sent; 401 for a credential that does not hold."""
    credential = bearer_credential(request)
    if credential is None:
        return None
    return authenticate(request, credential)


def require_principal(request: Request) -> Principal:
    credential = bearer_credential(request)
    if credential is None:
        raise unauthorized("missing credential: send Authorization: Bearer <API key or session token>")
    return authenticate(request, credential)


def require_role(*kinds: str) -> Callable[[Request], Principal]:
    """A dependency admitting callers of these kinds (provider, party, subject, reviewer, admin, auditor)."""
    allowed = frozenset(kinds)

    def dependency(request: Request) -> Principal:
        principal = require_principal(request)
        if principal.kind not in allowed:
            raise forbidden(
                f"{_a(principal.kind)} may not use this endpoint (it is for: {', '.join(sorted(allowed))})"
            )
        return principal

    dependency.__name__ = "require_" + "_or_".join(sorted(allowed))
    return dependency


__all__ = [
    "ERRORS_AUTH",
    "ApiError",
    "ErrorBody",
    "FieldError",
    "Services",
    "ValidationErrorBody",
    "forbidden",
    "get_platform",
    "get_services",
    "invalid",
    "not_found",
    "optional_principal",
    "require_principal",
    "require_role",
    "unauthorized",
]


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word
