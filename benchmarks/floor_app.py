"""The floor of the HTTP benchmarks: FastAPI endpoints that do no work, served like socred."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request

app = FastAPI()
ANSWER: dict[str, Any] = {
    "subject_id": "11010519491231002X",
    "activity": "air_travel",
    "at": "2026-11-28",
    "catalog": "national@1",
    "decision": "allowed",
    "measures": [],
    "lists": [],
    "until": None,
}


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/check")
async def check(request: Request) -> dict[str, Any]:
    await request.body()
    return ANSWER


@app.get("/search")
async def search(q: str) -> dict[str, Any]:
    return {"query": q[:1] + "*", "results": [], "page": 1}


@app.post("/check/batch")
async def check_batch(request: Request) -> dict[str, Any]:
    """Parse the body and answer every subject with a constant: JSON in, JSON out, nothing else."""
    body = json.loads(await request.body())
    return {"results": [{"subject_id": s, "decision": "allowed", "until": None} for s in body["subject_ids"]]}
