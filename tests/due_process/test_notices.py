"""Notices: generated once per placement by the sweep, kept in the outbox, sent when SMTP is configured."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from sqlalchemy import select

from socred.domain import clock
from socred.service import due_process as svc
from socred.service.due_process import DueProcess
from socred.service.platform import Platform
from socred.store import schema_due as td
from tests.api.conftest import Env
from tests.helpers import PERSON, PERSON2, rows, submit

DAY = (clock.today() - timedelta(days=10)).isoformat()


def debtor(rid: str, subject: str) -> dict[str, Any]:
    return submit(rid, subject_id=subject, category="DISHONEST_JUDGMENT_DEBTOR", occurred_on=DAY)


def test_sweep_makes_one_notice_per_placement(env: Env) -> None:
    # records ingested outside the HTTP API (socred ingest) wait for the sweep
    p = Platform(env.url)
    try:
        summary = p.ingest("court", rows([debtor("a", PERSON), debtor("b", PERSON2), submit("h1", PERSON2)]))
        assert summary.accepted == 3
    finally:
        p.engine.dispose()
    r = env.post("/api/v1/notices/sync", "admin")
    assert r.status_code == 200 and r.json() == {"created": 2, "sent": 0}
    assert env.post("/api/v1/notices/sync", "admin").json()["created"] == 0
    # another record keeping PERSON on the same list is no new placement
    env.submit([debtor("c", PERSON)])
    assert env.post("/api/v1/notices/sync", "admin").json()["created"] == 0
    rep = env.get("/api/v1/me/report", "subject2").json()
    (notice,) = rep["notices"]
    assert notice["list"] == "DISHONEST_JUDGMENT_DEBTOR" and notice["delivery"] == "pending"
    assert notice["since"] == DAY and notice["list_kind"] == "black"
    # leaving the list and being placed again gives a new notice
    oid = env.post("/api/v1/me/objections", "subject2", {"record_id": "b", "reason": "x"}).json()["id"]
    assert (
        env.post(
            f"/api/v1/objections/{oid}/decision", "reviewer", {"outcome": "upheld", "reason": "x"}
        ).status_code
        == 200
    )
    env.submit([debtor("b2", PERSON2)])
    assert len(env.get("/api/v1/me/report", "subject2").json()["notices"]) == 2


class FakeSMTP:
    sent: ClassVar[list[Any]] = []

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port = host, port

    def __enter__(self) -> FakeSMTP:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def starttls(self) -> None:
        pass

    def login(self, user: str, password: str) -> None:
        assert (user, password) == ("u", "p")

    def send_message(self, msg: Any) -> None:
        FakeSMTP.sent.append(msg)


def test_outbox_is_delivered_by_email_when_smtp_is_configured(
    senv: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    senv.submit([debtor("a", PERSON), debtor("b", PERSON2)])
    p = Platform(senv.url)
    try:
        dp = DueProcess(p)
        assert dp.sync_notices() == 0  # POST /api/v1/records made them already
        with p.engine.connect() as conn:
            assert len(conn.execute(select(td.notices.c.id)).all()) == 2
        assert dp.deliver() == 0  # no SOCRED_SMTP_URL: nothing sent, nothing changed
        monkeypatch.setattr(svc.smtplib, "SMTP", FakeSMTP)
        monkeypatch.setenv("SOCRED_SMTP_URL", "smtp://u:p@mail.example:2525?from=notices@socred.example")
        assert dp.deliver(recipients={PERSON: "zhang@example.org"}) == 1
        (msg,) = FakeSMTP.sent
        assert msg["To"] == "zhang@example.org" and msg["From"] == "notices@socred.example"
        text = msg.get_content()
        assert "Dishonest persons subject to enforcement" in text and "/api/v1/me/objections" in text
        with p.engine.connect() as conn:
            status = dict(conn.execute(select(td.notices.c.subject_id, td.notices.c.delivery)).all())
            body = json.loads(conn.execute(select(td.notices.c.body)).first()[0])  # type: ignore[index]
        assert status == {PERSON: "sent", PERSON2: "no_address"}
        assert body["legal_basis"]
    finally:
        p.engine.dispose()


def test_http_ingest_makes_the_notice_at_once(env: Env) -> None:
    """A record submitted over HTTP that puts a subject on a list gives a notice before any sweep."""
    env.submit([debtor("a", PERSON), submit("h1", PERSON2)])
    p = Platform(env.url)
    try:
        with p.engine.connect() as conn:
            made = conn.execute(select(td.notices.c.subject_id, td.notices.c.list_code)).all()
    finally:
        p.engine.dispose()
    assert [tuple(r) for r in made] == [(PERSON, "DISHONEST_JUDGMENT_DEBTOR")]
    (notice,) = env.get("/api/v1/me/report", "subject").json()["notices"]
    assert notice["list"] == "DISHONEST_JUDGMENT_DEBTOR" and notice["reasons"][0]["record_id"] == "a"
    assert env.get("/api/v1/me/report", "subject2").json()["notices"] == []
    assert env.post("/api/v1/notices/sync", "admin").json()["created"] == 0
