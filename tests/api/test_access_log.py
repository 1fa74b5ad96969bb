"""The access log: every read of a subject's non-public data by anyone but the subject, readable by the subject."""

from __future__ import annotations

from tests.api.conftest import Env
from tests.helpers import PERSON, PERSON2, submit


def entries(env: Env, role: str) -> list[dict[str, object]]:
    r = env.get("/api/v1/me/access-log", role)
    assert r.status_code == 200, r.text
    result: list[dict[str, object]] = r.json()["entries"]
    return result


def test_reads_by_others_are_logged_and_shown_to_the_subject_only(env: Env) -> None:
    env.submit([submit("h1", category="DISHONEST_JUDGMENT_DEBTOR")])
    assert entries(env, "subject") == []
    r = env.post(
        "/api/v1/check", "party", {"subject_id": PERSON, "activity": "air_travel", "at": "2026-06-01"}
    )
    receipt = r.headers["Socred-Receipt"]
    env.post("/api/v1/check/batch", "party", {"subject_ids": [PERSON2], "activity": "air_travel"})
    env.get(f"/api/v1/subjects/{PERSON}/report", "reviewer", params={"reason": "objection 17"})
    env.get("/api/v1/ledger/entries", "auditor", params={"reason": "annual audit"})

    mine = entries(env, "subject")
    got = [(e["who"], e["what"], e["why"]) for e in mine]
    assert got == [
        ({"kind": "auditor", "id": "auditor1"}, "ledger", "annual audit"),
        ({"kind": "reviewer", "id": "reviewer1"}, "report", "objection 17"),
        ({"kind": "party", "id": "air.cn"}, "check", "activity check: air_travel"),
    ]
    check_entry = mine[-1]
    assert check_entry["detail"] == {"activity": "air_travel", "decision": "restricted", "receipt": receipt}
    assert all(isinstance(e["at"], str) and e["at"].endswith("Z") for e in mine)
    # the other subject sees only what concerns it
    theirs = entries(env, "subject2")
    assert [(e["who"], e["what"]) for e in theirs] == [({"kind": "party", "id": "air.cn"}, "check")]
    # nobody else reads it through /me
    for role in ("party", "provider", "reviewer", "admin", "auditor"):
        assert env.get("/api/v1/me/access-log", role).status_code == 403
    assert env.get("/api/v1/me/access-log", "anon").status_code == 401
    # the subject's own reads are not logged
    env.get("/api/v1/me/report", "subject")
    assert len(entries(env, "subject")) == 3
    # an auditor may read it, stating why, and that read is logged as well
    r = env.get(f"/api/v1/subjects/{PERSON}/access-log", "auditor", params={"reason": "complaint 9"})
    assert r.status_code == 200 and len(r.json()["entries"]) == 4
    assert entries(env, "subject")[0]["what"] == "access-log"


def test_paging(env: Env) -> None:
    for _ in range(5):
        env.post("/api/v1/check", "party", {"subject_id": PERSON, "activity": "air_travel"})
    r = env.get("/api/v1/me/access-log", "subject", params={"limit": 2})
    page = r.json()
    assert len(page["entries"]) == 2 and page["next_before"] is not None
    r2 = env.get("/api/v1/me/access-log", "subject", params={"limit": 10, "before": page["next_before"]})
    assert len(r2.json()["entries"]) == 3 and r2.json()["next_before"] is None
