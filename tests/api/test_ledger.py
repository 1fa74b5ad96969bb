"""The signed ledger checkpoint, over HTTP and on the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from socred.service.auth import verify_checkpoint
from tests.api.conftest import Env
from tests.helpers import submit


def test_checkpoint_is_signed_and_follows_the_head(env: Env) -> None:
    r = env.get("/api/v1/ledger/checkpoint", "anon")
    assert r.status_code == 200
    cp = r.json()
    assert cp["size"] == 1 and cp["algorithm"] == "Ed25519" and len(cp["root_hash"]) == 64
    assert verify_checkpoint(cp)
    assert not verify_checkpoint({**cp, "size": 2})
    assert not verify_checkpoint({**cp, "root_hash": "0" * 64})
    env.submit([submit("x1")])
    cp2 = env.get("/api/v1/ledger/checkpoint", "anon").json()
    assert cp2["size"] == 2 and cp2["key_id"] == cp["key_id"] and verify_checkpoint(cp2)
    # the key is generated once and kept: the command line signs with the same one
    out = subprocess.run(
        [sys.executable, "-m", "socred", "--db", env.url, "ledger", "checkpoint"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == cp2
    verify = env.get("/api/v1/ledger/verify", "auditor").json()
    assert verify["ok"] is True and verify["entries"] == 2 and verify["head"] == cp2["root_hash"]


def test_signing_key_from_the_environment(env: Env) -> None:
    seed = Ed25519PrivateKey.generate().private_bytes_raw().hex()
    out = subprocess.run(
        [sys.executable, "-m", "socred", "--db", env.url, "ledger", "checkpoint"],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "SOCRED_SIGNING_KEY": seed, "SOCRED_ORIGIN": "test.ledger"},
    )
    cp = json.loads(out.stdout)
    assert cp["origin"] == "test.ledger" and verify_checkpoint(cp)
    assert cp["key_id"] != env.get("/api/v1/ledger/checkpoint", "anon").json()["key_id"]


def test_ledger_entries_page(env: Env) -> None:
    env.submit([submit(f"p{i}") for i in range(5)])
    r = env.get("/api/v1/ledger/entries", "admin", params={"reason": "paging test", "limit": 4})
    page = r.json()
    assert [e["seq"] for e in page["entries"]] == [1, 2, 3, 4] and page["next_after"] == 4
    r = env.get("/api/v1/ledger/entries", "admin", params={"reason": "paging test", "after": 4, "limit": 4})
    assert [e["seq"] for e in r.json()["entries"]] == [5, 6] and r.json()["next_after"] is None


def test_init_makes_the_signing_key_outside_the_database(tmp_path: Path) -> None:
    import hashlib
    import sqlite3
    import stat

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    db = tmp_path / "k.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCRED_SIGNING")}
    run = [sys.executable, "-m", "socred", "--db", str(db)]
    assert subprocess.run([*run, "init"], capture_output=True, text=True, env=env).returncode == 0
    key_file = tmp_path / "k.db.ledger-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    seed = bytes.fromhex(key_file.read_text().strip())
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    out = subprocess.run([*run, "ledger", "checkpoint"], capture_output=True, text=True, env=env)
    cp = json.loads(out.stdout)
    assert cp["key_id"] == hashlib.sha256(raw).hexdigest()[:16] and verify_checkpoint(cp)
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT count(*) FROM keystore WHERE name = 'ledger_signing_key'").fetchone() == (0,)
    # running init again keeps the key
    assert subprocess.run([*run, "init"], capture_output=True, text=True, env=env).returncode == 0
    assert bytes.fromhex(key_file.read_text().strip()) == seed
