"""Reading credentials off a request, and the API's error exception.

A credential is sent as ``Authorization: Bearer <credential>``: a provider key
(``sp_…``), a relying-party key (``rp_…``) or a session token (a JWT). Anything
else in the header counts as no credential (401).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

MAX_CREDENTIAL = 4096


class ApiError(Exception):
    """An answer in the API's error format: ``{"error": code, "detail": ...}``."""

    def __init__(self, status: int, error: str, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(detail))
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers


def unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, {"WWW-Authenticate": 'Bearer realm="socred"'})


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "forbidden", detail)


def not_found(detail: str) -> ApiError:
    return ApiError(404, "not_found", detail)


def invalid(field_name: str, reason: str, loc: list[str | int] | None = None) -> ApiError:
    """A 422 naming the field and the reason."""
    return ApiError(
        422,
        "invalid_request",
        [{"field": field_name, "reason": reason, "loc": loc or ["body", field_name], "type": "value_error"}],
    )


def bearer_credential(conn: HTTPConnection) -> str | None:
    """The bearer credential, or None when the header is absent or not a bearer."""
    header = conn.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > MAX_CREDENTIAL:
        return None
    return value
