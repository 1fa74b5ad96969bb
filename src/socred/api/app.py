"""The ASGI application: ``socred serve`` runs ``create_app`` (a uvicorn factory).

One app holds one :class:`Platform` (``app.state.socred.platform``), the check
service with its in-memory index and worker thread, and a Prometheus registry.
Errors have one shape (``{"error": ..., "detail": ...}``; 422 lists the fields and
reasons, never the input), no request input yields a 5xx, and every request is
logged as one JSON line with its route template (never the raw path or query,
which may hold identifiers).
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import random
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

import socred
from socred.api.auth import ApiError
from socred.api.deps import Services
from socred.api.routers import admin, check, ledger, me, ops, receipts, records, subjects
from socred.api.routers.ops import Metrics
from socred.api.settings import Settings
from socred.domain.catalog import CatalogError
from socred.domain.ids import IdentifierError, mask_subject_id
from socred.domain.scoring import ScoringError
from socred.service.auth import Principal
from socred.service.checks import CheckService
from socred.service.platform import NotFound, Platform, UsageError
from socred.store.db import normalise_url, open_engine

log = logging.getLogger("socred.api")
access = logging.getLogger("socred.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DESCRIPTION = """\
The HTTP API of **socred**, an accountable credit-information platform (contract: http.md).

* **Providers** submit operations on their records: `POST /api/v1/records`.
* **Relying parties** ask restriction checks for the activities they are registered for:
  `POST /api/v1/check`, `POST /api/v1/check/batch`. Every answer is a receipt.
* **Subjects** read their own full report and access log: `/api/v1/me/...`.
* **Reviewers, administrators, auditors** read reports, the ledger, access logs and receipts
  (stating why: each read is logged in the subject's access log) and manage keys.
* **Anyone** reads the signed ledger checkpoint: `GET /api/v1/ledger/checkpoint`.

Authenticate with `Authorization: Bearer <API key or session token>`. A missing or unknown
credential gets 401, a valid one without the right 403, malformed input 422 with the field
and the reason.
"""

TAGS = [
    {"name": "records", "description": "Providers submit operations (records.md)."},
    {"name": "checks", "description": "Relying parties ask whether a subject is restricted."},
    {
        "name": "receipts",
        "description": "Every check answer, as given, and its reproduction from the ledger.",
    },
    {"name": "me", "description": "The caller's own view."},
    {"name": "subjects", "description": "Staff reads of a subject's full data (logged)."},
    {"name": "ledger", "description": "The signed checkpoint; entries and verification."},
    {"name": "administration", "description": "Relying parties, providers and their keys."},
    {"name": "operations", "description": "Health, readiness and metrics."},
    {
        "name": "federation",
        "description": "Nodes: lists published downstream, upstream status, name conflicts.",
    },
]

_RESIDENT = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{10}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
# request ids need no cryptographic strength; os.urandom would release the GIL on the event loop's hot path
_RANDOM = random.Random()
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def scrub(value: Any) -> Any:
    """Mask anything shaped like a resident number (first 4 and last 4 kept) in an error body."""
    if isinstance(value, str):
        return _RESIDENT.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), value)
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------ logging


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(settings: Settings) -> None:
    """socred's loggers to stderr (JSON or text); uvicorn's in the same format; uvicorn's access log off
    (it prints raw paths and queries, which may hold identifiers: socred logs route templates instead)."""
    level = (
        settings.log_level.upper() if settings.log_level.upper() in logging.getLevelNamesMapping() else "INFO"
    )
    formatter: logging.Formatter = (
        JsonFormatter()
        if settings.log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger("socred")
    for h in list(root.handlers):
        if getattr(h, "_socred", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler._socred = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        for h in logging.getLogger(name).handlers:
            h.setFormatter(formatter)
    logging.getLogger("uvicorn.access").disabled = True


# ------------------------------------------------------------------ middleware


# Answered checks are logged as receipts (every one, in the database, before the answer): no log line too.
_RECEIPTED = frozenset({"/api/v1/check", "/api/v1/check/batch"})


class Observability:
    """Request id, body-size limit, Prometheus metrics and one access-log line per request (pure ASGI)."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        settings = self.services.settings
        headers = dict(scope.get("headers") or [])
        rid_raw = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = rid_raw if _REQUEST_ID.match(rid_raw) else f"{_RANDOM.getrandbits(64):016x}"
        status = 500
        sent = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
                sent = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        length = headers.get(b"content-length")
        try:
            too_big = length is not None and int(length) > settings.max_body_bytes
        except ValueError:
            too_big = True
        try:
            if too_big:
                body = json.dumps(
                    {
                        "error": "too_large",
                        "detail": f"the request body is larger than {settings.max_body_bytes} bytes",
                    }
                )
                await JSONResponse(json.loads(body), status_code=413)(scope, receive, send_wrapper)
            else:
                await self.app(scope, _limited(receive, settings.max_body_bytes), send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            template = self._template(scope) if not too_big else "oversized"
            method = scope.get("method", "")
            m: Metrics = self.services.metrics
            m.requests.labels(method, template, str(status)).inc()
            m.latency.labels(method, template).observe(elapsed)
            if settings.access_log and not (status == 200 and template in _RECEIPTED):
                state = scope.get("state") or {}
                principal = state.get("principal")
                who = (
                    _caller(principal)
                    if isinstance(principal, Principal)
                    else (f"party:{state['party']}" if state.get("party") else None)
                )
                access.info(
                    "%s %s %s",
                    method,
                    template,
                    status,
                    extra={
                        "fields": {
                            "event": "request",
                            "method": method,
                            "route": template,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 3),
                            "request_id": rid,
                            "caller": who,
                            "client": (scope.get("client") or ("", 0))[0],
                            "completed": sent,
                        }
                    },
                )

    def _template(self, scope: Scope) -> str:
        """The matched route's template (never the raw path, which may hold an identifier)."""
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        app = scope.get("app")
        for r in getattr(app, "routes", ()):
            try:
                match, _ = r.matches(scope)
            except Exception:
                continue
            if match is Match.FULL and isinstance(getattr(r, "path", None), str):
                return str(r.path)
        return "unmatched"


def _caller(p: Principal) -> str:
    """Who called, for the logs: a subject's identifier masked."""
    return f"subject:{mask_subject_id(p.id)}" if p.kind == "subject" else p.describe()


class BodyTooLarge(Exception):
    pass


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(f"the request body is larger than {limit} bytes")
        return message

    return wrapped


# ------------------------------------------------------------------ errors


def _field_name(loc: list[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or (str(loc[0]) if loc else "body")


def _error(status: int, error: str, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": scrub(detail)}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return _error(exc.status, exc.error, exc.detail, exc.headers)

    async def validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        detail = []
        for err in exc.errors()[:100]:
            loc = [x if isinstance(x, str | int) else str(x) for x in err.get("loc", ())]
            msg = str(err.get("msg", "invalid value"))
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, ") :]
            field = _field_name(loc)
            if err.get("type") == "json_invalid":
                pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
                msg = "the body is not valid JSON" + (f" (at character {pos})" if pos is not None else "")
                field, loc = "body", ["body"]
            detail.append({"field": field, "reason": msg, "loc": loc, "type": str(err.get("type", ""))})
        return _error(422, "invalid_request", detail)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if (
            exc.status_code == 400
        ):  # FastAPI could not read the body (not UTF-8, too deep, cut off): malformed input
            return _error(
                422,
                "invalid_request",
                [
                    {
                        "field": "body",
                        "reason": "the body cannot be read as JSON (UTF-8 text, nesting within limits)",
                        "loc": ["body"],
                        "type": "json_invalid",
                    }
                ],
            )
        codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        return _error(
            exc.status_code,
            codes.get(exc.status_code, "error"),
            str(exc.detail),
            dict(exc.headers) if exc.headers else None,
        )

    async def domain_error(_: Request, exc: Exception) -> Response:
        if isinstance(exc, NotFound):
            return _error(404, "not_found", str(exc))
        if isinstance(exc, IdentifierError):
            return _error(
                422,
                "invalid_request",
                [{"field": "subject_id", "reason": exc.reason, "loc": ["subject_id"], "type": "value_error"}],
            )
        return _error(
            422,
            "invalid_request",
            [{"field": "request", "reason": str(exc), "loc": [], "type": "value_error"}],
        )

    async def database_error(_: Request, exc: Exception) -> Response:
        log.error("database error: %s", str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
        return _error(
            503,
            "unavailable",
            "the database is not available or its schema is not current (run 'socred init'); retry later",
        )

    async def too_large(_: Request, exc: Exception) -> Response:
        return _error(413, "too_large", str(exc))

    async def unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unexpected error", exc_info=exc)
        return _error(500, "internal", "an unexpected error occurred; it has been logged")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for cls in (UsageError, IdentifierError, ScoringError, CatalogError):
        app.add_exception_handler(cls, domain_error)
    app.add_exception_handler(SQLAlchemyError, database_error)
    app.add_exception_handler(BodyTooLarge, too_large)
    app.add_exception_handler(Exception, unexpected)


# ------------------------------------------------------------------ OpenAPI


def install_openapi(app: FastAPI) -> None:
    """One error schema for every 422 (the API's, not FastAPI's), and the bearer scheme."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes, tags=TAGS
        )
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        text = json.dumps(schema).replace(
            '"#/components/schemas/HTTPValidationError"', '"#/components/schemas/ValidationErrorBody"'
        )
        schema = json.loads(text)
        schemas = schema["components"]["schemas"]
        schemas.pop("HTTPValidationError", None)
        if "ValidationError" in schemas and '"#/components/schemas/ValidationError"' not in json.dumps(
            {k: v for k, v in schemas.items() if k != "ValidationError"}
        ) + json.dumps(schema["paths"]):
            schemas.pop("ValidationError", None)
        schema["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A provider or relying-party API key, or a session token.",
            }
        }
        for item in schema.get("paths", {}).values():
            for op in item.values():
                if isinstance(op, dict) and "401" in op.get("responses", {}):
                    op["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# ------------------------------------------------------------------ optional routers


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and module.startswith(e.name):
            return None
        raise


PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>socred</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>socred</h1>
<p>An accountable credit-information platform. The public portal is not installed on this server.</p>
<ul>
<li><a href="/docs">API documentation</a> (<a href="/openapi.json">OpenAPI</a>)</li>
<li><a href="/api/v1/ledger/checkpoint">The signed ledger checkpoint</a></li>
</ul>
</body></html>
"""


def _include_optional_routers(app: FastAPI) -> None:
    public = _optional("socred.api.public")
    if public is not None:
        app.include_router(public.router)
    portal = _optional("socred.portal.routes")
    if portal is not None:
        install = getattr(portal, "install", None)
        if callable(install):
            install(app)
        else:
            app.include_router(portal.router)
            static = Path(portal.__file__).parent.parent / "static"
            if static.is_dir():
                from fastapi.staticfiles import StaticFiles

                app.mount("/static", StaticFiles(directory=static), name="static")
        return

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    async def placeholder() -> HTMLResponse:
        return HTMLResponse(PLACEHOLDER)


# ------------------------------------------------------------------ the factory


def _check_engines(platform: Platform) -> tuple[Engine, Engine, float | None]:
    """Engines of the check service: (reads, group writes, WAL checkpoint period).

    On a SQLite file: reads in WAL snapshots that do not take the write lock, and a writer
    whose commits never checkpoint the WAL (the service checkpoints it in the background);
    elsewhere the platform's engine for both.
    """
    url = platform.engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return platform.engine, platform.engine, None
    text = url.render_as_string(hide_password=False)
    writer = open_engine(text, immediate=True)

    @event.listens_for(writer, "connect")
    def _no_autocheckpoint(dbapi_conn: Any, _rec: Any) -> None:
        dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

    return open_engine(text, immediate=False), writer, 1.0


def _load_verifier(settings: Settings) -> Callable[[str], Principal] | None:
    if not settings.token_verifier:
        return None
    module, _, name = settings.token_verifier.partition(":")
    factory = getattr(importlib.import_module(module), name or "create_verifier")
    verifier: Callable[[str], Principal] = factory(settings)
    return verifier


def create_app(settings: Settings | None = None, platform: Platform | None = None) -> FastAPI:
    """The ASGI app. Settings come from ``SOCRED_*`` unless given; the platform from ``settings.db``."""
    settings = settings or Settings()
    configure_logging(settings)
    owns_platform = platform is None
    if platform is None:
        platform = Platform(normalise_url(settings.db))
    read_engine, write_engine, checkpoint_every = _check_engines(platform)
    metrics = Metrics()
    checks = CheckService(
        platform,
        read_engine,
        on_group=metrics.on_group,
        write_engine=write_engine,
        checkpoint_every=checkpoint_every,
    )
    if settings.check_inline is not None:
        checks.inline = settings.check_inline
    services = Services(
        settings=settings,
        platform=platform,
        checks=checks,
        metrics=metrics,
        verifier=_load_verifier(settings),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.init_db:
            await run_in_threadpool(platform.init)
        checks.start()
        loop = None
        if settings.sync_interval > 0:
            from socred.service.federation import SyncLoop

            loop = SyncLoop(platform, settings.sync_interval)
            loop.start()
        log.info("socred API started", extra={"fields": {"event": "start", "database": _safe_url(platform)}})
        try:
            yield
        finally:
            if loop is not None:
                await run_in_threadpool(loop.stop)
            await run_in_threadpool(checks.stop)
            for engine in {read_engine, write_engine} - {platform.engine}:
                engine.dispose()
            if owns_platform:
                platform.engine.dispose()

    extra: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters and not settings.otel:
        extra["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        **extra,
        title="socred API",
        version=socred.__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url="/docs" if settings.docs else None,
        redoc_url=None,
    )
    app.state.socred = services
    install_error_handlers(app)
    for module in (records, check, receipts, me, subjects, ledger, admin, ops):
        if module is ops and not settings.metrics:
            app.add_api_route("/healthz", ops.healthz, methods=["GET"], tags=["operations"])
            app.add_api_route("/readyz", ops.readyz, methods=["GET"], tags=["operations"])
            continue
        app.include_router(module.router)
    app.include_router(importlib.import_module("socred.api.routers.due_process").router)
    app.include_router(importlib.import_module("socred.api.routers.federation").router)
    _include_optional_routers(app)
    install_openapi(app)
    app.add_middleware(Observability, services=services)
    return app


def _safe_url(platform: Platform) -> str:
    return make_url(platform.engine.url).render_as_string(hide_password=True)
