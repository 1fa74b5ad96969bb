"""The four disagreements with the spec found by held-out testing (issue 17), on every path.

1. A version not yet in effect must not choose the catalog for an earlier date.
2. ``valid_for`` and ``duration`` are bounded to 1..36,500 days at load.
3. A catalog serves only the kinds it has categories for; score-all scores the others elsewhere.
4. CSV errors name the file line, not the CSV record.

Each path that chooses a catalog is asked: the evaluator (``score``, ``check``), the batch on
DuckDB and Spark (``score-all``), the HTTP check service and the public pages.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from fastapi.testclient import TestClient

from socred.api.app import create_app
from socred.api.settings import Settings
from socred.domain.catalog import CatalogError
from socred.service import auth, batch
from socred.service.platform import Platform
from socred.service.public import PublicInfo
from tests.test_cli import run

SH_PERSON = "310104198403139737"  # Shanghai Xuhui, valid
SH_PERSON_3102 = "31023019900101001X"  # region 310230 (prefix 3102)
SH_ORG = "91310114MA1GTPB26F"  # region 310114
AS_OF = date(2025, 1, 1)


def _catalog(
    cid: str, version: int, regions: list[str], eff: str, base: int, kinds: list[str]
) -> dict[str, Any]:
    return {
        "id": cid,
        "version": version,
        "title": f"{cid} v{version}",
        "regions": regions,
        "effective_from": eff,
        "base_score": base,
        "score_bounds": [0, 3000],
        "grades": [{"grade": "A", "min": 1200}, {"grade": "B", "min": 900}, {"grade": "D", "min": 0}],
        "categories": [
            {
                "code": "DEBTOR",
                "title": "Dishonest judgment debtor",
                "domain": "judicial",
                "subjects": kinds,
                "points": -50,
                "valid_for": 3650,
                "legal_basis": "Fa Shi [2017] No. 7",
                "lists": ["DEBTORS"],
            }
        ],
        "lists": [
            {"code": "DEBTORS", "kind": "black", "title": "Debtors", "duration": 3650, "measures": ["NO_AIR"]}
        ],
        "measures": [
            {"code": "NO_AIR", "activity": "air_travel", "effect": "restrict", "title": "No flights"}
        ],
    }


def _load(p: Platform, tmp: Path, doc: dict[str, Any]) -> str:
    path = tmp / f"{doc['id']}-{doc['version']}.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return p.load_catalog_file(path)


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[Platform]:
    """nat@1 ("" from 2015), sh@1 (3102 from 2015, base 1500), sh@2 (31 from 2030) and shp@1, a
    person-only catalog for 31 from 2015; one debtor record each for three subjects of Shanghai."""
    p = Platform(db_url)
    p.init()
    _load(p, tmp_path, _catalog("nat", 1, [""], "2015-01-01", 1000, ["person", "organization"]))
    _load(p, tmp_path, _catalog("sh", 1, ["3102"], "2015-01-01", 1500, ["person", "organization"]))
    _load(p, tmp_path, _catalog("sh", 2, ["31"], "2030-01-01", 1700, ["person", "organization"]))
    _load(p, tmp_path, _catalog("shp", 1, ["31"], "2015-01-01", 800, ["person"]))
    p.add_provider("court", "Court", ["DEBTOR"])
    ops = [
        {
            "record_id": f"r{i}",
            "subject_id": sid,
            "subject_name": "谢强华",
            "category": "DEBTOR",
            "occurred_on": "2024-06-01",
        }
        for i, sid in enumerate([SH_PERSON, SH_PERSON_3102, SH_ORG])
    ]
    summary = p.ingest("court", [(i + 1, op) for i, op in enumerate(ops)], today=date(2026, 12, 1))
    assert summary.accepted == 3, summary.errors
    try:
        yield p
    finally:
        p.engine.dispose()


def test_the_evaluator_chooses_by_the_versions_in_effect(world: Platform) -> None:
    p = world
    # 310104 is not served by sh@1 (3102) and sh@2 is not in effect in 2025: shp serves persons of 31
    assert p.score(SH_PERSON, AS_OF).catalog == "shp@1"
    # 310230 is served by sh@1 (prefix 3102 beats shp's 31)
    s = p.score(SH_PERSON_3102, AS_OF)
    assert (s.catalog, s.score) == ("sh@1", 1450)
    # from 2030, sh@2 serves all of 31 and beats shp on the tie by id ("sh" < "shp")
    assert p.score(SH_PERSON, date(2030, 6, 1)).catalog == "sh@2"
    # an organization of 31: shp has no organization category, sh@1 does not serve 310114: nat
    org = p.score(SH_ORG, AS_OF)
    assert (org.catalog, org.score) == ("nat@1", 950)
    # a named catalog is used at its version in effect
    assert p.score(SH_PERSON, AS_OF, "sh").catalog == "sh@1"
    c = p.check(SH_ORG, "air_travel", AS_OF)
    assert (c.catalog, c.decision) == ("nat@1", "restricted")


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_score_all_agrees_with_score(world: Platform, tmp_path: Path, engine: str) -> None:
    if engine == "spark":
        pytest.importorskip("pyspark")
    out = tmp_path / f"all-{engine}.parquet"
    summary = batch.score_all(world, out, AS_OF, None, engine)
    rows = {r["subject_id"]: r for r in pq.read_table(out).to_pylist()}
    assert summary["unserved_subjects"] == 0
    for sid in (SH_PERSON, SH_PERSON_3102, SH_ORG):
        want = world.score(sid, AS_OF)
        assert (rows[sid]["catalog"], rows[sid]["score"]) == (want.catalog, want.score), sid
    # --catalog sh: the subjects sh@1 serves in 2025 (region 3102, both kinds), and no other
    named = tmp_path / f"sh-{engine}.parquet"
    batch.score_all(world, named, AS_OF, "sh", engine)
    assert [r["subject_id"] for r in pq.read_table(named).to_pylist()] == [SH_PERSON_3102]


def test_the_check_service_and_public_pages_choose_alike(world: Platform, db_url: str) -> None:
    key = auth.add_party(world, "air.cn", "China Air", ["air_travel"])
    app = create_app(Settings(db=db_url, token_secret="s" * 32, log_format="text", access_log=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        for sid in (SH_PERSON, SH_PERSON_3102, SH_ORG):
            r = client.post(
                "/api/v1/check",
                json={"subject_id": sid, "activity": "air_travel", "at": AS_OF.isoformat()},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["catalog"] == world.check(sid, "air_travel", AS_OF).catalog
    # the public pages choose for today (sh@2 is not in effect until 2030): the organization's
    # profile is the national catalog's, as score says
    public = PublicInfo(world)
    for sid, want in ((SH_ORG, "nat@1"), (SH_PERSON_3102, "sh@1")):
        profile = public.profile(sid, today=AS_OF)
        assert profile is not None and profile["catalog"] == want == world.score(sid, AS_OF).catalog


def test_valid_for_and_duration_are_bounded(tmp_path: Path) -> None:
    base = _catalog("big", 1, [""], "2015-01-01", 1000, ["person"])
    p = Platform(f"sqlite:///{tmp_path / 'b.db'}")
    p.init()
    too_long = copy.deepcopy(base)
    too_long["categories"][0]["valid_for"] = 3_000_000
    with pytest.raises(CatalogError, match=r"category 'DEBTOR': valid_for must be at most 36,500 days"):
        p.load_catalog(too_long)
    too_long = copy.deepcopy(base)
    too_long["lists"][0]["duration"] = 36_501
    with pytest.raises(CatalogError, match=r"list 'DEBTORS': duration must be at most 36,500 days"):
        p.load_catalog(too_long)
    edge = copy.deepcopy(base)
    edge["categories"][0]["valid_for"] = 36_500
    edge["lists"][0]["duration"] = 36_500
    assert p.load_catalog(edge) == "big@1"
    assert p.catalogs() and p.catalogs()[0].categories["DEBTOR"].valid_for == 36_500
    # nothing of the refused documents was stored
    assert p.head()[0] == 1
    # the command line names the field and exits 1
    bad = tmp_path / "bad.yaml"
    too_long["version"] = 2
    bad.write_text(yaml.safe_dump(too_long), encoding="utf-8")
    r = run(f"sqlite:///{tmp_path / 'b.db'}", "catalog", "load", str(bad), check=1)
    assert "duration must be at most 36,500 days" in r.stderr


def test_csv_errors_name_the_file_line(tmp_path: Path) -> None:
    from tests.helpers import TEST_CATALOG

    url = f"sqlite:///{tmp_path / 'c.db'}"
    run(url, "init")
    run(url, "catalog", "load", str(TEST_CATALOG))
    run(url, "providers", "add", "court", "--name", "Court", "--categories", "TRAFFIC_HONKING")
    csv = tmp_path / "ops.csv"
    csv.write_text(
        "record_id,subject_id,subject_name,category,occurred_on,summary\n"  # line 1
        'a1,11010519491231002X,张三,TRAFFIC_HONKING,2026-03-01,"two\n'  # lines 2-3: one record
        'lines"\n'
        "a2,11010519491231002Y,李四,TRAFFIC_HONKING,2026-03-01,\n"  # line 4: bad check character
        'a3,11010519491231002X,张三,TRAFFIC_HONKING,2026-03-01,"x\n\ny"\n'  # lines 5-7
        "a4,11010519491231002X,张三,NOPE,2026-03-01,\n",  # line 8: unknown category
        encoding="utf-8",
    )
    r = run(url, "ingest", str(csv), "--source", "court", check=1)
    out = json.loads(r.stdout)
    assert out["accepted"] == 2
    assert [(e["line"], e["field"]) for e in out["errors"]] == [(4, "subject_id"), (8, "category")]
