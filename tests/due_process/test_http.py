"""Due process end to end over HTTP, on SQLite and PostgreSQL: objections, appeals, repair, notices."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from socred.domain import clock
from socred.service.due_process import DueProcess
from socred.service.platform import Platform
from tests.api.conftest import Env
from tests.helpers import PERSON, PERSON2, submit

TODAY = clock.today()


def ago(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


def debtor(record_id: str = "j1", subject: str = PERSON, days_ago: int = 30) -> dict[str, Any]:
    return submit(
        record_id, subject_id=subject, category="DISHONEST_JUDGMENT_DEBTOR", occurred_on=ago(days_ago)
    )


def check(env: Env, at: str | None = None) -> str:
    body = {"subject_id": PERSON, "activity": "air_travel"}
    if at:
        body["at"] = at
    r = env.post("/api/v1/check", "party", body)
    assert r.status_code == 200, r.text
    decision: str = r.json()["decision"]
    return decision


def report(env: Env, role: str = "subject") -> dict[str, Any]:
    r = env.get("/api/v1/me/report", role)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def record(rep: dict[str, Any], record_id: str) -> dict[str, Any]:
    return next(r for r in rep["records"] if r["record_id"] == record_id)


def ledger_tail(env: Env, n: int = 5) -> list[dict[str, Any]]:
    r = env.get("/api/v1/ledger/entries", "admin", params={"reason": "due process test", "limit": 1000})
    assert r.status_code == 200, r.text
    entries: list[dict[str, Any]] = r.json()["entries"]
    return entries[-n:]


def test_upheld_objection_retracts_at_once_and_the_ledger_names_the_reviewer(env: Env) -> None:
    env.submit([debtor()])
    assert check(env) == "restricted"
    before = report(env)
    assert before["score"]["score"] == 900
    assert record(before, "j1")["disputed"] is False
    # the report explains the restriction and carries the notice of the placement
    (restriction,) = before["restrictions"]
    assert restriction["list"] == "DISHONEST_JUDGMENT_DEBTOR"
    assert any("credit repair" in x for x in restriction["what_lifts_it"])
    (notice,) = before["notices"]
    assert notice["list"] == "DISHONEST_JUDGMENT_DEBTOR"
    assert {m["code"] for m in notice["measures"]} == {"NO_AIR_TRAVEL", "NO_HSR_FIRST_CLASS"}
    assert notice["reasons"][0]["record_id"] == "j1" and notice["legal_basis"]
    assert "objections" in notice["how_to_object"] and "repairs" in notice["how_to_repair"]

    r = env.post("/api/v1/me/objections", "subject", {"record_id": "j1", "reason": "I paid in full"})
    assert r.status_code == 201, r.text
    filed = r.json()
    assert filed["status"] == "open"
    assert filed["due_by"] == (TODAY + timedelta(days=15)).isoformat()
    assert record(report(env), "j1")["disputed"] is True
    # a second objection to the same record while one is open
    assert (
        env.post("/api/v1/me/objections", "subject", {"record_id": "j1", "reason": "again"}).status_code
        == 409
    )

    r = env.post(
        f"/api/v1/objections/{filed['id']}/decision", "reviewer", {"outcome": "upheld", "reason": "paid"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "upheld"
    assert check(env) == "allowed"
    after = report(env)
    assert after["score"]["score"] == 1000 and after["score"]["lists"] == []
    rec = record(after, "j1")
    assert rec["retracted"] is True and rec["disputed"] is False
    assert after["objections"][0]["decided_by"] == "reviewer:reviewer1"
    tail = ledger_tail(env, 2)
    assert [(e["kind"], e["actor"]) for e in tail] == [
        ("retract", "reviewer:reviewer1"),
        ("objection.decided", "reviewer:reviewer1"),
    ]
    assert tail[0]["body"]["source"] == "court" and tail[0]["body"]["record_id"] == "j1"
    assert tail[1]["body"]["outcome"] == "upheld" and tail[1]["body"]["reason"] == "paid"
    # deciding twice
    again = env.post(
        f"/api/v1/objections/{filed['id']}/decision", "reviewer2", {"outcome": "rejected", "reason": "x"}
    )
    assert again.status_code == 409
    # the ledger still verifies and the projection can be rebuilt from it alone
    p = Platform(env.url)
    try:
        assert p.verify_ledger().ok
        p.rebuild_projections()
        assert p.check(PERSON, "air_travel").decision == "allowed"
    finally:
        p.engine.dispose()


def test_appeal_needs_a_second_reviewer(env: Env) -> None:
    env.submit([debtor()])
    oid = env.post("/api/v1/me/objections", "subject", {"record_id": "j1", "reason": "wrong"}).json()["id"]
    # an open objection cannot be appealed yet
    assert env.post(f"/api/v1/me/objections/{oid}/appeal", "subject", {"reason": "x"}).status_code == 409
    r = env.post(
        f"/api/v1/objections/{oid}/decision", "reviewer", {"outcome": "rejected", "reason": "the debt stands"}
    )
    assert r.status_code == 200, r.text
    rep = report(env)
    assert rep["objections"][0]["decision_reason"] == "the debt stands"
    assert check(env) == "restricted"
    # another subject cannot appeal it
    assert env.post(f"/api/v1/me/objections/{oid}/appeal", "subject2", {"reason": "x"}).status_code == 404
    r = env.post(f"/api/v1/me/objections/{oid}/appeal", "subject", {"reason": "here is the receipt"})
    assert r.status_code == 201, r.text
    appeal = r.json()
    assert appeal["status"] == "open" and appeal["id"] != oid
    assert record(report(env), "j1")["disputed"] is True
    # one appeal only
    assert env.post(f"/api/v1/me/objections/{oid}/appeal", "subject", {"reason": "y"}).status_code == 409
    r = env.post(
        f"/api/v1/objections/{appeal['id']}/decision", "reviewer", {"outcome": "upheld", "reason": "x"}
    )
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "forbidden"
    assert check(env) == "restricted"
    r = env.post(
        f"/api/v1/objections/{appeal['id']}/decision",
        "reviewer2",
        {"outcome": "upheld", "reason": "receipt ok"},
    )
    assert r.status_code == 200, r.text
    assert check(env) == "allowed"
    entry = ledger_tail(env, 1)[0]
    assert entry["actor"] == "reviewer:reviewer2" and entry["body"]["appeal_of"] == oid


def test_objections_only_to_own_records(env: Env) -> None:
    env.submit([debtor(), debtor("k9", subject=PERSON2)])
    r = env.post("/api/v1/me/objections", "subject2", {"record_id": "j1", "reason": "not mine"})
    assert r.status_code == 404, r.text
    r = env.post("/api/v1/me/objections", "subject", {"record_id": "k9", "reason": "not mine"})
    assert r.status_code == 404
    assert (
        env.post("/api/v1/me/objections", "reviewer", {"record_id": "j1", "reason": "x"}).status_code == 403
    )
    assert env.post("/api/v1/me/objections", "anon", {"record_id": "j1", "reason": "x"}).status_code == 401
    r = env.post("/api/v1/me/objections", "subject", {"record_id": "j1", "reason": ""})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "reason"
    # a reviewer cannot decide an objection that does not exist
    r = env.post("/api/v1/objections/ob_nothing/decision", "reviewer", {"outcome": "upheld", "reason": "x"})
    assert r.status_code == 404


def test_same_record_id_from_two_providers_needs_a_source(senv: Env) -> None:
    p = Platform(senv.url)
    key = p.add_provider("traffic", "Traffic police", ["TRAFFIC_HONKING", "DISHONEST_JUDGMENT_DEBTOR"])
    p.engine.dispose()
    senv.keys["traffic"] = key
    senv.submit([debtor("x1")])
    senv.submit([submit("x1", occurred_on=ago(5))], role="traffic")
    r = senv.post("/api/v1/me/objections", "subject", {"record_id": "x1", "reason": "which?"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "source"
    r = senv.post(
        "/api/v1/me/objections", "subject", {"record_id": "x1", "reason": "wrong", "source": "traffic"}
    )
    assert r.status_code == 201, r.text
    disputed = {(x["source"], x["disputed"]) for x in report(senv)["records"]}
    assert disputed == {("court", False), ("traffic", True)}


def test_repair_before_the_minimum_period_is_refused_with_the_date(env: Env) -> None:
    env.submit([debtor(days_ago=30)])
    r = env.post("/api/v1/me/repairs", "subject", {"record_id": "j1", "commitment": "I will pay on time"})
    assert r.status_code == 422, r.text
    err = r.json()["detail"][0]
    when = (TODAY - timedelta(days=30) + timedelta(days=90)).isoformat()
    assert err["field"] == "record_id" and err["eligible_on"] == when and when in err["reason"]
    assert record(report(env), "j1")["repair_eligible_on"] == when


def test_approved_repair_lifts_the_restriction_from_the_decision_date(env: Env) -> None:
    env.submit([debtor(days_ago=100)])
    assert check(env) == "restricted"
    r = env.post("/api/v1/me/repairs", "subject", {"record_id": "j1", "commitment": "I will pay on time"})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    # not before the provider confirms the obligation fulfilled
    r = env.post(f"/api/v1/repairs/{rid}/decision", "reviewer", {"outcome": "approved", "reason": "ok"})
    assert r.status_code == 409
    assert env.post(f"/api/v1/repairs/{rid}/confirmation", "provider2").status_code == 404  # not its record
    assert env.post(f"/api/v1/repairs/{rid}/confirmation", "subject").status_code == 403
    r = env.post(f"/api/v1/repairs/{rid}/confirmation", "provider")
    assert r.status_code == 200 and r.json()["confirmed_by"] == "provider:court"
    r = env.post(
        f"/api/v1/repairs/{rid}/decision", "reviewer", {"outcome": "approved", "reason": "debt paid"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["repaired_on"] == TODAY.isoformat()
    assert check(env) == "allowed"
    assert check(env, at=(TODAY - timedelta(days=1)).isoformat()) == "restricted"
    rep = report(env)
    assert record(rep, "j1")["repaired_on"] == TODAY.isoformat()
    assert rep["repairs"][0]["status"] == "approved"
    tail = ledger_tail(env, 2)
    assert [(e["kind"], e["actor"]) for e in tail] == [
        ("repair", "reviewer:reviewer1"),
        ("repair.decided", "reviewer:reviewer1"),
    ]
    assert tail[0]["body"]["repaired_on"] == TODAY.isoformat()


def test_overdue_objections_are_flagged_to_staff(env: Env) -> None:
    env.submit([debtor(), debtor("j2")])
    p = Platform(env.url)
    try:
        sid = p.parse_subject(PERSON)
        old = DueProcess(p).file_objection(sid, "j1", "late", today=TODAY - timedelta(days=20))
    finally:
        p.engine.dispose()
    fresh = env.post("/api/v1/me/objections", "subject", {"record_id": "j2", "reason": "new"}).json()
    r = env.get("/api/v1/objections", "admin", params={"status": "open", "overdue": "true"})
    assert r.status_code == 200, r.text
    assert [o["id"] for o in r.json()["objections"]] == [old.id]
    assert r.json()["overdue"] == 1
    r = env.get("/api/v1/objections", "reviewer", params={"status": "open"})
    assert {o["id"] for o in r.json()["objections"]} == {old.id, fresh["id"]}
    assert env.get("/api/v1/objections", "subject").status_code == 403
