"""Shared fixtures: a fresh database per test, on SQLite and on the real PostgreSQL server.

PostgreSQL tests use ``SOCRED_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``),
each test in a schema of its own. Under ``CI=true`` they must run: an unreachable server
fails them instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URL = os.environ.get("SOCRED_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
CATALOGS = Path(__file__).resolve().parents[1] / "src" / "socred" / "catalogs"


def _pg_admin_url() -> str:
    return PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)


def _pg_available() -> str | None:
    import sqlalchemy as sa

    try:
        eng = sa.create_engine(_pg_admin_url())
        with eng.connect() as c:
            c.execute(sa.text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as e:
        return str(e).splitlines()[0]


@pytest.fixture(scope="session")
def pg_ready() -> None:
    problem = _pg_available()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")


def new_pg_schema_url() -> tuple[str, str]:
    import sqlalchemy as sa

    schema = "t_" + uuid.uuid4().hex[:12]
    eng = sa.create_engine(_pg_admin_url())
    with eng.begin() as c:
        c.execute(sa.text(f"CREATE SCHEMA {schema}"))
    eng.dispose()
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", schema


def drop_pg_schema(schema: str) -> None:
    import sqlalchemy as sa

    eng = sa.create_engine(_pg_admin_url())
    with eng.begin() as c:
        c.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    eng.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'socred.db'}"
        return
    request.getfixturevalue("pg_ready")
    url, schema = new_pg_schema_url()
    try:
        yield url
    finally:
        drop_pg_schema(schema)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'socred.db'}"
