"""Manual list actions over HTTP: four eyes, the ledger names both administrators, checks follow at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from socred.domain import clock
from socred.service.platform import Platform
from tests.api.conftest import Env
from tests.helpers import PERSON, PERSON2, submit

TODAY = clock.today()
LIST = "DISHONEST_JUDGMENT_DEBTOR"


def check(env: Env, subject: str = PERSON, at: str | None = None) -> dict[str, Any]:
    body = {"subject_id": subject, "activity": "air_travel"}
    if at:
        body["at"] = at
    r = env.post("/api/v1/check", "party", body)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def propose(env: Env, action: str = "add", subject: str = PERSON, **extra: Any) -> dict[str, Any]:
    body = {"subject_id": subject, "list": LIST, "action": action, "reason": "court order on paper", **extra}
    r = env.post("/api/v1/list-actions", "admin", body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_manual_add_needs_a_second_administrator(env: Env) -> None:
    env.submit([submit("h1")])  # one honking record: no list
    assert check(env)["decision"] == "allowed"
    proposal = propose(env)
    assert proposal["status"] == "pending" and proposal["proposed_by"] == "admin:admin1"
    assert check(env)["decision"] == "allowed"  # a proposal changes nothing
    # the proposer cannot approve its own proposal
    r = env.post(
        f"/api/v1/list-actions/{proposal['id']}/decision", "admin", {"outcome": "approved", "reason": "ok"}
    )
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "forbidden"
    # nor can a reviewer
    r = env.post(
        f"/api/v1/list-actions/{proposal['id']}/decision", "reviewer", {"outcome": "approved", "reason": "ok"}
    )
    assert r.status_code == 403
    pending = env.get("/api/v1/list-actions", "admin2", params={"status": "pending"}).json()["list_actions"]
    assert [x["id"] for x in pending] == [proposal["id"]]

    score_before = env.get("/api/v1/me/report", "subject").json()["score"]
    r = env.post(
        f"/api/v1/list-actions/{proposal['id']}/decision",
        "admin2",
        {"outcome": "approved", "reason": "seen the order"},
    )
    assert r.status_code == 200, r.text
    decided = r.json()
    assert decided["status"] == "approved" and decided["decided_by"] == "admin:admin2"
    assert decided["effective_from"] == TODAY.isoformat()

    # the relying party's answer changes at once; earlier dates answer as before
    now = check(env)
    assert now["decision"] == "restricted" and now["lists"] == [LIST] and now["until"] is None
    assert check(env, at=(TODAY - timedelta(days=1)).isoformat())["decision"] == "allowed"
    assert check(env, PERSON2)["decision"] == "allowed"

    # one ledger entry naming both administrators and the reason
    r = env.get("/api/v1/ledger/entries", "admin", params={"reason": "test", "limit": 1000})
    entry = r.json()["entries"][-1]
    assert entry["kind"] == "list_action" and entry["actor"] == "admin:admin2"
    body = entry["body"]
    assert body["proposed_by"] == "admin:admin1" and body["approved_by"] == "admin:admin2"
    assert body["reason"] == "court order on paper" and body["list"] == LIST and body["action"] == "add"
    assert decided["ledger_seq"] == entry["seq"]

    # the score never changes; the explanation names the action
    rep = env.get("/api/v1/me/report", "subject").json()
    assert (
        rep["score"]["score"] == score_before["score"]
        and rep["score"]["contributions"] == score_before["contributions"]
    )
    (membership,) = rep["score"]["lists"]
    assert membership["code"] == LIST and membership["records"] == []
    expl = membership["manual"]["explanation"]
    assert "manual list action by admin1 approved by admin2, court order on paper" in expl
    assert set(rep["score"]["measures"]) == {"NO_AIR_TRAVEL", "NO_HSR_FIRST_CLASS"}
    (restriction,) = rep["restrictions"]
    assert any("admin2" in x for x in restriction["what_lifts_it"])
    # the subject was told
    (notice,) = rep["notices"]
    assert notice["list"] == LIST and notice["reasons"] == [{"manual": expl}]

    # deciding twice
    r = env.post(
        f"/api/v1/list-actions/{proposal['id']}/decision", "admin2", {"outcome": "refused", "reason": "x"}
    )
    assert r.status_code == 409

    # ledger replay rebuilds the manual action table; receipts reproduce
    p = Platform(env.url)
    try:
        assert p.verify_ledger().ok
        p.rebuild_projections()
        assert p.check(PERSON, "air_travel").decision == "restricted"
        assert p.check(PERSON, "air_travel", at=TODAY - timedelta(days=1)).decision == "allowed"
    finally:
        p.engine.dispose()
    receipt = env.post("/api/v1/check", "party", {"subject_id": PERSON, "activity": "air_travel"})
    rid = receipt.headers["Socred-Receipt"]
    r = env.post(f"/api/v1/receipts/{rid}/reproduce", "auditor", params={"reason": "test"})
    assert r.status_code == 200, r.text
    assert r.json()["match"] is True and r.json()["recomputed"]["decision"] == "restricted"


def test_manual_removal_lifts_a_rule_based_restriction_until_a_date(env: Env) -> None:
    env.submit([submit("j1", category=LIST, occurred_on=(TODAY - timedelta(days=10)).isoformat())])
    assert check(env)["decision"] == "restricted"
    until = (TODAY + timedelta(days=30)).isoformat()
    proposal = propose(env, "remove", until=until)
    r = env.post(
        f"/api/v1/list-actions/{proposal['id']}/decision", "admin2", {"outcome": "approved", "reason": "ok"}
    )
    assert r.status_code == 200, r.text
    assert check(env)["decision"] == "allowed"
    assert check(env, at=until)["decision"] == "restricted"  # the action ended
    rep = env.get("/api/v1/me/report", "subject").json()
    assert rep["score"]["lists"] == []
    (action,) = rep["score"]["list_actions"]
    assert action["action"] == "remove" and action["until"] == until
    assert "removed from" in action["explanation"] and "approved by admin2" in action["explanation"]


def test_refusal_changes_nothing_and_appends_no_entry(env: Env) -> None:
    proposal = propose(env)
    size = env.get("/api/v1/ledger/checkpoint", "anon").json()["size"]
    r = env.post(
        f"/api/v1/list-actions/{proposal['id']}/decision",
        "admin2",
        {"outcome": "refused", "reason": "no order"},
    )
    assert r.status_code == 200 and r.json()["status"] == "refused"
    assert env.get("/api/v1/ledger/checkpoint", "anon").json()["size"] == size
    assert check(env)["decision"] == "allowed"


def test_list_action_input_is_validated(env: Env) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"subject_id": "123", "list": LIST, "action": "add", "reason": "x"}, "subject_id"),
        ({"subject_id": PERSON, "list": "NO_SUCH_LIST", "action": "add", "reason": "x"}, "list"),
        ({"subject_id": PERSON, "list": LIST, "action": "ban", "reason": "x"}, "action"),
        ({"subject_id": PERSON, "list": LIST, "action": "add", "reason": ""}, "reason"),
        (
            {"subject_id": PERSON, "list": LIST, "action": "add", "reason": "x", "until": TODAY.isoformat()},
            "until",
        ),
        ({"subject_id": PERSON, "list": LIST, "action": "add", "reason": "x", "until": "tomorrow"}, "until"),
        ({"subject_id": PERSON, "list": LIST, "action": "add", "reason": "x", "extra": 1}, "extra"),
    ]
    for body, field in cases:
        r = env.post("/api/v1/list-actions", "admin", body)
        assert r.status_code == 422, (body, r.text)
        assert field in r.text, (field, r.text)
    assert (
        "11010519491231002X"[:-1]
        not in env.post(
            "/api/v1/list-actions",
            "admin",
            {"subject_id": PERSON[:-1] + "1", "list": LIST, "action": "add", "reason": "x"},
        ).text
    )
    r = env.post("/api/v1/list-actions/la_nothing/decision", "admin2", {"outcome": "approved", "reason": "x"})
    assert r.status_code == 404
    for role, want in [("reviewer", 403), ("subject", 403), ("party", 403), ("anon", 401)]:
        body = {"subject_id": PERSON, "list": LIST, "action": "add", "reason": "x"}
        assert env.post("/api/v1/list-actions", role, body).status_code == want, role
        assert env.get("/api/v1/list-actions", role).status_code == want, role
