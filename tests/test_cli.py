"""The command-line contract (cli.md), exercised as an operator would: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import ORG, PERSON, PERSON2, TEST_CATALOG, submit, write_jsonl


def run(db: str, *args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOCRED_DB": db}
    p = subprocess.run(
        [sys.executable, "-m", "socred", *args], capture_output=True, text=True, env=env, timeout=120
    )
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    run(url, "init")
    assert run(url, "catalog", "load", str(TEST_CATALOG)).stdout.strip() == "testcat@1"
    key = run(
        url,
        "providers",
        "add",
        "court",
        "--name",
        "Court",
        "--categories",
        "TRAFFIC_HONKING,DISHONEST_JUDGMENT_DEBTOR",
    ).stdout.strip()
    assert key.startswith("sp_") and len(key) > 30
    return url


def test_ingest_summary_exit_codes_and_rejects(db: str, tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "ops.jsonl",
        [
            submit("r1", category="DISHONEST_JUDGMENT_DEBTOR", occurred_on="2026-03-01"),
            submit("r2", subject_id=PERSON[:-1] + "7"),
        ],
    )
    p = run(db, "ingest", str(f), "--source", "court", "--rejects", str(tmp_path / "rej.jsonl"), check=1)
    assert json.loads(p.stdout) == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": 1,
        "errors": [{"line": 2, "field": "subject_id", "message": "check character should be 'X', got '7'"}],
    }
    rej = [json.loads(x) for x in (tmp_path / "rej.jsonl").read_text().splitlines()]
    assert rej[0]["line"] == 2 and rej[0]["row"]["record_id"] == "r2"
    again = run(db, "ingest", str(f), "--source", "court", check=1)
    assert json.loads(again.stdout)["duplicates"] == 1


def test_csv_and_parquet_line_numbers(db: str, tmp_path: Path) -> None:
    csv = tmp_path / "ops.csv"
    csv.write_text(
        "record_id,subject_id,subject_name,category,occurred_on,attributes\n"
        f'c1,{PERSON},张三,TRAFFIC_HONKING,2026-03-01,"{{""plate"":""沪A12345""}}"\n'
        f"c2,{PERSON},张三,TRAFFIC_HONKING,2026-13-01,\n",
        encoding="utf-8",
    )
    p = run(db, "ingest", str(csv), "--source", "court", check=1)
    s = json.loads(p.stdout)
    assert s["accepted"] == 1 and s["errors"][0]["line"] == 3 and s["errors"][0]["field"] == "occurred_on"
    table = pa.table(
        {
            "record_id": ["p1", "p2"],
            "subject_id": [PERSON2, "123"],
            "subject_name": ["李四", "x"],
            "category": ["TRAFFIC_HONKING"] * 2,
            "occurred_on": ["2026-04-01", "2026-04-01"],
        }
    )
    pq.write_table(table, tmp_path / "ops.parquet")
    s = json.loads(run(db, "ingest", str(tmp_path / "ops.parquet"), "--source", "court", check=1).stdout)
    assert s["accepted"] == 1
    assert s["errors"][0]["line"] == 2 and s["errors"][0]["field"] == "subject_id"


def test_score_check_and_score_all(db: str, tmp_path: Path) -> None:
    f = write_jsonl(
        tmp_path / "ops.jsonl",
        [
            submit("j1", category="DISHONEST_JUDGMENT_DEBTOR", occurred_on="2026-03-01"),
            submit("h1", occurred_on="2026-03-01"),
            submit("o1", subject_id=ORG, category="DISHONEST_JUDGMENT_DEBTOR", occurred_on="2025-01-01"),
        ],
    )
    run(db, "ingest", str(f), "--source", "court")
    s = json.loads(run(db, "score", PERSON, "--as-of", "2026-11-28", "--json").stdout)
    assert (s["score"], s["grade"], s["catalog"]) == (895, "B", "testcat@1")
    assert s["domains"] == {"government": 0, "commercial": 0, "social": -5, "judicial": -100}
    assert s["lists"] == [
        {
            "code": "DISHONEST_JUDGMENT_DEBTOR",
            "kind": "black",
            "since": "2026-03-01",
            "until": "2028-02-29",
            "records": ["j1"],
        }
    ]
    assert s["measures"] == ["NO_AIR_TRAVEL", "NO_HSR_FIRST_CLASS"]
    c = json.loads(run(db, "check", PERSON, "air_travel", "--at", "2026-11-28", "--json").stdout)
    assert c == {
        "subject_id": PERSON,
        "activity": "air_travel",
        "at": "2026-11-28",
        "catalog": "testcat@1",
        "decision": "restricted",
        "measures": ["NO_AIR_TRAVEL"],
        "lists": ["DISHONEST_JUDGMENT_DEBTOR"],
        "until": "2028-02-29",
    }
    none = json.loads(run(db, "score", PERSON2, "--as-of", "2026-11-28", "--json").stdout)
    assert none["score"] == 1000 and none["contributions"] == [] and none["grade"] == "A"
    out = tmp_path / "all.parquet"
    summary = json.loads(run(db, "score-all", "--as-of", "2026-11-28", "--out", str(out)).stdout)
    assert summary["subjects"] == 2
    rows = {r["subject_id"]: r for r in pq.read_table(out).to_pylist()}
    assert rows[PERSON]["score"] == 895 and rows[PERSON]["judicial"] == -100
    assert rows[ORG]["lists"] == ["DISHONEST_JUDGMENT_DEBTOR"]
    assert list(pq.read_table(out).column_names) == [
        "subject_id",
        "kind",
        "catalog",
        "as_of",
        "score",
        "grade",
        "government",
        "commercial",
        "social",
        "judicial",
        "lists",
        "measures",
    ]


def test_errors_are_one_sentence_with_exit_codes(db: str, tmp_path: Path) -> None:
    p = run(db, "score", "110105194912310027", "--json", check=2)
    assert "check character should be 'X', got '7'" in p.stderr and "Traceback" not in p.stderr
    p = run(db, "ingest", str(tmp_path / "missing.jsonl"), "--source", "court", check=2)
    assert "does not exist" in p.stderr
    p = run(db, "score", PERSON, "--as-of", "2019-01-01", "--json", check=1)
    assert "2020-01-01" in p.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(TEST_CATALOG.read_text().replace("domain: social", "domain: speech"))
    p = run(db, "catalog", "load", str(bad), check=1)
    assert "TRAFFIC_HONKING" in p.stderr and "speech" in p.stderr
    p = run(db, "frobnicate", check=2)


def test_ledger_verify_and_ids_check(db: str) -> None:
    v = json.loads(run(db, "ledger", "verify").stdout)
    assert v["ok"] is True and v["entries"] == 1 and len(v["head"]) == 64
    p = run(db, "ids", "check", "11010519491231002x", "91330100799655058B", "440524188001010014", check=1)
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert lines[0] == {
        "value": "11010519491231002x",
        "valid": True,
        "kind": "person",
        "region": "110105",
        "error": None,
    }
    assert lines[1]["kind"] == "organization" and lines[1]["region"] == "330100"
    assert lines[2]["valid"] is False and "1900" in lines[2]["error"]
