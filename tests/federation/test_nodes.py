"""Three real nodes: two local nodes ingest, the national node syncs, scores and checks agree with a
single node holding every record; national lists flow back down; tampering is refused; a sync killed
mid-way loses and duplicates nothing.

Every node is its own database and its own ``socred serve`` process on a loopback port; syncing runs
the real ``socred sync`` command.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from socred.demo import person_id, person_name
from socred.service import auth, federation
from socred.service.platform import Platform
from tests.api.test_server import free_port
from tests.conftest import CATALOGS
from tests.helpers import rows, tamper_ledger

TODAY = date.today()
PROVIDERS = {
    "court.31": ["DISHONEST_JUDGMENT_DEBTOR", "CONTRACT_BREACH_JUDGMENT"],
    "court.37": ["DISHONEST_JUDGMENT_DEBTOR", "CONTRACT_BREACH_JUDGMENT"],
    "civil.31": ["VOLUNTEER_SERVICE", "BLOOD_DONATION"],
    "civil.37": ["VOLUNTEER_SERVICE", "BLOOD_DONATION"],
    "spc": ["DISHONEST_JUDGMENT_DEBTOR"],  # a national provider submitting to several nodes
}


@dataclass
class Node:
    code: str
    db: Path
    catalogs: list[str]
    url: str = ""
    proc: subprocess.Popen[str] | None = None
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def platform(self) -> Platform:
        return Platform(f"sqlite:///{self.db}")

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SOCRED_ORIGIN": self.code,
            "SOCRED_PUBLIC_RATE": "off",
            "SOCRED_LOG_LEVEL": "WARNING",
        }

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [sys.executable, "-m", "socred", "--db", str(self.db), *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=300,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"socred {' '.join(args)} failed ({r.returncode}): {r.stderr[-2000:]}")
        return r

    def start(self, log: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "socred", "--db", str(self.db), "serve", "--port", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=self.env(),
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"node {self.code} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_node(tmp: Path, code: str, catalogs: list[str]) -> Node:
    node = Node(code, tmp / f"{code}.db", catalogs)
    p = node.platform
    p.init()
    for c in catalogs:
        p.load_catalog_file(CATALOGS / f"{c}.yaml")
    for prov, cats in PROVIDERS.items():
        p.add_provider(prov, prov, cats)
    node.keys["party"] = auth.add_party(p, "airline", "Airline", ["air_travel"])
    p.engine.dispose()
    return node


def ingest(node: Node, source: str, ops: list[dict[str, Any]]) -> None:
    p = node.platform
    summary = p.ingest(source, rows(ops), today=TODAY)
    p.engine.dispose()
    assert summary.rejected == 0, summary.errors


def connect(upstream: Node, downstream: Node, regions: str, lists: bool = False) -> None:
    """``downstream`` pulls from ``upstream``: its ledger, or with lists=True its lists."""
    key = json.loads(upstream.cli("nodes", "allow", downstream.code, "--regions", regions).stdout)["key"]
    me = json.loads(upstream.cli("nodes", "self").stdout)
    args = [
        "nodes",
        "add",
        upstream.code,
        "--url",
        upstream.url,
        "--public-key",
        me["public_key"],
        "--key",
        key,
    ]
    downstream.cli(*args, "--regions", regions, *(["--lists"] if lists else []))


def population(seed: int, region: str, n: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(person_id(rng, region), person_name(rng)) for _ in range(n)]


def ops_for(
    rng: random.Random, people: list[tuple[str, str]], tag: str, cats: list[str]
) -> list[dict[str, Any]]:
    out = []
    for i, (sid, name) in enumerate(people):
        for j in range(rng.randrange(0, 4)):
            out.append(
                {
                    "op": "submit",
                    "record_id": f"{tag}-{i}-{j}",
                    "subject_id": sid,
                    "subject_name": name,
                    "category": rng.choice(cats),
                    "occurred_on": (TODAY - timedelta(days=rng.randrange(1, 900))).isoformat(),
                }
            )
    return out


def check(node: Node, sid: str) -> dict[str, Any]:
    r = httpx.post(
        f"{node.url}/api/v1/check",
        json={"subject_id": sid, "activity": "air_travel"},
        headers={"Authorization": f"Bearer {node.keys['party']}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    d = r.json()
    return {k: d[k] for k in ("decision", "lists", "measures", "until")}


def sync(node: Node, *args: str, check: bool = True) -> list[dict[str, Any]]:
    r = node.cli("sync", *args, check=check)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("federation")
    sh = make_node(tmp, "cn-31", ["national", "shanghai"])
    sd = make_node(tmp, "cn-37", ["national", "rongcheng"])
    cn = make_node(tmp, "cn", ["national"])
    single = make_node(tmp, "xx", ["national"])
    for n in (sh, sd, cn):
        n.start(tmp / f"{n.code}.log")
    rng = random.Random(5)
    people_sh = population(1, "310104", 40)
    people_sd = population(2, "371082", 40)
    mover_id, mover_name = people_sh[0]  # a Shanghai-born person with a Shandong judgment
    batches: list[tuple[Node, str, list[dict[str, Any]]]] = [
        (sh, "court.31", ops_for(rng, people_sh, "sh-court", PROVIDERS["court.31"])),
        (sh, "civil.31", ops_for(rng, people_sh, "sh-civil", PROVIDERS["civil.31"])),
        (sd, "court.37", ops_for(rng, people_sd, "sd-court", PROVIDERS["court.37"])),
        (sd, "civil.37", ops_for(rng, people_sd, "sd-civil", PROVIDERS["civil.37"])),
    ]
    listed = {
        "op": "submit",
        "record_id": "sd-court-mover",
        "subject_id": mover_id,
        "subject_name": mover_name + "某",  # another name for the same identifier: flagged, not overwritten
        "category": "DISHONEST_JUDGMENT_DEBTOR",
        "occurred_on": (TODAY - timedelta(days=30)).isoformat(),
        "case_number": "(2026)鲁1082执123号",
    }
    shared = {
        "op": "submit",
        "record_id": "spc-2026-0001",
        "subject_id": people_sd[1][0],
        "subject_name": people_sd[1][1],
        "category": "DISHONEST_JUDGMENT_DEBTOR",
        "occurred_on": (TODAY - timedelta(days=10)).isoformat(),
    }
    batches += [(sd, "court.37", [listed]), (sh, "spc", [shared]), (sd, "spc", [shared])]
    # later operations on records: a retraction and a repair travel up like submits
    first_sh = batches[0][2][0]
    batches.append(
        (sh, "court.31", [{"op": "retract", "record_id": first_sh["record_id"], "reason": "wrong person"}])
    )
    for node, source, ops in batches:
        ingest(node, source, ops)
        ingest(single, source, ops)  # the shared record twice there too: the second is a duplicate
    try:
        yield {
            "sh": sh,
            "sd": sd,
            "cn": cn,
            "single": single,
            "people": people_sh + people_sd,
            "mover": mover_id,
            "shared": shared,
        }
    finally:
        for n in (sh, sd, cn):
            n.stop()


def test_national_node_agrees_with_a_single_node(world: dict[str, Any]) -> None:
    sh, sd, cn, single = world["sh"], world["sd"], world["cn"], world["single"]
    connect(sh, cn, "31")
    connect(sd, cn, "37")
    reports = {r["node"]: r for r in sync(cn, "--page-size", "37")}
    assert reports["cn-31"]["error"] is None and reports["cn-37"]["error"] is None
    assert reports["cn-31"]["pages"] > 1  # several pages, each verified and applied whole
    # the shared provider record came through both nodes and is stored once
    assert reports["cn-31"]["duplicates"] + reports["cn-37"]["duplicates"] == 1
    p_cn, p_single = cn.platform, single.platform
    with sqlite3.connect(cn.db) as c_cn, sqlite3.connect(single.db) as c_single:
        q = "SELECT source, record_id, subject_id, category, occurred_on, retracted, repaired_on FROM records ORDER BY 1, 2"
        assert c_cn.execute(q).fetchall() == c_single.execute(q).fetchall()
        # every record knows the node and the entry it came from
        origins = c_cn.execute(
            "SELECT count(*) FROM records r JOIN replicated x ON x.local_seq = r.first_seq"
        ).fetchone()[0]
        assert origins == c_cn.execute("SELECT count(*) FROM records").fetchone()[0]
    for sid, _name in world["people"]:
        assert p_cn.score(sid).to_dict() == p_single.score(sid).to_dict()
        assert check(cn, sid) == {
            k: v
            for k, v in p_single.check(sid, "air_travel").to_dict().items()
            if k in ("decision", "lists", "measures", "until")
        }
    assert check(cn, world["mover"])["decision"] == "restricted"
    # the conflicting name is kept and flagged, the first one stays on the subject
    conflicts = federation.conflicts(p_cn)
    assert [(c["subject_id"], c["node"]) for c in conflicts] == [(world["mover"], "cn-37")]
    assert conflicts[0]["other_name"].endswith("某") and not conflicts[0]["name"].endswith("某")
    # the national node reproduces each local node's own answer with that node's catalog
    p_sh = sh.platform
    for sid, _name in world["people"][:40]:
        assert federation.score_as_node(p_cn, "cn-31", sid).to_dict() == p_sh.score(sid).to_dict()
    assert p_sh.score(world["people"][0][0]).catalog.startswith("shanghai@")
    # a second sync has nothing to do
    again = {r["node"]: r for r in sync(cn)}
    assert again["cn-31"]["entries"] == 0 and again["cn-37"]["entries"] == 0
    assert p_cn.verify_ledger().ok
    status = {n.code: n.status() for n in federation.list_nodes(p_cn)}
    assert status["cn-31"]["lag_entries"] == 0 and status["cn-31"]["verified_seq"] == sh.platform.head()[0]
    metrics = httpx.get(f"{cn.url}/metrics").text
    assert 'socred_federation_verified_seq{node="cn-31"}' in metrics
    page = httpx.get(f"{cn.url}/stats?lang=en").text
    assert "Federation" in page and "cn-37" in page


def test_national_lists_flow_down(world: dict[str, Any]) -> None:
    sh, cn = world["sh"], world["cn"]
    mover = world["mover"]
    before = check(sh, mover)
    assert before["decision"] == "allowed"  # Shanghai holds no judgment against the person
    connect(cn, sh, "31", lists=True)
    (report,) = [r for r in sync(sh) if r["node"] == "cn"]
    assert report["error"] is None and report["lists"] >= 1
    after = check(sh, mover)
    assert after["decision"] == "restricted"
    assert "cn:DISHONEST_JUDGMENT_DEBTOR" in after["lists"] and "cn:NO_AIR_TRAVEL" in after["measures"]
    # a node may read only its own regions
    key = json.loads(cn.cli("nodes", "allow", "cn-37", "--regions", "37").stdout)["key"]
    r = httpx.get(
        f"{cn.url}/api/v1/federation/lists",
        params={"regions": "31"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 403


def _rehash_from(db: Path, seq: int) -> None:
    """Rewrite entry ``seq``'s body and re-hash the chain after it, behind socred's back."""
    tamper_ledger(
        f"sqlite:///{db}", seq, edit=lambda s: s.replace('"occurred_on":"2', '"occurred_on":"1'), rehash=True
    )


def test_tampered_local_ledger_is_refused(world: dict[str, Any], tmp_path: Path) -> None:
    cn = world["cn"]
    local = make_node(tmp_path, "cn-44", ["national"])
    local.start(tmp_path / "cn-44.log")
    try:
        people = population(3, "440103", 20)
        ingest(local, "civil.31", ops_for(random.Random(1), people, "gd", PROVIDERS["civil.31"]))
        connect(local, cn, "44")
        (ok,) = sync(cn, "--node", "cn-44")
        assert ok["error"] is None and ok["applied"] > 0
        held = ok["verified_seq"]
        with sqlite3.connect(cn.db) as c:
            n_records = c.execute("SELECT count(*) FROM records").fetchone()[0]
        # 1. an entry not yet replicated is edited in place (the hash left as it was)
        ingest(local, "civil.31", ops_for(random.Random(2), people, "gd2", PROVIDERS["civil.31"]))
        tamper_ledger(
            f"sqlite:///{local.db}",
            held + 3,
            edit=lambda s: s.replace('"occurred_on":"2', '"occurred_on":"1', 1),
        )
        r = sync(cn, "--node", "cn-44", check=False)
        assert r[0]["error"] == (
            f"entry {held + 3}: content of entry {held + 3} does not match its hash: it was edited after it was written"
        )
        with sqlite3.connect(cn.db) as c:
            assert c.execute("SELECT count(*) FROM records").fetchone()[0] == n_records  # nothing applied
            assert c.execute("SELECT verified_seq, errors FROM nodes WHERE code = 'cn-44'").fetchone() == (
                held,
                1,
            )
        assert 'socred_federation_errors{node="cn-44"} 1.0' in httpx.get(f"{cn.url}/metrics").text
        # 2. history already replicated is rewritten and re-hashed: the anchor gives it away
        _rehash_from(local.db, 2)
        r = sync(cn, "--node", "cn-44", check=False)
        assert r[0]["error"].startswith(f"history rewritten: entry {held} now hashes to")
        with sqlite3.connect(cn.db) as c:
            assert c.execute("SELECT count(*) FROM records").fetchone()[0] == n_records
        assert cn.platform.verify_ledger().ok
    finally:
        local.stop()


def test_sync_killed_midway_loses_and_duplicates_nothing(world: dict[str, Any], tmp_path: Path) -> None:
    cn = world["cn"]
    local = make_node(tmp_path, "cn-50", ["national"])
    local.start(tmp_path / "cn-50.log")
    try:
        people = population(4, "500103", 1500)
        ops = ops_for(random.Random(3), people, "cq", PROVIDERS["civil.31"])
        ingest(local, "civil.31", ops)
        connect(local, cn, "50")
        total = local.platform.head()[0]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "socred",
                "--db",
                str(cn.db),
                "sync",
                "--node",
                "cn-50",
                "--page-size",
                "20",
            ],
            env=cn.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        done = 0
        while time.monotonic() < deadline:
            with sqlite3.connect(cn.db, timeout=30) as c:
                done = c.execute("SELECT verified_seq FROM nodes WHERE code = 'cn-50'").fetchone()[0]
            if done >= 200:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with sqlite3.connect(cn.db, timeout=30) as c:
            done = c.execute("SELECT verified_seq FROM nodes WHERE code = 'cn-50'").fetchone()[0]
        assert 0 < done < total, "the kill must land mid-way"
        (r,) = sync(cn, "--node", "cn-50")
        assert r["error"] is None and r["verified_seq"] == total
        with sqlite3.connect(cn.db) as c:
            got = c.execute(
                "SELECT count(*) FROM records r JOIN codes c ON c.id = r.source "
                "WHERE c.value = 'civil.31' AND r.record_id LIKE 'cq-%'"
            ).fetchone()[0]
            taken = c.execute(
                "SELECT count(*), count(DISTINCT origin_seq) FROM replicated WHERE node = 'cn-50'"
            ).fetchone()
            seqs = [r[0] for r in c.execute("SELECT local_seq FROM replicated WHERE node = 'cn-50'")]
            head = c.execute("SELECT seq FROM ledger_head").fetchone()[0]
            submits = sum(1 for s in seqs if s is not None and 1 <= s <= head)
        assert got == len(ops)
        assert taken == (len(ops), len(ops))
        assert submits == len(ops)
        assert cn.platform.verify_ledger().ok
    finally:
        local.stop()
