"""The command-line companions: parties, key rotation, tokens, receipts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from socred.api.app import create_app
from socred.api.settings import Settings
from tests.helpers import PERSON, TEST_CATALOG


def socred(db: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "socred", "--db", db, *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_parties_tokens_and_rotation(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    assert socred(db, "init").returncode == 0
    assert socred(db, "catalog", "load", str(TEST_CATALOG)).returncode == 0
    r = socred(db, "parties", "add", "air.cn", "--name", "China Air", "--activities", "air_travel")
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip()
    assert key.startswith("rp_") and key not in (tmp_path / "c.db").read_bytes().decode("latin-1")
    bad = socred(db, "parties", "add", "Bad Code", "--name", "x", "--activities", "air_travel")
    assert bad.returncode == 2 and "party code" in bad.stderr
    unknown = socred(db, "parties", "add", "hotel", "--name", "x", "--activities", "sauna")
    assert unknown.returncode == 2 and "unknown activity 'sauna'" in unknown.stderr
    listed = [json.loads(x) for x in socred(db, "parties", "list").stdout.splitlines()]
    assert listed[0]["code"] == "air.cn" and listed[0]["activities"] == ["air_travel"]

    admin = socred(db, "tokens", "issue", "alice", "--role", "admin", "--ttl", "15m").stdout.strip()
    subject = socred(db, "tokens", "issue", PERSON.lower(), "--role", "subject").stdout.strip()
    assert socred(db, "tokens", "issue", "alice", "--role", "king").returncode == 2
    assert socred(db, "tokens", "issue", PERSON[:-1] + "7", "--role", "subject").returncode == 2
    assert socred(db, "tokens", "issue", "alice", "--role", "admin", "--ttl", "90d").returncode == 2

    app = create_app(Settings(db=db, access_log=False))  # token secret generated once, kept in the database
    with TestClient(app) as client:

        def get(path: str, token: str) -> int:
            return client.get(path, headers={"Authorization": f"Bearer {token}"}).status_code

        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {subject}"}).json()
        assert me["kind"] == "subject" and me["id"] == PERSON
        assert get("/api/v1/admin/parties", admin) == 200
        body = {"subject_id": PERSON, "activity": "air_travel"}
        assert (
            client.post("/api/v1/check", json=body, headers={"Authorization": f"Bearer {key}"}).status_code
            == 200
        )

        rotated = socred(db, "parties", "rotate", "air.cn").stdout.strip()
        assert (
            client.post("/api/v1/check", json=body, headers={"Authorization": f"Bearer {key}"}).status_code
            == 401
        )
        r = client.post("/api/v1/check", json=body, headers={"Authorization": f"Bearer {rotated}"})
        assert r.status_code == 200
        receipt = r.headers["Socred-Receipt"]
        assert socred(db, "parties", "revoke", "air.cn").returncode == 0
        assert (
            client.post(
                "/api/v1/check", json=body, headers={"Authorization": f"Bearer {rotated}"}
            ).status_code
            == 401
        )
        assert socred(db, "parties", "revoke", "nobody").returncode == 2

    shown = json.loads(socred(db, "receipts", "show", receipt).stdout)
    assert shown["id"] == receipt and shown["party"] == "air.cn" and shown["decision"] == "allowed"
    assert socred(db, "receipts", "show", "rc_nope").returncode == 2
    listed = [json.loads(x) for x in socred(db, "receipts", "list", "--subject", PERSON).stdout.splitlines()]
    assert [x["id"] for x in listed] == [receipt, *[x["id"] for x in listed[1:]]] and len(listed) == 2

    pk = socred(
        db, "providers", "add", "court", "--name", "Court", "--categories", "TRAFFIC_HONKING"
    ).stdout.strip()
    new = socred(db, "providers", "rotate", "court").stdout.strip()
    assert new.startswith("sp_") and new != pk
    assert socred(db, "providers", "revoke", "court").returncode == 0
    assert json.loads(socred(db, "providers", "list").stdout)["revoked"] is True
    assert socred(db, "providers", "rotate", "nobody").returncode == 2
