"""The subject's own report: as a PDF, the disputed marker on every report, isolation, staff reads logged."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pypdf

from socred.domain import clock
from socred.service import report_pdf
from tests.api.conftest import Env
from tests.helpers import PERSON, PERSON2, submit

TODAY = clock.today()


def debtor(rid: str, subject: str = PERSON) -> dict[str, Any]:
    day = (TODAY - timedelta(days=30)).isoformat()
    return submit(rid, subject_id=subject, category="DISHONEST_JUDGMENT_DEBTOR", occurred_on=day)


def pdf_text(body: bytes) -> tuple[int, str]:
    reader = pypdf.PdfReader(io.BytesIO(body))
    return len(reader.pages), "\n".join(p.extract_text() for p in reader.pages)


def test_report_pdf(env: Env) -> None:
    env.submit([debtor("j-001"), submit("h-002"), debtor("k-999", PERSON2)])
    env.post("/api/v1/me/objections", "subject", {"record_id": "h-002", "reason": "not me"})
    r = env.get("/api/v1/me/report.pdf", "subject")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert "attachment" in r.headers["content-disposition"]
    assert r.content.startswith(b"%PDF-") and len(r.content) > 2000
    pages, text = pdf_text(r.content)
    assert pages >= 1
    assert "1101**********002X" in text and PERSON not in text
    assert "j-001" in text and "h-002" in text and "k-999" not in text
    assert "disputed" in text and "DISHONEST_JUDGMENT_DEBTOR" in text
    if report_pdf.cjk_font() is not None:
        assert "信用报告" in text
    # another subject's PDF holds nothing of PERSON's
    _, text2 = pdf_text(env.get("/api/v1/me/report.pdf", "subject2").content)
    assert "k-999" in text2 and "j-001" not in text2 and "h-002" not in text2
    assert env.get("/api/v1/me/report.pdf", "reviewer").status_code == 403
    assert env.get("/api/v1/me/report.pdf", "anon").status_code == 401


def test_pdf_without_a_cjk_font_says_so(monkeypatch: Any) -> None:
    monkeypatch.setattr(report_pdf, "CJK_FONTS", ())
    monkeypatch.delenv("SOCRED_PDF_FONT", raising=False)
    report = {
        "subject_id": PERSON,
        "kind": "person",
        "region": "110105",
        "name": "张三",
        "score": None,
        "score_error": "no catalog",
        "records": [{"record_id": "r-1", "source": "court", "category": "X", "occurred_on": "2026-01-01"}],
    }
    pages, text = pdf_text(report_pdf.render(report, "2026-11-28T00:00:00Z"))
    assert pages == 1 and "No CJK font" in text and "r-1" in text and "张" not in text


def test_disputed_shows_on_the_staff_report_and_staff_reads_are_logged(env: Env) -> None:
    env.submit([debtor("j1"), submit("h1")])
    assert (
        env.post("/api/v1/me/objections", "subject", {"record_id": "j1", "reason": "paid"}).status_code == 201
    )
    r = env.get(f"/api/v1/subjects/{PERSON}/report", "reviewer", params={"reason": "objection review"})
    assert r.status_code == 200, r.text
    disputed = {x["record_id"]: x["disputed"] for x in r.json()["records"]}
    assert disputed == {"j1": True, "h1": False}
    log = env.get("/api/v1/me/access-log", "subject").json()["entries"]
    assert (log[0]["who"], log[0]["what"], log[0]["why"]) == (
        {"kind": "reviewer", "id": "reviewer1"},
        "report",
        "objection review",
    )
    # the other subject's log does not show it, and its report shows nothing of PERSON's
    assert env.get("/api/v1/me/access-log", "subject2").json()["entries"] == []
    other = env.get("/api/v1/me/report", "subject2").json()
    assert other["subject_id"] == PERSON2 and other["records"] == [] and other["objections"] == []
