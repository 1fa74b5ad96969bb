"""``socred lists propose|approve|pending`` in a subprocess: four eyes from the command line too."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import PERSON, TEST_CATALOG
from tests.test_cli import run


def test_lists_commands(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    run(db, "init")
    run(db, "catalog", "load", str(TEST_CATALOG))
    assert json.loads(run(db, "check", PERSON, "air_travel", "--json").stdout)["decision"] == "allowed"
    out = run(
        db, "lists", "propose", PERSON, "DISHONEST_JUDGMENT_DEBTOR", "--action", "add",
        "--reason", "court order", "--by", "alice",
    ).stdout  # fmt: skip
    proposal = json.loads(out)
    assert proposal["status"] == "pending" and proposal["proposed_by"] == "admin:alice"
    pending = [json.loads(x) for x in run(db, "lists", "pending").stdout.splitlines()]
    assert [p["id"] for p in pending] == [proposal["id"]]
    same = run(db, "lists", "approve", proposal["id"], "--by", "alice", "--reason", "ok", check=1)
    assert "another administrator" in same.stderr
    bad = run(
        db, "lists", "propose", PERSON, "NOPE", "--action", "add", "--reason", "x", "--by", "a", check=2
    )
    assert bad.stderr.startswith("list:")
    decided = json.loads(
        run(db, "lists", "approve", proposal["id"], "--by", "bob", "--reason", "seen").stdout
    )
    assert decided["status"] == "approved" and decided["decided_by"] == "admin:bob"
    assert json.loads(run(db, "check", PERSON, "air_travel", "--json").stdout)["decision"] == "restricted"
    score = json.loads(run(db, "score", PERSON, "--json").stdout)
    assert score["score"] == 1000 and score["list_actions"][0]["approved_by"] == "admin:bob"
    assert run(db, "lists", "pending").stdout == ""
