"""End to end over real HTTP: `socred serve` (uvicorn) in a subprocess on a free loopback port."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import SECRET, prepare
from tests.helpers import PERSON, PERSON2, submit


@dataclass
class Server:
    base: str
    keys: dict[str, str]
    proc: subprocess.Popen[str]
    log: Path

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    keys = prepare(db_url)
    port = free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "SOCRED_TOKEN_SECRET": SECRET, "SOCRED_LOG_FORMAT": "json"}
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "socred",
                "--db",
                db_url,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=err,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Server(base, keys, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_end_to_end(server: Server) -> None:
    with httpx.Client(base_url=server.base, timeout=10) as c:
        ops = [
            submit("e1", category="DISHONEST_JUDGMENT_DEBTOR"),
            submit("e2", subject_id=PERSON2),
            {"bad": 1},
        ]
        r = c.post("/api/v1/records", json={"operations": ops}, headers=server.h("provider"))
        assert r.status_code == 200 and (r.json()["accepted"], r.json()["rejected"]) == (2, 1)
        assert r.json()["errors"][0]["line"] == 3
        body = {"subject_id": PERSON, "activity": "air_travel", "at": "2026-06-01"}
        r = c.post("/api/v1/check", json=body, headers=server.h("party"))
        assert r.status_code == 200 and r.json()["decision"] == "restricted"
        c.post(
            "/api/v1/records",
            json={"operations": [{"op": "retract", "record_id": "e1", "reason": "error"}]},
            headers=server.h("provider"),
        )
        r = c.post("/api/v1/check", json=body, headers=server.h("party"))
        assert r.json()["decision"] == "allowed"
        assert c.post("/api/v1/check", json=body).status_code == 401
        assert c.post("/api/v1/check", json=body, headers=server.h("subject")).status_code == 403
        bad = c.post(
            "/api/v1/check", json={**body, "subject_id": PERSON[:-1] + "7"}, headers=server.h("party")
        )
        assert bad.status_code == 422 and PERSON[:-1] not in bad.text
        assert c.get("/openapi.json").json()["paths"]["/api/v1/check"]
        assert c.get("/api/v1/ledger/checkpoint").json()["size"] == 4
        log = c.get("/api/v1/me/access-log", headers=server.h("subject")).json()["entries"]
        assert [e["detail"]["decision"] for e in log] == ["allowed", "restricted"]

    async def many() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as ac:
            return await asyncio.gather(
                *[
                    ac.post(
                        "/api/v1/check",
                        json={"subject_id": PERSON2 if i % 2 else PERSON, "activity": "air_travel"},
                        headers=server.h("party"),
                    )
                    for i in range(200)
                ]
            )

    answers = asyncio.run(many())
    assert all(a.status_code == 200 for a in answers)
    assert len({a.headers["Socred-Receipt"] for a in answers}) == 200

    metrics = httpx.get(f"{server.base}/metrics").text
    assert 'socred_checks_total{activity="air_travel",decision="allowed"} 201.0' in metrics
    assert "socred_http_request_duration_seconds_bucket" in metrics
    server.proc.terminate()
    server.proc.wait(10)
    lines = [json.loads(x) for x in server.log.read_text().splitlines() if x.startswith("{")]
    requests = [x for x in lines if x.get("event") == "request"]
    assert requests and {"route", "status", "duration_ms", "request_id"} <= set(requests[-1])
    # an answered check is logged by its receipt, not by a log line; refused ones are logged
    assert not [x for x in requests if x["route"] == "/api/v1/check" and x["status"] == 200]
    assert [x for x in requests if x["route"] == "/api/v1/check" and x["status"] == 422]
    assert PERSON not in server.log.read_text()  # routes are logged as templates, never with identifiers
