"""load_states finds exactly the records that exist, whichever way it looks them up."""

from __future__ import annotations

from datetime import date

from socred.service.platform import Platform
from socred.store import export, repo
from tests.helpers import PERSON, TEST_CATALOG, rows, submit


def test_load_states_range_scan_and_probes(db_url: str) -> None:
    p = Platform(db_url)
    p.init()
    p.load_catalog_file(TEST_CATALOG)
    p.add_provider("court", "Court", ["TRAFFIC_HONKING"])
    p.add_provider("other", "Other", ["TRAFFIC_HONKING"])
    existing = [f"r{i:04d}" for i in range(0, 600, 3)]
    for source in ("court", "other"):
        s = p.ingest(source, rows(submit(r, subject_id=PERSON) for r in existing), today=date(2026, 11, 28))
        assert s.accepted == len(existing)
    with p.engine.connect() as c:
        # a dense range (more existing rows than twice the keys): per-id probes
        dense = [f"r{i:04d}" for i in range(0, 300, 2)]
        got = repo.load_states(c, "court", dense)
        assert sorted(got) == sorted(set(dense) & set(existing))
        # a sparse range: the range scan answers, then the few candidates are loaded
        sparse = [f"r{i:04d}" for i in range(590, 700)] + ["r0003", "zz", "a"]
        got = repo.load_states(c, "court", sparse)
        assert sorted(got) == sorted(set(sparse) & set(existing))
        assert all(s.source == "court" and s.subject_id == PERSON for s in got.values())
        assert repo.load_states(c, "court", [f"n{i}" for i in range(100)]) == {}
    p.engine.dispose()


def test_stream_records_from_sqlite_with_an_odd_value(sqlite_url: str) -> None:
    import sqlalchemy as sa

    p = Platform(sqlite_url)
    p.init()
    p.load_catalog_file(TEST_CATALOG)
    p.add_provider("court", "Court", ["TRAFFIC_HONKING"])
    p.ingest("court", rows(submit(f"r{i}", subject_id=PERSON) for i in range(5)), today=date(2026, 11, 28))
    p.ingest(
        "court", rows([{"op": "repair", "record_id": "r1", "repaired_on": "2026-04-01", "reason": "paid"}])
    )
    got = [r for b in export.stream_records(p.engine) for r in b.to_pylist()]
    assert len(got) == 5 and {r["repaired_on"] for r in got} == {None, date(2026, 4, 1)}
    with p.engine.begin() as c:  # behind the application's back: text where a code belongs
        c.execute(sa.text("UPDATE records SET category = 'A' || char(31) || 'B' WHERE record_id = 'r2'"))
    import pytest

    with pytest.raises(ValueError, match="the projection is damaged"):
        list(export.stream_records(p.engine))
    p.engine.dispose()
