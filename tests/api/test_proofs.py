"""Inclusion and consistency proofs: served by the CLI and the API, verified offline without the
database; a history rewritten behind the application's back (every hash recomputed) fails the
consistency proof from a checkpoint kept earlier."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from socred.service import proofs
from socred.service.auth import LedgerSigner, ledger_checkpoint
from socred.service.platform import Platform
from tests.api.conftest import Env
from tests.conftest import CATALOGS
from tests.helpers import PERSON, rows, tamper_ledger

SIGNING_KEY = "11" * 32


def _cli(db: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "socred", "--db", str(db), *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**__import__("os").environ, "SOCRED_SIGNING_KEY": SIGNING_KEY},
        timeout=120,
    )


def _ledger(tmp_path: Path, n: int) -> tuple[Platform, Path]:
    db = tmp_path / "p.db"
    p = Platform(f"sqlite:///{db}")
    p.init()
    p.load_catalog_file(CATALOGS / "national.yaml")
    p.add_provider("court", "Court", ["CONTRACT_BREACH_JUDGMENT"])
    ops = [
        {
            "op": "submit",
            "record_id": f"r{i}",
            "subject_id": PERSON,
            "subject_name": "张三",
            "category": "CONTRACT_BREACH_JUDGMENT",
            "occurred_on": "2026-01-01",
        }
        for i in range(n)
    ]
    assert p.ingest("court", rows(ops)).accepted == n
    return p, db


def test_cli_prove_and_check_offline(tmp_path: Path) -> None:
    p, db = _ledger(tmp_path, 300)
    size = p.head()[0]
    r = _cli(db, "ledger", "prove", "150", "--entry")
    assert r.returncode == 0, r.stderr
    proof = json.loads(r.stdout)
    assert proof["tree_size"] == size and proof["checkpoint"]["size"] == size and len(proof["path"]) == 9
    public = proof["checkpoint"]["public_key"]
    (tmp_path / "proof.json").write_text(r.stdout)
    # the verifier needs no database: run it where there is none
    ok = _cli(
        tmp_path / "absent.db", "ledger", "check-proof", str(tmp_path / "proof.json"), "--public-key", public
    )
    assert ok.returncode == 0 and json.loads(ok.stdout) == {
        "ok": True,
        "type": "inclusion",
        "seq": 150,
        "tree_size": size,
        "key_id": proof["checkpoint"]["key_id"],
        "key_trusted": True,
    }
    assert not (tmp_path / "absent.db").exists()
    for mutate, reason in [
        (lambda d: d["path"].__setitem__(2, "00" * 32), "does not lead to the checkpoint's Merkle root"),
        (
            lambda d: d["entry"].__setitem__("actor", "tax"),
            "content does not hash to the entry hash of seq 150",
        ),
        (lambda d: d["checkpoint"].__setitem__("merkle_root", "00" * 32), "signature does not verify"),
    ]:
        bad = json.loads(r.stdout)
        mutate(bad)
        out = _cli(tmp_path / "absent.db", "ledger", "check-proof", "-", stdin=json.dumps(bad))
        assert out.returncode == 1 and reason in json.loads(out.stdout)["reason"]
    other = _cli(
        tmp_path / "absent.db",
        "ledger",
        "check-proof",
        str(tmp_path / "proof.json"),
        "--public-key",
        "A" * 43 + "=",
    )
    assert other.returncode == 1 and "another key" in json.loads(other.stdout)["reason"]
    p.engine.dispose()


def test_rewritten_history_fails_the_consistency_proof(tmp_path: Path) -> None:
    p, db = _ledger(tmp_path, 600)
    signer = LedgerSigner.load(p.engine, SIGNING_KEY)
    kept = ledger_checkpoint(p, signer)  # an outsider keeps this checkpoint
    assert p.ingest(
        "court",
        rows(
            [
                {
                    "op": "submit",
                    "record_id": "later",
                    "subject_id": PERSON,
                    "subject_name": "张三",
                    "category": "CONTRACT_BREACH_JUDGMENT",
                    "occurred_on": "2026-02-01",
                }
            ]
        ),
    ).accepted
    honest = proofs.prove_consistency(p, signer, kept["size"])
    assert proofs.check_proof(honest, kept["public_key"], kept)["ok"]
    # an operator edits entry 10 and recomputes every hash after it, so the chain verifies again
    tamper_ledger(f"sqlite:///{db}", 10, edit=lambda s: s.replace("2026-01-01", "2025-01-01"), rehash=True)
    with sqlite3.connect(db) as c:
        c.execute("DELETE FROM merkle_nodes")  # and the cached tree, so it is recomputed from the new hashes
    assert p.verify_ledger().ok  # the chain alone cannot tell
    forged = proofs.prove_consistency(p, signer, kept["size"])
    result = proofs.check_proof(forged, kept["public_key"], kept)
    assert not result["ok"] and "history was rewritten" in result["reason"]
    p.engine.dispose()


def test_api_proofs(env: Env) -> None:
    for i in range(3):
        env.submit(
            [
                {
                    "record_id": f"j{i}",
                    "subject_id": PERSON,
                    "subject_name": "张三",
                    "category": "TRAFFIC_HONKING",
                    "occurred_on": "2026-03-01",
                }
            ]
        )
    cp = env.get("/api/v1/ledger/checkpoint", "anon").json()
    r = env.get("/api/v1/ledger/proof", "anon", params={"seq": 2})
    assert r.status_code == 200, r.text
    proof: dict[str, Any] = r.json()
    assert "entry" not in proof  # no content on the public endpoint
    assert proofs.check_proof(proof, cp["public_key"])["ok"]
    c = env.get("/api/v1/ledger/consistency", "anon", params={"first": 1}).json()
    assert proofs.check_proof(c, cp["public_key"])["ok"]
    assert env.get("/api/v1/ledger/proof", "anon", params={"seq": 10_000}).status_code == 404
    assert env.get("/api/v1/ledger/proof", "anon", params={"seq": 0}).status_code == 422
