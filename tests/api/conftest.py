"""Fixtures of the HTTP API tests: a database with a catalog, a provider, relying parties and tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from socred.api.app import create_app
from socred.api.settings import Settings
from socred.service import auth
from socred.service.platform import Platform
from tests.helpers import PERSON, PERSON2, TEST_CATALOG

SECRET = "test-secret-0123456789abcdef"
CATEGORIES = ["TRAFFIC_HONKING", "DISHONEST_JUDGMENT_DEBTOR", "TAX_A_GRADE"]


@dataclass
class Env:
    url: str
    client: TestClient
    keys: dict[str, str] = field(default_factory=dict)  # credential by role name

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"} if role in self.keys else {}

    def post(self, path: str, role: str, body: Any = None, **kw: Any) -> Any:
        return self.client.post(path, json=body, headers=self.h(role), **kw)

    def get(self, path: str, role: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self.h(role), **kw)

    def submit(self, ops: list[dict[str, Any]], role: str = "provider") -> dict[str, Any]:
        r = self.post("/api/v1/records", role, {"operations": ops})
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result


def prepare(url: str) -> dict[str, str]:
    """Schema, the test catalog, a provider, two parties and a token per role; returns the credentials."""
    p = Platform(url)
    try:
        p.init()
        p.load_catalog_file(TEST_CATALOG)
        keys = {
            "provider": p.add_provider("court", "People's Court", CATEGORIES),
            "provider2": p.add_provider("tax", "Tax Bureau", ["TAX_A_GRADE"]),
            "party": auth.add_party(p, "air.cn", "China Air", ["air_travel"]),
            "party_rail": auth.add_party(p, "rail.cn", "China Railway", ["rail_first_class"]),
        }
        codec = auth.TokenCodec(SECRET)
        keys["subject"] = codec.issue(PERSON, "subject")
        keys["subject2"] = codec.issue(PERSON2, "subject")
        for role in ("reviewer", "admin", "auditor"):
            keys[role] = codec.issue(f"{role}1", role)
        keys["expired"] = codec.issue("admin1", "admin", ttl=1, now=1_000_000)
        keys["forged"] = auth.TokenCodec("another-secret-0123456789").issue("admin1", "admin")
        from socred.service import federation

        keys["node"] = federation.allow_node(p, "cn", ["11"])
        keys["unknown_node"] = "nk_" + "x" * 43
        keys["junk"] = "not-a-credential"
        keys["unknown_party"] = "rp_" + "x" * 43
        keys["unknown_provider"] = "sp_" + "x" * 43
        return keys
    finally:
        p.engine.dispose()


def make_env(url: str) -> Iterator[Env]:
    keys = prepare(url)
    app = create_app(Settings(db=url, token_secret=SECRET, log_format="text", access_log=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Env(url, client, keys)


@pytest.fixture
def env(db_url: str) -> Iterator[Env]:
    """On SQLite and PostgreSQL."""
    yield from make_env(db_url)


@pytest.fixture
def senv(sqlite_url: str) -> Iterator[Env]:
    """SQLite only."""
    yield from make_env(sqlite_url)
