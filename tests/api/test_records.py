"""POST /api/v1/records: the ingest summary of cli.md, line = position in the list."""

from __future__ import annotations

import json

from tests.api.conftest import Env
from tests.helpers import ORG, PERSON, submit


def test_summary_and_positions(env: Env) -> None:
    ops = [
        submit("r1"),
        submit("r1"),  # duplicate
        submit("r2", subject_id=PERSON[:-1] + "7"),
        7,
        {"op": "retract", "record_id": "nope", "reason": "x"},
        submit("r3", category="TAX_A_GRADE", subject_id=ORG),  # court may submit it (authorised)
        {"record_id": "r4\u0000", "subject_id": PERSON},
        submit("r5", summary="\ud800"),
        {"op": "correct", "record_id": "r1", "occurred_on": "2026-02-01"},
    ]
    # sent as ASCII JSON: "\ud800" (a lone surrogate) is legal JSON text but no Unicode
    r = env.client.post(
        "/api/v1/records",
        content=json.dumps({"operations": ops}),
        headers={**env.h("provider"), "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["accepted"], s["duplicates"], s["rejected"]) == (3, 1, 5)
    lines = {e["line"]: e for e in s["errors"]}
    assert sorted(lines) == [3, 4, 5, 7, 8]
    assert lines[3]["field"] == "subject_id" and "check character" in lines[3]["message"]
    assert lines[4]["field"] == "op"
    assert lines[5]["field"] == "record_id"
    assert lines[7]["field"] == "record_id" and "NUL" in lines[7]["message"]
    assert lines[8]["field"] == "summary"
    # the same as the command line would do: a second identical submission is a duplicate
    again = env.post("/api/v1/records", "provider", {"operations": [submit("r1")]}).json()
    assert (again["accepted"], again["duplicates"]) == (0, 1)


def test_provider_only_touches_its_own_categories_and_records(env: Env) -> None:
    r = env.post("/api/v1/records", "provider2", {"operations": [submit("t1")]})
    assert r.json()["rejected"] == 1 and r.json()["errors"][0]["field"] == "category"
    env.submit([submit("c1")])
    r = env.post(
        "/api/v1/records", "provider2", {"operations": [{"op": "retract", "record_id": "c1", "reason": "x"}]}
    )
    assert r.json()["rejected"] == 1 and r.json()["errors"][0]["field"] == "record_id"
    r = env.post("/api/v1/records", "provider2", {"operations": [{**submit("t2"), "source": "court"}]})
    assert r.json()["rejected"] == 1 and r.json()["errors"][0]["field"] == "source"


def test_ten_thousand_operations(env: Env) -> None:
    ops = [submit(f"b{i}", occurred_on="2026-03-01") for i in range(10_000)]
    r = env.post("/api/v1/records", "provider", {"operations": ops})
    assert r.status_code == 200
    assert r.json()["accepted"] == 10_000
