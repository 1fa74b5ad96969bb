"""The public credit portal: HTML pages over :mod:`socred.service.public`.

Pages (http.md): ``/`` (search), ``/search?q=``, ``/subjects/{id}``, ``/announcements``,
``/scoreboard`` (a large-screen board kept live by server-sent events from
``/scoreboard/stream``) and ``/stats``; assets under ``/static/``.

Chinese by default; ``?lang=en`` (or ``zh``) switches and is remembered in a cookie. Every page is
rendered by Jinja with autoescaping and sent with a Content-Security-Policy that allows scripts,
styles and connections from this origin only (no inline script or style, no CDN: the platform runs
offline). Pages share the public API's per-address rate limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import signal
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from socred.api.public import public_info, retry_after
from socred.portal import charts, i18n
from socred.service import public as pub
from socred.service.public import InvalidInput, PublicInfo
from socred.store.search import MAX_QUERY, normalise_query

__all__ = ["CSP", "router"]

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
_STATIC_NAME = re.compile(r"^[a-z0-9_-]{1,64}\.(css|js|svg)$")
LANG_COOKIE = "lang"

# Server-sent events: how often the ledger head is polled, how long one stream lives (the browser
# reconnects by itself, resuming after the last event id), how often an idle stream says so.
POLL_SECONDS = 1.0
STREAM_SECONDS = 120.0
KEEPALIVE_SECONDS = 15.0

router = APIRouter(include_in_schema=False)

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _asset_version() -> str:
    h = hashlib.sha256()
    for p in sorted(STATIC.glob("*")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:10]


ASSET_VERSION = _asset_version()
_static_cache: dict[str, bytes] = {}


# ------------------------------------------------------------------ rendering


def language(request: Request) -> tuple[str, bool]:
    """The page language and whether it was just chosen (to be remembered in the cookie)."""
    asked = request.query_params.get("lang")
    if asked in i18n.LANGUAGES:
        return asked, request.cookies.get(LANG_COOKIE) != asked
    cookie = request.cookies.get(LANG_COOKIE)
    return (cookie if cookie in i18n.LANGUAGES else i18n.DEFAULT), False


def _switch_url(path: str, keep: Mapping[str, Any], lang: str) -> str:
    other = "en" if lang == "zh" else "zh"
    params = {k: v for k, v in keep.items() if v not in (None, "")}
    params["lang"] = other
    return path + "?" + urlencode(params)


def render(
    request: Request,
    template: str,
    status: int = 200,
    *,
    nav: str = "",
    keep: Mapping[str, Any] | None = None,
    path: str | None = None,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page: ``keep`` are the query parameters the language switch may carry over (never the raw
    query of a search: only its safe echo), ``path`` the page's own path when the request's could
    hold an identifier."""
    lang, chosen = language(request)
    tr = i18n.Translator(lang)
    html = env.get_template(template).render(
        lang=lang,
        html_lang=i18n.HTML_LANG[lang],
        _=tr.gettext,
        tr=tr,
        nav=nav,
        lang_switch=_switch_url(path if path is not None else request.url.path, keep or {}, lang),
        asset_version=ASSET_VERSION,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    for k, v in SECURITY_HEADERS.items():
        response.headers[k] = v
    response.headers["Cache-Control"] = "no-store"
    for k, v in (headers or {}).items():
        response.headers[k] = v
    if chosen:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


def _limited(request: Request) -> HTMLResponse | None:
    wait = retry_after(request)
    if not wait:
        return None
    return render(
        request,
        "error.html",
        429,
        path="/",
        headers={"Retry-After": str(wait)},
        title_key="Too many requests",
        message_key="Too many requests from your address. Please wait {n} seconds and try again.",
        n=wait,
    )


def _invalid(request: Request, e: InvalidInput, path: str = "/", **context: Any) -> HTMLResponse:
    return render(
        request,
        "error.html",
        422,
        path=path,
        title_key="Invalid request",
        message_key=i18n.FIELD_MESSAGES.get(e.field, "The request is not valid."),
        field=e.field,
        **context,
    )


def _info(request: Request) -> PublicInfo:
    return public_info(request)


# ------------------------------------------------------------------ pages


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    if (limited := _limited(request)) is not None:
        return limited
    info = _info(request)
    latest = info.announcements(page=1, per_page=6)
    return render(request, "index.html", nav="home", latest=latest)


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, q: str = "", page: str = "1") -> Response:
    if (limited := _limited(request)) is not None:
        return limited
    info = _info(request)
    if not q.strip():
        return render(request, "search.html", nav="home", result=None, echo="")
    echo = info.echo(q)
    # Links (language switch, pages) may carry the query only when it may be shown back unchanged;
    # otherwise every result is on the one page.
    safe = echo == normalise_query(q)[:MAX_QUERY]
    keep = {"q": echo} if safe else {}
    try:
        number = _page(page) if safe else 1
        result = info.search(q, number, per_page=pub.PER_PAGE if safe else pub.SEARCH_CANDIDATES)
    except InvalidInput as e:
        return _invalid(request, e, path="/search", echo=echo, keep=keep)
    return render(
        request,
        "search.html",
        nav="home",
        result=result,
        echo=echo,
        keep={**keep, "page": number} if safe else keep,
        search_url=lambda n: "/search?" + urlencode({"q": echo, "page": n}),
    )


@router.get("/subjects/{ref}", response_class=HTMLResponse)
def subject_page(request: Request, ref: str) -> Response:
    if (limited := _limited(request)) is not None:
        return limited
    info = _info(request)
    try:
        profile = info.profile(ref)
    except InvalidInput as e:
        return _invalid(request, e)
    if profile is None:
        return render(
            request,
            "error.html",
            404,
            path="/",
            title_key="No public information",
            message_key="There is no public information about this subject. Persons appear only while "
            "the law makes something about them public.",
        )
    history = profile.get("history") or []
    chart = None
    if history:
        tr = i18n.Translator(language(request)[0])
        chart = charts.line(
            [(p["date"], float(p["score"])) for p in history],
            tr.gettext("Score over the last 12 months"),
            tr.gettext("Score at the end of each month and today"),
        )
    return render(
        request,
        "subject.html",
        path="/subjects/" + profile["id"],
        profile=profile,
        history_chart=chart,
    )


@router.get("/announcements", response_class=HTMLResponse)
def announcements_page(
    request: Request,
    page: str = "1",
    region: str = "",
    category: str = "",
) -> Response:
    if (limited := _limited(request)) is not None:
        return limited
    info = _info(request)
    qp = request.query_params
    date_from, date_to = qp.get("from", ""), qp.get("to", "")
    filters = {"region": region.strip(), "category": category.strip(), "from": date_from, "to": date_to}
    categories = info.categories()
    try:
        result = info.announcements(
            page=_page(page),
            region=filters["region"] or None,
            category=filters["category"] or None,
            date_from=pub.parse_day(date_from, "from"),
            date_to=pub.parse_day(date_to, "to"),
        )
    except InvalidInput as e:
        return _invalid(request, e, path="/announcements")
    keep = {**filters, "page": result["page"]}
    base = {k: v for k, v in filters.items() if v}
    return render(
        request,
        "announcements.html",
        nav="announcements",
        keep=keep,
        result=result,
        filters=filters,
        categories=categories,
        regions=i18n.REGION_CHOICES,
        page_url=lambda n: "/announcements?" + urlencode({**base, "page": n}),
    )


@router.get("/scoreboard", response_class=HTMLResponse)
def scoreboard_page(request: Request) -> Response:
    if (limited := _limited(request)) is not None:
        return limited
    board = _info(request).scoreboard(limit=20)
    lang = language(request)[0]
    return render(
        request,
        "scoreboard.html",
        nav="scoreboard",
        board=board,
        stream_url="/scoreboard/stream?" + urlencode({"after": board["seq"], "lang": lang}),
    )


@router.get("/scoreboard/stream")
async def scoreboard_stream(request: Request, after: int = 0) -> Response:
    """Server-sent events: ``violation`` (``data`` = {seq, html}) for each newly published violation,
    ``ping`` while idle. Event ids are ledger positions, so a reconnecting browser resumes exactly."""
    wait = retry_after(request)
    if wait:
        return Response("retry later\n", 429, {"Retry-After": str(wait), **SECURITY_HEADERS})
    last_id = request.headers.get("last-event-id", "")
    start = int(last_id) if last_id.isdigit() else max(0, after)
    info = _info(request)
    tr = i18n.Translator(language(request)[0])
    item_template = env.get_template("_board_item.html")

    async def events() -> AsyncIterator[str]:
        seen = start
        head = -1
        opened = time.monotonic()
        quiet_since = opened
        yield f"retry: 2000\nid: {seen}\nevent: ping\ndata: {{}}\n\n"
        while time.monotonic() - opened < STREAM_SECONDS:
            if await request.is_disconnected() or _server_exiting():
                return
            now_head = await run_in_threadpool(info.head_seq)
            if now_head != head:
                head = now_head
                board = await run_in_threadpool(info.scoreboard, seen, 50)
                for item in reversed(board["items"]):
                    html = item_template.render(item=item, _=tr.gettext, tr=tr, fresh=True)
                    data = json.dumps({"seq": item["seq"], "html": html}, ensure_ascii=False)
                    yield f"id: {item['seq']}\nevent: violation\ndata: {data}\n\n"
                    quiet_since = time.monotonic()
                seen = max(seen, board["seq"], *(i["seq"] for i in board["items"]))
            if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                yield f"id: {seen}\nevent: ping\ndata: {{}}\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={**SECURITY_HEADERS, "Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/stats", response_class=HTMLResponse)
def stats_page(request: Request) -> Response:
    if (limited := _limited(request)) is not None:
        return limited
    stats = _info(request).statistics()
    tr = i18n.Translator(language(request)[0])
    months = stats["months"]
    by_provider = charts.columns(
        months,
        [(p["name"], [float(n) for n in p["counts"]]) for p in stats["records_by_provider"]],
        tr.gettext("Records by provider and month"),
        tr.gettext("Records received in each of the last 12 months, stacked by provider"),
    )
    grades = stats["grades"]
    by_grade = charts.bars(
        [
            (
                g,
                [
                    float(stats["subjects_by_grade"]["person"][g]),
                    float(stats["subjects_by_grade"]["organization"][g]),
                ],
            )
            for g in grades
        ],
        [tr.gettext("Persons"), tr.gettext("Organizations")],
        tr.gettext("Subjects per grade"),
        tr.gettext("How many persons and organizations hold each grade today"),
    )
    lists = charts.bars(
        [
            (tr.list_title(e["code"], e["title"]), [float(e["person"]), float(e["organization"])])
            for e in stats["lists"]
        ],
        [tr.gettext("Persons"), tr.gettext("Organizations")],
        tr.gettext("List sizes"),
        tr.gettext("How many subjects are on each list today"),
    )
    checks = None
    if stats["checks"]:
        checks = charts.bars(
            [
                (tr.activity(c["activity"]), [float(c["allowed"]), float(c["restricted"])])
                for c in stats["checks"]
            ],
            [tr.gettext("Allowed"), tr.gettext("Restricted")],
            tr.gettext("Checks answered by activity"),
            tr.gettext("Relying parties' checks, by activity and decision"),
        )
    return render(
        request,
        "stats.html",
        nav="stats",
        stats=stats,
        chart_providers=by_provider,
        chart_grades=by_grade,
        chart_lists=lists,
        chart_checks=checks,
        provider_rows=[[p["name"], *p["counts"]] for p in stats["records_by_provider"]],
        grade_rows=[
            [g, stats["subjects_by_grade"]["person"][g], stats["subjects_by_grade"]["organization"][g]]
            for g in grades
        ],
        list_rows=[
            [tr.list_title(e["code"], e["title"]), e["person"], e["organization"]] for e in stats["lists"]
        ],
        check_rows=[
            [tr.activity(c["activity"]), c["allowed"], c["restricted"]] for c in stats["checks"] or []
        ],
        node_rows=_node_rows(request, tr),
    )


def _node_rows(request: Request, tr: i18n.Translator) -> list[list[Any]]:
    """Upstream nodes for the statistics page (federation; empty on a node that pulls from none)."""
    from sqlalchemy.exc import SQLAlchemyError

    from socred.service import federation

    try:
        nodes = federation.list_nodes(request.app.state.socred.platform)
    except (SQLAlchemyError, ValueError):
        return []
    rows = []
    for n in nodes:
        st = n.status()
        rows.append(
            [
                n.code,
                tr.gettext(n.pull),
                st["verified_seq"],
                st["lag_entries"],
                f"{st['lag_seconds']:.0f}",
                st["errors"],
                (st["last_error"] or "—")[:120],
            ]
        )
    return rows


@router.get("/static/{name}")
def static(name: str) -> Response:
    if not _STATIC_NAME.match(name):
        return Response("not found\n", 404, {"X-Content-Type-Options": "nosniff"})
    body = _static_cache.get(name)
    if body is None:
        path = STATIC / name
        if not path.is_file():
            return Response("not found\n", 404, {"X-Content-Type-Options": "nosniff"})
        body = path.read_bytes()
        _static_cache[name] = body
    return Response(
        body,
        media_type=STATIC_TYPES[Path(name).suffix],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/favicon.ico")
def favicon() -> Response:
    return static("favicon.svg")


def _server_exiting() -> bool:
    """Whether the uvicorn server of this process is shutting down.

    uvicorn waits for open responses before it stops, and an event stream never ends by itself; its
    signal handler is a method of the server, whose ``should_exit`` says a shutdown was asked for.
    """
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return bool(getattr(server, "should_exit", False))


def _page(raw: str) -> int:
    if not raw.strip().isdigit():
        raise InvalidInput("page", "must be a whole number from 1")
    return int(raw)


# Signed-in pages (own report, review queues): their own module, which uses render() above.
from socred.portal.account import router as _account_router  # noqa: E402

router.include_router(_account_router)
