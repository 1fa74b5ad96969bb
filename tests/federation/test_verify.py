"""Verifying a replicated page (pure), and applying one on SQLite and PostgreSQL with tampered responses
refused. The local node is the real app behind a TestClient (an httpx client); the national node is a
database of each backend."""

from __future__ import annotations

import base64
import copy
import json
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from socred.api.app import create_app
from socred.api.settings import Settings
from socred.domain.federation import (
    FederationError,
    NationalMeasure,
    NationalMembership,
    overlay,
    public_key_from_text,
    verify_page,
)
from socred.ledger import merkle
from socred.ledger.chain import GENESIS_HEX, canonical_json, chain
from socred.service import federation
from socred.service.auth import LedgerSigner
from socred.service.platform import Platform
from socred.store import ledger
from socred.store import schema as t
from tests.conftest import CATALOGS
from tests.helpers import PERSON, PERSON2, rows

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
SIGNER = LedgerSigner(KEY, "cn-31")
PUBLIC = base64.b64encode(SIGNER.public_key).decode()


def _ledger(n: int) -> list[Any]:
    items = [("2026-11-01T00:00:00.000000Z", "court", "submit", canonical_json({"i": i})) for i in range(n)]
    return list(chain(1, GENESIS_HEX, items))


def _page(n: int = 5, after: int = 0, total: int | None = None) -> dict[str, Any]:
    """Entries after..after+n of a ledger of ``total`` entries (default after+n), with every proof."""
    ledger = _ledger(total or after + n)
    leaves = [bytes.fromhex(e.hash) for e in ledger]
    oracle = merkle.list_oracle(leaves)
    head = len(ledger)
    entries = ledger[after : after + n]
    last = entries[-1]
    return {
        "entries": [
            {
                "seq": e.seq,
                "recorded_at": e.recorded_at,
                "actor": e.actor,
                "kind": e.kind,
                "body": e.decoded(),
                "prev_hash": e.prev_hash,
                "hash": e.hash,
            }
            for e in entries
        ],
        "anchor": ledger[after - 1].hash if after else GENESIS_HEX,
        "checkpoint": SIGNER.checkpoint(last.seq, last.hash, merkle.mth(oracle, 0, last.seq).hex()),
        "head": SIGNER.checkpoint(head, ledger[-1].hash, merkle.mth(oracle, 0, head).hex()),
        "consistency": [h.hex() for h in merkle.consistency_path(oracle, after, head)] if after else [],
    }


def _frontier(n: int) -> merkle.Frontier:
    f = merkle.Frontier()
    for e in _ledger(n):
        f.append(bytes.fromhex(e.hash))
    return f


def _verify(page: Any, held: tuple[int, str] = (0, GENESIS_HEX), origin: str = "cn-31") -> Any:
    return verify_page(
        page,
        origin=origin,
        public_key=public_key_from_text(PUBLIC),
        held_seq=held[0],
        held_hash=held[1],
        frontier=_frontier(held[0]),
    )


def test_a_good_page_verifies() -> None:
    v = _verify(_page())
    assert [e.seq for e in v.entries] == [1, 2, 3, 4, 5] and v.last_seq == 5 and v.head_size == 5


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (
            lambda p: p["entries"][2]["body"].update(i=99),
            "entry 3: content of entry 3 does not match its hash",
        ),
        (lambda p: p["entries"].pop(1), "entry 2 is missing"),
        (lambda p: p["entries"].insert(1, p["entries"][0]), "entry 1 appears again or out of order"),
        (lambda p: p["checkpoint"].update(size=4), "the page checkpoint: the signature does not verify"),
        (
            lambda p: p.update(checkpoint=SIGNER.checkpoint(4, "ab" * 32, p["checkpoint"]["merkle_root"])),
            "the page checkpoint signs entry 4",
        ),
        (
            lambda p: p["head"].update(signature=base64.b64encode(b"x" * 64).decode()),
            "the head checkpoint: the signature",
        ),
        (lambda p: p.pop("head"), "the head checkpoint is missing"),
        (lambda p: p.update(entries="nope"), "the response has no list of entries"),
        (lambda p: p["entries"][0].pop("hash"), "entry 1 of the page is malformed"),
    ],
)
def test_tampered_pages_are_refused(tamper: Any, message: str) -> None:
    page = _page()
    tamper(page)
    with pytest.raises(FederationError) as e:
        _verify(page)
    assert message in str(e.value)


def test_another_key_or_origin_is_refused() -> None:
    other = LedgerSigner(Ed25519PrivateKey.generate(), "cn-31")
    page = _page()
    page["checkpoint"] = other.checkpoint(5, page["entries"][-1]["hash"], page["checkpoint"]["merkle_root"])
    page["head"] = other.checkpoint(5, page["entries"][-1]["hash"], page["head"]["merkle_root"])
    with pytest.raises(FederationError, match="does not verify under the registered public key"):
        _verify(page)
    with pytest.raises(FederationError, match="signed as 'cn-31', but this node is registered as 'cn-37'"):
        _verify(_page(), origin="cn-37")


def test_rewritten_or_truncated_history_is_refused() -> None:
    first = _page(5)
    held = (5, first["entries"][-1]["hash"])
    assert _verify(_page(3, after=5), held).last_seq == 8
    # a page further on, with the head further still: the consistency proof spans 5 -> 20
    assert _verify(_page(3, after=5, total=20), held).head_size == 20
    second = _page(3, after=5)
    second["anchor"] = "cd" * 32
    with pytest.raises(FederationError, match="history rewritten: entry 5 now hashes to cdcd"):
        _verify(second, held)
    bad = _page(3, after=5, total=20)
    bad["consistency"][0] = "00" * 32
    with pytest.raises(FederationError, match="the consistency proof from 5 to 20 entries fails"):
        _verify(bad, held)
    with pytest.raises(FederationError, match="behind the 9 already verified"):
        _verify(_page(3, after=5), (9, "ef" * 32))


def test_merkle_root_must_match_the_entries() -> None:
    page = _page(4)
    page["checkpoint"] = SIGNER.checkpoint(4, page["entries"][-1]["hash"], "ab" * 32)
    with pytest.raises(FederationError, match="Merkle root of the first 4 entries is not the one"):
        _verify(page)


def test_overlay_adds_national_lists() -> None:
    at = date(2026, 11, 1)
    m = NationalMembership(
        "cn",
        "national@1",
        "DISHONEST",
        "black",
        "Dishonest",
        at - timedelta(days=5),
        at + timedelta(days=700),
        (
            NationalMeasure("NO_AIR_TRAVEL", "air_travel", "restrict"),
            NationalMeasure("NO_HOTEL", "star_hotel", "restrict"),
        ),
    )
    local = {"decision": "allowed", "measures": [], "lists": [], "until": None, "catalog": "shanghai@1"}
    got = overlay(local, [m], "air_travel", at)
    assert got["decision"] == "restricted" and got["until"] == (at + timedelta(days=700)).isoformat()
    assert got["lists"] == ["cn:DISHONEST"] and got["measures"] == ["cn:NO_AIR_TRAVEL"]
    assert overlay(local, [m], "rail", at) == local  # no measure for that activity
    assert overlay(local, [m], "air_travel", at + timedelta(days=701)) == local  # expired
    restricted = {**local, "decision": "restricted", "lists": ["L"], "measures": ["M"], "until": None}
    assert overlay(restricted, [m], "air_travel", at)["until"] is None  # an open-ended local restriction wins


# ------------------------------------------------------------------ applying, on both backends


class TamperingFetcher(federation.Fetcher):
    def __init__(self, client: Any, tamper: Any = None) -> None:
        super().__init__(client)
        self.tamper = tamper

    def get(self, node: federation.Node, path: str, params: Any) -> Any:
        data = super().get(node, path, params)
        if self.tamper is not None and data.get("entries"):
            data = copy.deepcopy(data)
            self.tamper(data)
        return data


@pytest.fixture
def local(tmp_path: Any) -> Iterator[tuple[Platform, TestClient]]:
    url = f"sqlite:///{tmp_path / 'local.db'}"
    p = Platform(url)
    p.init()
    p.load_catalog_file(CATALOGS / "national.yaml")
    p.add_provider("court", "Court", ["DISHONEST_JUDGMENT_DEBTOR", "CONTRACT_BREACH_JUDGMENT"])
    day = (date.today() - timedelta(days=3)).isoformat()
    ops = [
        {
            "op": "submit",
            "record_id": f"r{i}",
            "subject_id": sid,
            "subject_name": "张三",
            "category": cat,
            "occurred_on": day,
        }
        for i, (sid, cat) in enumerate(
            [
                (PERSON, "DISHONEST_JUDGMENT_DEBTOR"),
                (PERSON2, "CONTRACT_BREACH_JUDGMENT"),
                (PERSON, "CONTRACT_BREACH_JUDGMENT"),
            ]
        )
    ]
    assert p.ingest("court", rows(ops)).accepted == 3
    assert p.ingest("court", rows([{"op": "retract", "record_id": "r1", "reason": "paid"}])).accepted == 1
    settings = Settings(
        db=url, origin="cn-31", signing_key=bytes(range(32)).hex(), log_format="text", access_log=False
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield p, client
    p.engine.dispose()


def _national(db_url: str, local: tuple[Platform, TestClient]) -> Platform:
    p_local, _client = local
    key = federation.allow_node(p_local, "cn", ["11", "36"])
    nat = Platform(db_url)
    nat.init()
    nat.load_catalog_file(CATALOGS / "national.yaml")
    federation.add_node(nat, "cn-31", "http://testserver", PUBLIC, ["31"], key)
    return nat


def test_apply_on_each_backend(db_url: str, local: tuple[Platform, TestClient]) -> None:
    p_local, client = local
    nat = _national(db_url, local)
    fetcher = TamperingFetcher(client)
    (r,) = federation.sync(nat, fetcher=fetcher, page_size=2)
    assert r.error is None and r.applied == 4 and r.catalogs == 1 and r.pages == 3
    assert r.verified_seq == p_local.head()[0]
    for sid in (PERSON, PERSON2):
        assert nat.score(sid).to_dict() == p_local.score(sid).to_dict()
    with nat.engine.connect() as c:
        kinds = dict(Counter(e.kind for e in ledger.iter_entries(c)))
    assert kinds == {"catalog.load": 1, "submit": 3, "retract": 1, "federation.sync": 3}
    assert nat.verify_ledger().ok
    (again,) = federation.sync(nat, fetcher=fetcher)
    assert again.entries == 0 and again.error is None
    nat.engine.dispose()


def test_tampered_response_applies_nothing(db_url: str, local: tuple[Platform, TestClient]) -> None:
    _p, client = local
    nat = _national(db_url, local)
    before = nat.head()

    def tamper(page: dict[str, Any]) -> None:
        for e in page["entries"]:
            if e["kind"] == "submit":
                e["body"]["category"] = "CONTRACT_BREACH_JUDGMENT"

    (r,) = federation.sync(nat, fetcher=TamperingFetcher(client, tamper), page_size=100)
    assert r.error is not None and "does not match its hash" in r.error and r.applied == 0
    assert nat.head() == before
    (node,) = federation.list_nodes(nat)
    assert node.verified_seq == 0 and node.errors == 1 and node.last_error == r.error
    nat.engine.dispose()


def test_background_loop_syncs(sqlite_url: str, local: tuple[Platform, TestClient]) -> None:
    import time

    p_local, client = local
    nat = _national(sqlite_url, local)
    loop = federation.SyncLoop(nat, 0.05, TamperingFetcher(client))
    loop.start()
    try:
        deadline = time.monotonic() + 20
        while federation.get_node(nat, "cn-31").verified_seq < p_local.head()[0]:
            assert time.monotonic() < deadline, "the loop did not sync"
            time.sleep(0.05)
    finally:
        loop.stop()
    assert nat.score(PERSON).to_dict() == p_local.score(PERSON).to_dict()
    nat.engine.dispose()


def test_large_runs_take_the_vectorised_path_and_keep_every_field(tmp_path: Any) -> None:
    """A run of 64+ submits goes through the Arrow pre-validation: every body arrives byte for byte,
    including fields only later rows carry (attributes, case numbers)."""
    import random

    from socred.demo import person_id

    url = f"sqlite:///{tmp_path / 'big.db'}"
    p = Platform(url)
    p.init()
    p.load_catalog_file(CATALOGS / "national.yaml")
    p.add_provider("court", "Court", ["CONTRACT_BREACH_JUDGMENT", "DISHONEST_JUDGMENT_DEBTOR"])
    rng = random.Random(4)
    ops = []
    for i in range(300):
        op: dict[str, Any] = {
            "op": "submit",
            "record_id": f"b{i}",
            "subject_id": person_id(rng, "310104"),
            "subject_name": "李四",
            "category": "CONTRACT_BREACH_JUDGMENT",
            "occurred_on": "2026-05-01",
        }
        if i % 3 == 1:
            op["attributes"] = {"court": "上海市第一中级人民法院", "amount": i}
        if i % 5 == 2:
            op["case_number"] = f"(2026)沪01执{i}号"
        ops.append(op)
    assert p.ingest("court", rows(ops)).accepted == 300
    settings = Settings(
        db=url, origin="cn-31", signing_key=bytes(range(32)).hex(), log_format="text", access_log=False
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        key = federation.allow_node(p, "cn", [""])
        nat = Platform(f"sqlite:///{tmp_path / 'nat.db'}")
        nat.init()
        nat.load_catalog_file(CATALOGS / "national.yaml")
        federation.add_node(nat, "cn-31", "http://testserver", PUBLIC, ["31"], key)
        (r,) = federation.sync(nat, fetcher=TamperingFetcher(client), page_size=1000)
    assert r.error is None and r.applied == 300 and r.duplicates == 0

    def bodies(platform: Platform) -> list[str]:
        with platform.engine.connect() as c:
            return [e.body for e in ledger.iter_entries(c) if e.kind == "submit"]

    assert bodies(nat) == bodies(p)
    with nat.engine.connect() as c:
        assert sum(1 for b in bodies(nat) if "attributes" in json.loads(b)) == 100
        assert c.execute(select(func.count()).select_from(t.records)).scalar() >= 100
    nat.engine.dispose()
    p.engine.dispose()
