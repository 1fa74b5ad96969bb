"""Migrations carry an existing database over, and an empty one ends up exactly as the schema says.

``tests/fixtures/socred-0007.db`` is a database as revision 0007 left it, written by the code of that
time (a catalog, two providers, submissions with texts, a correction, a retraction, a repair, three
checks and a batch of checks); ``socred-0007.expected.json`` holds what that code answered about it.
After ``socred init`` (migrations 0008 and 0009) the same ledger, scores, checks and receipts must
come out, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from socred.service.platform import Platform
from socred.service.receipts import list_receipts, reproduce
from socred.store import ledger
from tests.helpers import FIXTURES

FIXTURE = FIXTURES / "socred-0007.db"
EXPECTED = json.loads((FIXTURES / "socred-0007.expected.json").read_text(encoding="utf-8"))
AS_OF = date(2026, 11, 28)

# the tables of revision 0007 and the columns whose SQLite values PostgreSQL needs converted
_OLD_TABLES = [
    "ledger",
    "records",
    "subjects",
    "providers",
    "catalogs",
    "parties",
    "receipts",
    "access_log",
    "keystore",
]
_BOOLEAN = {("records", "retracted"), ("catalogs", "active")}


def _old_entries() -> list[tuple[Any, ...]]:
    with sqlite3.connect(FIXTURE) as c:
        return c.execute(
            "SELECT seq, recorded_at, actor, kind, body, prev_hash, hash FROM ledger ORDER BY seq"
        ).fetchall()


def _at_0007(url: str) -> None:
    """Bring an empty database to revision 0007 and copy the fixture's rows into it."""
    from alembic import command
    from alembic.config import Config

    from socred.store.db import open_engine
    from socred.store.migrate import MIGRATIONS

    engine = open_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007_merkle")
    src = sqlite3.connect(FIXTURE)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM ledger_head")
            for table in [*_OLD_TABLES, "ledger_head"]:
                cur = src.execute(f"SELECT * FROM {table}")
                cols = [d[0] for d in cur.description]
                rows = [
                    {
                        c: (bool(v) if (table, c) in _BOOLEAN and v is not None else v)
                        for c, v in zip(cols, r, strict=True)
                    }
                    for r in cur.fetchall()
                ]
                if rows:
                    t = sa.table(table, *(sa.column(c) for c in cols))
                    conn.execute(sa.insert(t), rows)
            if conn.dialect.name == "postgresql":  # the sequence of access_log ids follows the copied rows
                conn.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('access_log', 'id'), (SELECT COALESCE(MAX(id), 1) FROM access_log))"
                )
    finally:
        src.close()
        engine.dispose()


@pytest.fixture
def migrated(db_url: str, tmp_path: Path) -> Platform:
    if db_url.startswith("sqlite"):
        path = tmp_path / "old.db"
        shutil.copy(FIXTURE, path)
        url = f"sqlite:///{path}"
    else:
        url = db_url
        _at_0007(url)
    p = Platform(url)
    p.init()  # 0008 and 0009
    return p


def test_the_ledger_is_carried_over_byte_for_byte(migrated: Platform) -> None:
    p = migrated
    assert p.verify_ledger().to_dict() == EXPECTED["verify"]
    assert list(p.head()) == EXPECTED["head"]
    with p.engine.connect() as conn:
        now = [
            (e.seq, e.recorded_at, e.actor, e.kind, e.body, e.prev_hash, e.hash)
            for e in ledger.iter_entries(conn)
        ]
        kinds = [k for _s, k, _a in ledger.acts(conn, ["catalog.load"])]
    assert now == [tuple(r) for r in _old_entries()]
    assert kinds == ["catalog.load"]
    p.engine.dispose()


def test_scores_checks_and_receipts_are_the_same(migrated: Platform) -> None:
    p = migrated
    for sid, want in EXPECTED["scores"].items():
        assert p.score(sid, AS_OF).to_dict() == want
        assert p.check(sid, "air_travel", AS_OF).to_dict() == EXPECTED["checks"][sid]
        got = list_receipts(p, subject_id=sid, limit=50)
        assert got == EXPECTED["receipts"][sid]
        for r in got:
            again = reproduce(p, r)
            assert again["match"] and again["ledger_intact"], again
    # the record's texts stay on the ledger, and the full state replays from it
    from socred.store import repo

    with p.engine.connect() as conn:
        states = {s.record_id: s for s in repo.subject_records(conn, "11010519491231002X")}
    assert states["h3"].subject_name == "张叁" and states["h3"].summary == "corrected"
    assert states["h4"].retracted and states["h4"].retract_reason == "sent by mistake"
    assert states["h5"].attributes == {"plate": "沪A12345"}
    # and new operations go on the carried ledger
    s = p.ingest(
        "court",
        [(1, {"op": "correct", "record_id": "h5", "summary": "after the migration"})],
        today=AS_OF,
    )
    assert s.accepted == 1 and p.verify_ledger().ok
    p.engine.dispose()


def test_an_empty_database_migrates_to_exactly_the_schema(db_url: str) -> None:
    """Every table and column the schema modules declare exists after ``socred init``, and nothing else."""
    from socred.store import merkle_store, schema, schema_api, schema_due, schema_fed

    p = Platform(db_url)
    p.init()
    insp = sa.inspect(p.engine)
    declared: dict[str, set[str]] = {}
    for md in (
        schema.metadata,
        schema_api.metadata,
        schema_due.metadata,
        schema_fed.metadata,
        merkle_store.metadata,
    ):
        for name, table in md.tables.items():
            declared[name] = {c.name for c in table.columns}
    present = {
        name: {c["name"] for c in insp.get_columns(name)}
        for name in insp.get_table_names()
        if name not in ("alembic_version",) and not name.startswith(("subjects_fts", "subject_search"))
    }
    assert present == declared
    p.engine.dispose()
