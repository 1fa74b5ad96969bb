"""The subject search index (store/search.py, migration 0003) on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from socred.demo import load_shipped_catalogs
from socred.service.platform import Platform
from socred.service.public import PublicInfo
from socred.store import search
from tests.helpers import ORG, ORG_SH, PERSON, PERSON2

NAMES = {
    ORG: "杭州华信东方科技有限公司",
    ORG_SH: "上海金桥海润贸易有限公司",
    PERSON: "张伟",
    PERSON2: "张伟华",
}


def _setup(url: str) -> Platform:
    p = Platform(url)
    p.init()
    load_shipped_catalogs(p)
    p.add_provider("court", "Court", ["CONTRACT_BREACH_JUDGMENT", "DISHONEST_JUDGMENT_DEBTOR"])
    ops: list[dict[str, Any]] = [
        {
            "record_id": f"r{i}",
            "subject_id": sid,
            "subject_name": name,
            "category": "CONTRACT_BREACH_JUDGMENT",
            "occurred_on": "2026-01-05",
        }
        for i, (sid, name) in enumerate(NAMES.items())
    ]
    assert p.ingest("court", [(i + 1, op) for i, op in enumerate(ops)]).accepted == len(ops)
    return p


def names(hits: list[search.Hit]) -> list[tuple[str, str]]:
    return [(h.name, h.match) for h in hits]


def test_tiers_on_both_databases(db_url: str) -> None:
    p = _setup(db_url)
    try:
        with p.engine.connect() as conn:
            assert names(search.find_by_name(conn, "张伟")) == [("张伟", "exact"), ("张伟华", "prefix")]
            assert names(search.find_by_name(conn, "张")) == [("张伟", "prefix"), ("张伟华", "prefix")]
            assert names(search.find_by_name(conn, "伟华")) == [
                ("张伟华", "substring")
            ]  # 2 chars: no trigram
            assert names(search.find_by_name(conn, "华信东方")) == [("杭州华信东方科技有限公司", "substring")]
            assert names(search.find_by_name(conn, "ｈ")) == []  # NFKC: full-width folded, nothing matches
            typo = search.find_by_name(conn, "杭州华信东方科枝有限公司")
            assert [h.name for h in typo] == ["杭州华信东方科技有限公司"] and typo[0].match == "similar"
            assert search.find_by_name(conn, "100%_\\") == []  # LIKE wildcards are literal
            assert search.find_by_name(conn, '"华信" OR "x"') == []  # FTS syntax is literal
            hit = search.find_by_id(conn, PERSON)
            assert hit is not None and (hit.kind, hit.name, hit.region) == ("person", "张伟", PERSON[:6])
    finally:
        p.engine.dispose()


def test_index_follows_the_projection(sqlite_url: str) -> None:
    """Triggers keep the FTS index equal to subjects: renames, and ledger rebuilds that empty it."""
    p = _setup(sqlite_url)
    try:
        assert p.ingest(
            "court", [(1, {"op": "correct", "record_id": "r0", "subject_name": "杭州蓝海星河物流有限公司"})]
        ).accepted
        with p.engine.connect() as conn:
            assert search.find_by_name(conn, "华信东方") == []
            assert names(search.find_by_name(conn, "蓝海星河")) == [("杭州蓝海星河物流有限公司", "substring")]
        p.rebuild_projections()
        with p.engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM subject_search")).scalar()
            assert count == 4
            assert names(search.find_by_name(conn, "蓝海星河")) == [("杭州蓝海星河物流有限公司", "substring")]
            fts = conn.execute(
                text("SELECT count(*) FROM subjects_fts WHERE subjects_fts MATCH '\"有限公司\"'")
            )
            assert fts.scalar() == 2
        with p.engine.begin() as conn:
            search.rebuild(conn)
        with p.engine.connect() as conn:
            assert names(search.find_by_name(conn, "海润贸易")) == [("上海金桥海润贸易有限公司", "substring")]
    finally:
        p.engine.dispose()


def test_migration_downgrade_and_upgrade(sqlite_url: str) -> None:

    p = _setup(sqlite_url)
    try:
        with p.engine.begin() as conn:  # what migration 0003 undoes and does
            search.uninstall(conn)
        with p.engine.connect() as conn:
            tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
            assert "subjects_fts" not in tables and "subject_search" not in tables
            assert names(search.find_by_name(conn, "华信东方")) == [("杭州华信东方科技有限公司", "substring")]
        with p.engine.begin() as conn:
            search.install(conn)
        with p.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM subject_search")).scalar() == 4
    finally:
        p.engine.dispose()


def test_public_layer_on_both_databases(db_url: str) -> None:
    p = _setup(db_url)
    try:
        info = PublicInfo(p)
        res = info.search("华信")
        assert [r["name"] for r in res["results"]] == ["杭州华信东方科技有限公司"]
        assert info.search(PERSON)["results"][0]["name"] == "张*"
        ann = info.announcements()
        assert {a["subject"]["name"] for a in ann["items"]} >= {"张*", "张**"}
        assert info.profile(ORG_SH) is not None
        st = info.statistics()
        assert st["subjects"] == {"person": 2, "organization": 2}
        assert sum(sum(p["counts"]) for p in st["records_by_provider"]) == 4
    finally:
        p.engine.dispose()
