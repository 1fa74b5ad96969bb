"""Checks, batches, freshness after retraction and repair, receipts and their reproduction (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from socred.service.checks import get_receipt, reproduce
from socred.service.platform import Platform
from tests.api.conftest import Env
from tests.helpers import ORG, PERSON, PERSON2, rows, submit

AT = "2026-06-01"


def check(
    env: Env, subject: str = PERSON, activity: str = "air_travel", at: str | None = AT, role: str = "party"
) -> Any:
    body: dict[str, Any] = {"subject_id": subject, "activity": activity}
    if at is not None:
        body["at"] = at
    return env.post("/api/v1/check", role, body)


def debtor(record_id: str = "j1", subject: str = PERSON, occurred_on: str = "2026-03-01") -> dict[str, Any]:
    return submit(
        record_id, subject_id=subject, category="DISHONEST_JUDGMENT_DEBTOR", occurred_on=occurred_on
    )


def test_check_answer_is_the_cli_object(env: Env) -> None:
    env.submit([debtor()])
    r = check(env)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "subject_id": PERSON,
        "activity": "air_travel",
        "at": AT,
        "catalog": "testcat@1",
        "decision": "restricted",
        "measures": ["NO_AIR_TRAVEL"],
        "lists": ["DISHONEST_JUDGMENT_DEBTOR"],
        "until": "2028-02-29",
    }
    assert r.headers["Socred-Receipt"].startswith("rc_")
    # the same answer as the command line
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "socred",
            "--db",
            env.url,
            "check",
            PERSON,
            "air_travel",
            "--at",
            AT,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(out.stdout) == r.json()
    # a subject without records is allowed; lower-case x is normalised
    r2 = check(env, PERSON.lower())
    assert r2.status_code == 200
    r3 = check(env, PERSON2)
    assert r3.json()["decision"] == "allowed" and r3.json()["until"] is None


def test_check_reflects_retraction_and_repair_at_once(env: Env) -> None:
    env.submit([debtor("j1"), debtor("j2", subject=PERSON2)])
    assert check(env).json()["decision"] == "restricted"
    assert check(env, PERSON2).json()["decision"] == "restricted"
    # retraction over the API: the very next check reflects it
    env.submit([{"op": "retract", "record_id": "j1", "reason": "entered in error"}])
    assert check(env).json()["decision"] == "allowed"
    # a repair written by another process (the command line) is reflected too
    p = Platform(env.url)
    try:
        s = p.ingest(
            "court",
            rows(
                [
                    {
                        "op": "repair",
                        "record_id": "j2",
                        "repaired_on": "2026-05-01",
                        "reason": "obligations performed",
                    }
                ]
            ),
        )
        assert s.accepted == 1
    finally:
        p.engine.dispose()
    after = check(env, PERSON2).json()
    assert after["decision"] == "allowed"
    before_repair = check(env, PERSON2, at="2026-04-01").json()
    assert before_repair["decision"] == "restricted" and before_repair["until"] == "2026-05-01"
    # a correction moves the end date
    env.submit([debtor("j3", occurred_on="2026-02-01")])
    assert check(env).json()["until"] == "2028-02-01"
    env.submit([{"op": "correct", "record_id": "j3", "occurred_on": "2026-01-01"}])
    assert check(env).json()["until"] == "2028-01-01"


def test_batch_in_order(env: Env) -> None:
    env.submit([debtor("j1"), debtor("j2", subject=ORG)])
    ids = [PERSON, ORG, PERSON2, PERSON]
    r = env.post("/api/v1/check/batch", "party", {"activity": "air_travel", "subject_ids": ids, "at": AT})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "results": [
            {"subject_id": PERSON, "decision": "restricted", "until": "2028-02-29"},
            {"subject_id": ORG, "decision": "restricted", "until": "2028-02-29"},
            {"subject_id": PERSON2, "decision": "allowed", "until": None},
            {"subject_id": PERSON, "decision": "restricted", "until": "2028-02-29"},
        ]
    }
    batch = r.headers["Socred-Batch"]
    r2 = env.get("/api/v1/receipts", "party", params={"batch_id": batch})
    got = sorted((x["id"], x["subject_id"], x["decision"]) for x in r2.json()["receipts"])
    assert got == sorted(
        [
            (f"{batch}.{i + 1}", s, d)
            for i, (s, d) in enumerate(
                zip(ids, ["restricted", "restricted", "allowed", "restricted"], strict=True)
            )
        ]
    )
    empty = env.post("/api/v1/check/batch", "party", {"activity": "air_travel", "subject_ids": []})
    assert empty.status_code == 200 and empty.json() == {"results": []}


def test_batch_of_ten_thousand(env: Env) -> None:
    env.submit([debtor("j1")])
    ids = [PERSON, PERSON2] * 5000
    r = env.post("/api/v1/check/batch", "party", {"activity": "air_travel", "subject_ids": ids, "at": AT})
    assert r.status_code == 200
    res = r.json()["results"]
    assert len(res) == 10_000
    assert [x["decision"] for x in res[:2]] == ["restricted", "allowed"]
    too_many = env.post(
        "/api/v1/check/batch", "party", {"activity": "air_travel", "subject_ids": [*ids, PERSON]}
    )
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["field"] == "subject_ids"


def test_receipts_reproduce_past_decisions(env: Env) -> None:
    env.submit([debtor("j1")])
    first = check(env)
    env.submit([{"op": "retract", "record_id": "j1", "reason": "entered in error"}])
    second = check(env)
    assert (first.json()["decision"], second.json()["decision"]) == ("restricted", "allowed")
    p = Platform(env.url)
    try:
        for resp in (first, second):
            receipt = get_receipt(p, resp.headers["Socred-Receipt"])
            assert receipt["result"] == resp.json()
            assert receipt["party"] == "air.cn" and receipt["decision"] == resp.json()["decision"]
            assert receipt["ledger_size"] == int(resp.headers["Socred-Ledger-Size"])
            again = reproduce(p, receipt)
            assert again["ledger_intact"] and again["match"], again
            assert again["recomputed"] == resp.json()
        # a forged receipt does not reproduce
        forged = {**get_receipt(p, first.headers["Socred-Receipt"])}
        forged["result"] = {**forged["result"], "decision": "allowed"}
        assert reproduce(p, forged)["match"] is False
    finally:
        p.engine.dispose()
    # over HTTP, for an auditor
    r = env.post(
        f"/api/v1/receipts/{first.headers['Socred-Receipt']}/reproduce",
        "auditor",
        params={"reason": "quarterly audit"},
    )
    assert r.status_code == 200 and r.json()["match"] is True
    # and with the command line
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "socred",
            "--db",
            env.url,
            "receipts",
            "show",
            first.headers["Socred-Receipt"],
            "--reproduce",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["decision"] == "restricted" and shown["reproduction"]["match"] is True


def test_party_sees_only_its_activities(env: Env) -> None:
    r = check(env, activity="rail_first_class")
    assert r.status_code == 403
    r = check(env, activity="rail_first_class", role="party_rail")
    assert r.status_code == 200
    r = env.post("/api/v1/check/batch", "party_rail", {"activity": "air_travel", "subject_ids": [PERSON]})
    assert r.status_code == 403
