"""The signed-in portal pages: sign-in by session token (an HttpOnly, SameSite=Strict cookie), the
subject's own report with its PDF, the review queues with overdue flags, staff reads logged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from socred.domain import clock
from socred.portal.routes import CSP
from socred.service.due_process import DueProcess
from socred.service.platform import Platform
from tests.api.conftest import Env
from tests.helpers import PERSON, PERSON2, submit

TODAY = clock.today()


def debtor(rid: str, subject: str = PERSON) -> dict[str, Any]:
    day = (TODAY - timedelta(days=30)).isoformat()
    return submit(rid, subject_id=subject, category="DISHONEST_JUDGMENT_DEBTOR", occurred_on=day)


def sign_in(env: Env, role: str) -> Any:
    env.client.cookies.clear()
    r = env.client.post("/signin", data={"token": env.keys[role]}, follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    return r


def test_subject_signs_in_and_reads_its_own_report(senv: Env) -> None:
    senv.submit([debtor("j-001"), submit("h-002"), debtor("k-999", PERSON2)])
    senv.post("/api/v1/me/objections", "subject", {"record_id": "h-002", "reason": "not me"})
    senv.get(f"/api/v1/subjects/{PERSON}/report", "reviewer", params={"reason": "case 42"})
    # not signed in: to the sign-in page
    senv.client.cookies.clear()
    r = senv.client.get("/me", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    page = senv.client.get("/signin")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    assert "<script" not in page.text and 'name="token"' in page.text

    r = sign_in(senv, "subject")
    assert r.headers["location"] == "/me"
    page = senv.client.get("/me?lang=en")
    assert page.status_code == 200, page.text
    assert page.headers["content-security-policy"] == CSP and "<script" not in page.text
    text = page.text
    assert "j-001" in text and "h-002" in text and "k-999" not in text and "360426" not in text
    assert "disputed" in text and "What would lift it" in text and "/me/report.pdf" in text
    assert "reviewer1" in text and "case 42" in text  # the reviewer's read, in the access log
    zh = senv.client.get("/me?lang=zh").text
    assert "我的信用报告" in zh and "有异议" in zh
    pdf = senv.client.get("/me/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert pdf.headers["content-type"] == "application/pdf"
    # a subject cannot open the staff pages
    assert senv.client.get("/review").status_code == 403
    # signing out forgets the cookie
    senv.client.post("/signout", follow_redirects=False)
    senv.client.cookies.clear()
    assert senv.client.get("/me", follow_redirects=False).status_code == 303


def test_bad_tokens_do_not_sign_in(senv: Env) -> None:
    for data in [{"token": "junk"}, {"token": senv.keys["expired"]}, {"token": senv.keys["forged"]}, {}]:
        senv.client.cookies.clear()
        r = senv.client.post("/signin", data=data, follow_redirects=False)
        assert r.status_code == 401, data
        assert "set-cookie" not in r.headers
    # API keys are not session tokens
    r = senv.client.post("/signin", data={"token": senv.keys["party"]}, follow_redirects=False)
    assert r.status_code == 401
    r = senv.client.post(
        "/signin", content=b"\xff\x00garbage", headers={"content-type": "multipart/form-data"}
    )
    assert r.status_code == 401
    # another site's form cannot sign a browser in
    r = senv.client.post(
        "/signin",
        data={"token": senv.keys["subject"]},
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and "set-cookie" not in r.headers
    r = senv.client.post(
        "/signin",
        data={"token": senv.keys["subject"]},
        headers={"sec-fetch-site": "cross-site", "origin": "null"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and "set-cookie" not in r.headers
    r = senv.client.post(
        "/signin",
        data={"token": senv.keys["subject"]},
        headers={"origin": "http://testserver"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    senv.client.cookies.clear()
    senv.client.cookies.set("socred_session", "x" * 10_000)
    assert senv.client.get("/me", follow_redirects=False).status_code == 303


def test_review_queues_flag_overdue_cases(senv: Env) -> None:
    senv.submit([debtor("j1"), debtor("j2"), debtor("old", PERSON2)])
    p = Platform(senv.url)
    try:
        dp = DueProcess(p)
        late = dp.file_objection(p.parse_subject(PERSON2), "old", "late", today=TODAY - timedelta(days=20))
    finally:
        p.engine.dispose()
    fresh = senv.post("/api/v1/me/objections", "subject", {"record_id": "j1", "reason": "x"}).json()
    body = {"subject_id": PERSON, "list": "HONOR_ROLL", "action": "add", "reason": "award"}
    assert senv.post("/api/v1/list-actions", "admin", body).status_code == 201

    sign_in(senv, "reviewer")
    page = senv.client.get("/review?lang=en")
    assert page.status_code == 200, page.text
    assert late.id in page.text and fresh["id"] in page.text
    assert "1 overdue" in page.text and 'class="overdue"' in page.text
    assert page.text.index(late.id) < page.text.index(fresh["id"])  # by due date
    assert "HONOR_ROLL" not in page.text  # list actions are for administrators
    assert senv.client.get("/me").status_code == 403

    # a staff read through the portal is logged under the reviewer's name
    form = senv.client.get("/review/subject")
    assert form.status_code == 200 and 'method="post"' in form.text
    r = senv.client.post("/review/subject", data={"subject_id": PERSON, "reason": ""})
    assert r.status_code == 422
    r = senv.client.post("/review/subject", data={"subject_id": "123", "reason": "x"})
    assert r.status_code == 422
    r = senv.client.post("/review/subject", data={"subject_id": PERSON, "reason": "objection check"})
    assert r.status_code == 200 and "j2" in r.text
    log = senv.get("/api/v1/me/access-log", "subject").json()["entries"]
    assert (log[0]["who"], log[0]["why"]) == ({"kind": "reviewer", "id": "reviewer1"}, "objection check")

    sign_in(senv, "admin")
    page = senv.client.get("/review?lang=zh")
    assert page.status_code == 200 and "HONOR_ROLL" in page.text and "已逾期" in page.text
