"""The public JSON API: search, public profiles, announcements, the live board and statistics.

No credential is needed; every answer comes masked from :mod:`socred.service.public`. Each
client address has a token bucket (``SOCRED_PUBLIC_RATE``, default ``6000/minute``: a bucket
of 6000 requests refilled at 100 a second; ``off`` disables it), shared with the portal's pages;
an empty bucket answers 429 with ``Retry-After``. Behind a proxy listed in
``SOCRED_TRUSTED_PROXIES`` the client is the last untrusted address of ``X-Forwarded-For``.
Malformed input is a 422 naming the field; the input itself is never repeated.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from socred.api.auth import ApiError, invalid, not_found
from socred.service.public import MAX_PAGE, InvalidInput, PublicInfo, parse_day

log = logging.getLogger("socred.public")

DEFAULT_RATE = "6000/minute"
_PERIODS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/\s*([a-z]+))?\s*$")
MAX_CLIENTS = 100_000

router = APIRouter(tags=["public"])


# ------------------------------------------------------------------ rate limiting


def parse_rate(text: str) -> tuple[float, float] | None:
    """``"N/second|minute|hour"`` as (bucket size, tokens per second); None for ``off`` / ``0``."""
    value = text.strip().lower()
    if value in ("", "off", "none", "unlimited", "0"):
        return None
    m = _RATE.match(value)
    if m is None or (m.group(2) or "second") not in _PERIODS:
        raise ValueError(f"rate {text!r} is not N/second, N/minute or N/hour")
    n = int(m.group(1))
    if n == 0:
        return None
    return float(n), n / _PERIODS[m.group(2) or "second"]


class RateLimiter:
    """A token bucket per client address, in memory (one per process)."""

    def __init__(self, capacity: float, per_second: float) -> None:
        self.capacity = capacity
        self.per_second = per_second
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """Spend one token; returns 0 when allowed, else the seconds until a token is back."""
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, t))
            tokens = min(self.capacity, tokens + (t - last) * self.per_second)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, t)
                if len(self._buckets) > MAX_CLIENTS:
                    self._forget_idle(t)
                return 0.0
            self._buckets[client] = (tokens, t)
            return (1.0 - tokens) / self.per_second

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets that have refilled completely (they behave as new ones)."""
        full = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.per_second >= self.capacity
        ]
        for k in full:
            del self._buckets[k]


def _limiter(request: Request) -> RateLimiter | None:
    state = request.app.state
    if not hasattr(state, "socred_public_limiter"):
        raw = os.environ.get("SOCRED_PUBLIC_RATE", DEFAULT_RATE)
        try:
            rate = parse_rate(raw)
        except ValueError as e:
            log.warning("%s; using %s", e, DEFAULT_RATE)
            rate = parse_rate(DEFAULT_RATE)
        state.socred_public_limiter = None if rate is None else RateLimiter(*rate)
    limiter: RateLimiter | None = state.socred_public_limiter
    return limiter


def client_address(request: Request) -> str:
    """The caller's address; behind a trusted proxy, the last untrusted X-Forwarded-For hop."""
    peer = request.client.host if request.client else "unknown"
    services = getattr(request.app.state, "socred", None)
    trusted_raw = getattr(getattr(services, "settings", None), "trusted_proxies", "") or ""
    trusted = {p.strip() for p in trusted_raw.split(",") if p.strip()}
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return peer


def retry_after(request: Request) -> int:
    """0 when the caller may proceed (a token is spent), else the whole seconds to wait."""
    limiter = _limiter(request)
    if limiter is None:
        return 0
    wait = limiter.take(client_address(request))
    return 0 if wait <= 0 else max(1, math.ceil(wait))


async def rate_limited(request: Request) -> None:
    wait = retry_after(request)
    if wait:
        raise ApiError(
            429,
            "rate_limited",
            f"too many requests from this address; retry in {wait} s",
            {"Retry-After": str(wait)},
        )


# ------------------------------------------------------------------ the service


def public_info(request: Request) -> PublicInfo:
    """The app's :class:`PublicInfo`, created on first use over the app's platform and read engine."""
    state = request.app.state
    info: PublicInfo | None = getattr(state, "socred_public", None)
    if info is None:
        services = getattr(state, "socred", None)
        if services is not None:
            platform = services.platform
            read_engine = getattr(getattr(services, "checks", None), "read_engine", None)
        else:  # an app without the API's services (a bare app around these routers)
            platform = state.platform
            read_engine = None
        info = PublicInfo(platform, read_engine)
        state.socred_public = info
        info.warm()
    return info


def _invalid(e: InvalidInput) -> ApiError:
    return invalid(e.field, e.reason, ["query", e.field] if e.field != "subject_id" else ["path", e.field])


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except InvalidInput as e:
        raise _invalid(e) from None


NO_STORE = "no-store"
SHORT = "public, max-age=15"


# ------------------------------------------------------------------ endpoints


@router.get(
    "/api/v1/public/search",
    summary="Search subjects by name, credit code or resident number (masked answers)",
    dependencies=[Depends(rate_limited)],
)
async def search(
    response: Response,
    info: PublicInfo = Depends(public_info),
    q: str = Query(
        ...,
        max_length=200,
        description="A name (partial; a typo is tolerated), a unified social credit code or a resident "
        "identity number. The query is never echoed as typed: `query` is its masked form.",
    ),
    page: int = Query(1, ge=1, le=MAX_PAGE),
) -> dict[str, Any]:
    response.headers["Cache-Control"] = NO_STORE
    result: dict[str, Any] = await _call(info.search, q, page)
    return result


@router.get(
    "/api/v1/public/subjects/{subject_id}",
    summary="The public profile of a subject",
    description="`subject_id` is a credit code, a resident number or a person's public reference (`id` "
    "in search results). Only public information, masked; 404 when there is none.",
    dependencies=[Depends(rate_limited)],
)
async def subject(
    response: Response,
    info: PublicInfo = Depends(public_info),
    subject_id: str = Path(..., max_length=64),
) -> dict[str, Any]:
    profile: dict[str, Any] | None = await _call(info.profile, subject_id)
    if profile is None:
        raise not_found("there is no public information about this subject")
    response.headers["Cache-Control"] = NO_STORE
    return profile


@router.get(
    "/api/v1/public/announcements",
    summary="Published violations, newest first",
    dependencies=[Depends(rate_limited)],
)
async def announcements(
    response: Response,
    info: PublicInfo = Depends(public_info),
    page: int = Query(1, ge=1, le=MAX_PAGE),
    region: str | None = Query(None, max_length=6, description="2, 4 or 6 digits of a division code."),
    category: str | None = Query(None, max_length=64, description="A category code."),
    date_from: str | None = Query(None, alias="from", description="Earliest date, YYYY-MM-DD."),
    date_to: str | None = Query(None, alias="to", description="Latest date, YYYY-MM-DD."),
) -> dict[str, Any]:
    try:
        start, end = parse_day(date_from, "from"), parse_day(date_to, "to")
    except InvalidInput as e:
        raise _invalid(e) from None
    result: dict[str, Any] = await _call(info.announcements, page, region, category, start, end)
    response.headers["Cache-Control"] = SHORT
    return result


@router.get(
    "/api/v1/public/scoreboard",
    summary="The newest published violations by arrival (the live board)",
    dependencies=[Depends(rate_limited)],
)
async def scoreboard(
    response: Response,
    info: PublicInfo = Depends(public_info),
    after: int = Query(0, ge=0, description="Only entries after this ledger position."),
    limit: int = Query(30, ge=1, le=100),
) -> dict[str, Any]:
    result: dict[str, Any] = await _call(info.scoreboard, after, limit)
    response.headers["Cache-Control"] = NO_STORE
    return result


@router.get(
    "/api/v1/public/stats",
    summary="Aggregate statistics (no subject is named)",
    dependencies=[Depends(rate_limited)],
)
async def stats(response: Response, info: PublicInfo = Depends(public_info)) -> dict[str, Any]:
    result: dict[str, Any] = await _call(info.statistics)
    response.headers["Cache-Control"] = SHORT
    return result
