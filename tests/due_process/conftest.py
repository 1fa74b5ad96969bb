"""Fixtures of the due-process tests: the API test environment plus a second reviewer and administrator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from socred.service import auth
from tests.api.conftest import SECRET, Env, make_env


def _with_second_reviewer(url: str) -> Iterator[Env]:
    for env in make_env(url):
        env.keys["reviewer2"] = auth.TokenCodec(SECRET).issue("reviewer2", "reviewer")
        env.keys["admin2"] = auth.TokenCodec(SECRET).issue("admin2", "admin")
        yield env


@pytest.fixture
def env(db_url: str) -> Iterator[Env]:
    """On SQLite and PostgreSQL."""
    yield from _with_second_reviewer(db_url)


@pytest.fixture
def senv(sqlite_url: str) -> Iterator[Env]:
    """SQLite only."""
    yield from _with_second_reviewer(sqlite_url)
