"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from socred.api.deps import get_services

router = APIRouter(tags=["operations"])

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The app's Prometheus metrics, in a registry of its own (one per app, per process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "socred_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "socred_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.checks = Counter(
            "socred_checks",
            "Check answers given to relying parties, by decision.",
            ["activity", "decision"],
            registry=r,
        )
        self.check_groups = Histogram(
            "socred_check_group_subjects",
            "Subjects answered per check group commit.",
            buckets=(1, 2, 5, 10, 50, 100, 1000, 10000, 20000),
            registry=r,
        )
        self.check_group_seconds = Histogram(
            "socred_check_group_seconds",
            "Time to answer and log a check group.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ingested = Counter(
            "socred_ingested_operations",
            "Operations received over HTTP, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.fed_lag_entries = Gauge(
            "socred_federation_lag_entries",
            "Entries an upstream node holds that are not applied here.",
            ["node"],
            registry=r,
        )
        self.fed_lag_seconds = Gauge(
            "socred_federation_lag_seconds",
            "Age of the oldest upstream entry not applied here.",
            ["node"],
            registry=r,
        )
        self.fed_verified = Gauge(
            "socred_federation_verified_seq",
            "Last upstream entry verified and applied.",
            ["node"],
            registry=r,
        )
        self.fed_errors = Gauge(
            "socred_federation_errors",
            "Syncs refused or failed, per upstream node (since registration).",
            ["node"],
            registry=r,
        )
        self.ledger_head = Gauge(
            "socred_ledger_head_seq", "Entries on the ledger (its head seq) at the last scrape.", registry=r
        )

    def on_group(self, subjects: int, seconds: float) -> None:
        self.check_groups.observe(subjects)
        self.check_group_seconds.observe(seconds)


class Health(BaseModel):
    status: str

    model_config = {"json_schema_extra": {"examples": [{"status": "ok"}]}}


class Ready(BaseModel):
    status: str
    checks: dict[str, Any]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "status": "ready",
                    "checks": {"database": "ok", "schema": "ok", "index": {"ledger_size": 42, "records": 40}},
                }
            ]
        }
    }


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Ready,
    summary="Readiness: database reachable, schema current, index loaded",
    responses={503: {"model": Ready, "description": "Not ready; the checks say why."}},
)
def readyz(request: Request) -> Response:
    s = get_services(request)
    checks: dict[str, Any] = {}
    ok = True
    try:
        tables = set(inspect(s.platform.engine).get_table_names())
        checks["database"] = "ok"
        missing = sorted(
            {"ledger_blocks", "records", "parties", "receipts", "access_log", "keystore"} - tables
        )
        if missing:
            ok = False
            checks["schema"] = f"missing tables {', '.join(missing)}: run 'socred init'"
        else:
            checks["schema"] = "ok"
    except SQLAlchemyError as e:
        ok = False
        checks["database"] = f"unreachable ({e.__class__.__name__})"
    if ok:
        try:  # the check service keeps nothing but the parsed catalogs: reading them is its readiness
            s.checks.warm()
            checks["catalogs"] = len(s.checks.catalogs.versions)
        except SQLAlchemyError as e:
            ok = False
            checks["catalogs"] = f"not read ({e.__class__.__name__})"
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    response_class=Response,
)
def metrics(request: Request) -> Response:
    s = get_services(request)
    m: Metrics = s.metrics
    with contextlib.suppress(SQLAlchemyError):
        m.ledger_head.set(s.platform.head()[0])
    try:
        from socred.service import federation

        for n in federation.list_nodes(s.platform):
            st = n.status()
            m.fed_lag_entries.labels(n.code).set(st["lag_entries"])
            m.fed_lag_seconds.labels(n.code).set(st["lag_seconds"])
            m.fed_verified.labels(n.code).set(n.verified_seq)
            m.fed_errors.labels(n.code).set(n.errors)
    except (SQLAlchemyError, ValueError):  # metrics must answer even when the database does not
        pass
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
