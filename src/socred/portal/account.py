"""Signed-in portal pages: a subject's own report, and the reviewers' and administrators' queues.

Sign-in is the stand-in for a real identity provider: the user pastes a session token (``socred
tokens issue``) on ``/signin``; it is kept in an HttpOnly, SameSite=Strict cookie (Secure over
HTTPS) and checked on every page exactly like the API's bearer tokens (expiry, revocation). Only
session tokens (subject, reviewer, administrator, auditor) sign in; API keys do not.

* ``/me`` — the subject's own report (every record with its due-process facts, score, lists and
  what would lift each restriction, objections, repairs, notices, access log) and ``/me/report.pdf``.
* ``/review`` — open objections and pending repair applications by due date, overdue flagged, and
  (administrators, auditors) pending manual list actions. ``/review/subject`` shows a subject's
  full report for a stated reason; the read goes to the subject's access log like the API's.

The pages use the portal's templates, CSP and security headers; there is no script on them.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from socred.api.auth import ApiError
from socred.api.deps import get_services
from socred.api.routers.me import my_report
from socred.api.routers.subjects import subject_report
from socred.domain.ids import IdentifierError, SubjectId, mask_subject_id, parse_subject_id
from socred.ledger.chain import utc_timestamp
from socred.portal.routes import SECURITY_HEADERS, _limited, render
from socred.service import access_log, report_pdf
from socred.service.auth import Principal, TokenError
from socred.service.due_process import DueProcess
from socred.service.list_actions import ListActions

__all__ = ["COOKIE", "router"]

COOKIE = "socred_session"
SESSION_KINDS = frozenset({"subject", "reviewer", "admin", "auditor"})
STAFF = frozenset({"reviewer", "admin", "auditor"})
MAX_TOKEN = 4096
MAX_REASON = 500

router: APIRouter = APIRouter(include_in_schema=False)


def _principal(request: Request) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token or len(token) > MAX_TOKEN:
        return None
    try:
        principal = get_services(request).authenticator().authenticate(token)
    except (TokenError, ApiError):
        return None
    return principal if principal.kind in SESSION_KINDS else None


def _cross_site(request: Request) -> bool:
    """A form POST sent by another site (its Origin names another host): refused, so that no other
    site can sign a browser in with its own token or make a signed-in reviewer read a report."""
    # Browsers say where a request comes from in Sec-Fetch-Site; the pages' no-referrer policy makes
    # Chromium send "Origin: null" for same-origin form posts, so a null Origin proves nothing.
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return False
    return urlparse(origin).netloc.lower() != (request.headers.get("host") or "").lower()


def _to_signin() -> Response:
    return RedirectResponse("/signin", status_code=303, headers=SECURITY_HEADERS)


def _forbidden(request: Request) -> Response:
    return render(
        request,
        "error.html",
        403,
        path="/",
        title_key="Not allowed",
        message_key="This page is not for the account you signed in with.",
    )


@router.get("/signin")
def signin_page(request: Request) -> Response:
    if (limited := _limited(request)) is not None:
        return limited
    return render(request, "signin.html", nav="signin", error=None, principal=_principal(request))


@router.post("/signin")
async def signin(request: Request) -> Response:
    if (limited := _limited(request)) is not None:
        return limited
    if _cross_site(request):
        return _forbidden(request)
    try:
        form = await request.form(max_files=0, max_fields=5, max_part_size=MAX_TOKEN + 100)
        raw = form.get("token")
    except Exception:  # malformed form body: the same answer as a wrong token
        raw = None
    token = raw.strip() if isinstance(raw, str) else ""
    principal: Principal | None = None
    if token and len(token) <= MAX_TOKEN:
        try:
            principal = await run_in_threadpool(get_services(request).authenticator().authenticate, token)
        except (TokenError, ApiError):
            principal = None
    if principal is None or principal.kind not in SESSION_KINDS:
        return render(request, "signin.html", 401, nav="signin", error="invalid", principal=None)
    target = "/me" if principal.kind == "subject" else "/review"
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    max_age = None
    if principal.expires_at:
        max_age = max(0, int(principal.expires_at - time.time()))
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/signout")
def signout(request: Request) -> Response:
    if _cross_site(request):
        return _forbidden(request)
    response = RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/me")
def my_page(request: Request) -> Response:
    principal = _principal(request)
    if principal is None:
        return _to_signin()
    if principal.kind != "subject":
        return _forbidden(request)
    report = my_report(request, principal)
    return render(
        request,
        "me.html",
        nav="me",
        principal=principal,
        report=report,
        masked_id=mask_subject_id(principal.id),
    )


@router.get("/me/report.pdf")
def my_pdf(request: Request) -> Response:
    principal = _principal(request)
    if principal is None:
        return _to_signin()
    if principal.kind != "subject":
        return _forbidden(request)
    body = report_pdf.render(my_report(request, principal), utc_timestamp())
    return Response(
        body,
        media_type="application/pdf",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": 'attachment; filename="socred-report.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/review")
def review_page(request: Request) -> Response:
    principal = _principal(request)
    if principal is None:
        return _to_signin()
    if principal.kind not in STAFF:
        return _forbidden(request)
    platform = get_services(request).platform
    dp = DueProcess(platform)
    objections = dp.list_objections(status="open", limit=500) if principal.kind != "auditor" else []
    repairs = (
        [r for r in dp.list_repairs(limit=1000) if r["status"] in ("applied", "confirmed")][:500]
        if principal.kind != "auditor"
        else []
    )
    actions = (
        ListActions(platform).find("pending", None, 500) if principal.kind in ("admin", "auditor") else []
    )
    return render(
        request,
        "review.html",
        nav="review",
        principal=principal,
        objections=objections,
        repairs=repairs,
        actions=actions,
        overdue_objections=sum(1 for o in objections if o["overdue"]),
        overdue_repairs=sum(1 for r in repairs if r["overdue"]),
    )


@router.get("/review/subject")
def review_subject_form(request: Request) -> Response:
    principal = _principal(request)
    if principal is None:
        return _to_signin()
    if principal.kind not in STAFF:
        return _forbidden(request)
    return render(
        request, "review_subject.html", nav="review", principal=principal, report=None, problem=None
    )


@router.post("/review/subject")
async def review_subject(request: Request) -> Response:
    """A subject's full report for staff, for a stated reason (logged in the subject's access log).

    A POST form, so that neither the identifier nor the reason lands in a URL (or a log of URLs).
    """
    principal = await run_in_threadpool(_principal, request)
    if principal is None:
        return _to_signin()
    if principal.kind not in STAFF or _cross_site(request):
        return _forbidden(request)
    try:
        form = await request.form(max_files=0, max_fields=5)
        raw_id, raw_reason = form.get("subject_id"), form.get("reason")
    except Exception:  # a malformed body: treated as an empty form
        raw_id = raw_reason = None
    subject_id = raw_id.strip()[:64] if isinstance(raw_id, str) else ""
    reason = raw_reason.strip() if isinstance(raw_reason, str) else ""
    problem: str | None = None
    sid = None
    try:
        sid = parse_subject_id(subject_id)
    except IdentifierError:
        problem = "subject_id"
    if problem is None and (not reason or len(reason) > MAX_REASON or "\x00" in reason):
        problem = "reason"
    if sid is None or problem is not None:
        return render(
            request,
            "review_subject.html",
            422,
            nav="review",
            principal=principal,
            report=None,
            problem=problem,
        )
    report = await run_in_threadpool(_staff_read, request, principal, sid, reason)
    return render(
        request,
        "review_subject.html",
        nav="review",
        principal=principal,
        report=report,
        reason=reason,
        problem=None,
    )


def _staff_read(request: Request, principal: Principal, sid: SubjectId, reason: str) -> dict[str, Any]:
    platform = get_services(request).platform
    access_log.record(
        platform.engine, [access_log.Access(sid.value, principal.kind, principal.id, "report", reason)]
    )
    return subject_report(platform, sid)
