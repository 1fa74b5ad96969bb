"""Fixtures of the public read layer and portal tests: demo populations, apps and a live server."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from socred.api.app import create_app
from socred.api.public import RateLimiter, parse_rate
from socred.api.settings import Settings
from socred.demo import populate
from socred.domain import clock
from socred.service.platform import Platform
from socred.service.public import PublicInfo

SEED = 11
SUBJECTS = 300
RECORDS = 1200


def make_demo(path: Path, subjects: int = SUBJECTS, records: int = RECORDS, seed: int = SEED) -> str:
    url = f"sqlite:///{path}"
    p = Platform(url)
    try:
        populate(p, subjects=subjects, records=records, seed=seed)
    finally:
        p.engine.dispose()
    return url


def copy_db(source: Path, target: Path) -> str:
    """A consistent copy of an SQLite database (the backup API: WAL content included)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return f"sqlite:///{target}"


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo population, built once per session; tests work on copies."""
    path = tmp_path_factory.mktemp("demo") / "template.db"
    make_demo(path)
    return path


@pytest.fixture
def demo_url(demo_template: Path, tmp_path: Path) -> str:
    """A private copy of the demo population (tests may write to it)."""
    return copy_db(demo_template, tmp_path / "socred.db")


@pytest.fixture(scope="session")
def shared_demo_url(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One read-only copy for tests that only read."""
    return copy_db(demo_template, tmp_path_factory.mktemp("shared") / "socred.db")


@pytest.fixture
def platform(demo_url: str) -> Iterator[Platform]:
    p = Platform(demo_url)
    yield p
    p.engine.dispose()


@pytest.fixture
def info(platform: Platform) -> PublicInfo:
    return PublicInfo(platform, catalog_ttl=0, stats_ttl=0)


@pytest.fixture(scope="session")
def shared_platform(shared_demo_url: str) -> Iterator[Platform]:
    p = Platform(shared_demo_url)
    yield p
    p.engine.dispose()


@pytest.fixture(scope="session")
def shared_info(shared_platform: Platform) -> PublicInfo:
    return PublicInfo(shared_platform)


def app_client(url: str, rate: str = "off") -> TestClient:
    """A client of the whole app (create_app of the API) with the public rate limit set to ``rate``."""
    app = create_app(Settings(db=url, log_format="text", access_log=False))
    parsed = parse_rate(rate)
    app.state.socred_public_limiter = None if parsed is None else RateLimiter(*parsed)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="session")
def client(shared_demo_url: str) -> Iterator[TestClient]:
    """A client of the whole app (API engineer's create_app) over the shared demo population."""
    c = app_client(shared_demo_url)
    with c:
        yield c


def today() -> date:
    return clock.today()


# ------------------------------------------------------------------ a live server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str
    url: str
    proc: subprocess.Popen[Any]


def start_server(url: str, log: Path, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    env = {**os.environ, "SOCRED_PUBLIC_RATE": "off", "SOCRED_LOG_FORMAT": "text", **(extra_env or {})}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "socred",
                "--db",
                url,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/api/v1/public/stats", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return Server(base, url, proc)


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(5)
    except subprocess.TimeoutExpired:  # an open event stream can hold a graceful shutdown
        server.proc.kill()
        server.proc.wait()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, demo_template: Path) -> Iterator[Server]:
    """``socred serve`` in a subprocess on a free loopback port, over a private demo copy."""
    d = tmp_path_factory.mktemp("live")
    server = start_server(copy_db(demo_template, d / "socred.db"), d / "server.log")
    yield server
    stop_server(server)
