"""The RFC 6962 Merkle tree: proofs from the in-memory oracle and from the database verify, tampering
does not, and the frontier a downstream node keeps gives the same roots."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socred.ledger import merkle
from socred.ledger.merkle import ProofError


def leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(str(i).encode()).digest() for i in range(n)]


def test_known_roots() -> None:
    # RFC 6962 definitions, spelled out for 1..3 leaves
    d = leaves(3)
    a, b, c = (merkle.leaf_hash(x) for x in d)
    assert merkle.root_of([]) == hashlib.sha256(b"").digest()
    assert merkle.root_of(d[:1]) == a
    assert merkle.root_of(d[:2]) == hashlib.sha256(b"\x01" + a + b).digest()
    assert merkle.root_of(d) == merkle.node_hash(merkle.node_hash(a, b), c)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_proofs_verify(case: tuple[int, int]) -> None:
    n, i = case
    d = leaves(n)
    oracle = merkle.list_oracle(d)
    root = merkle.mth(oracle, 0, n)
    assert root == merkle.root_of(d)
    path = merkle.inclusion_path(oracle, i, n)
    merkle.verify_inclusion(d[i], i, n, path, root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(hashlib.sha256(b"other").digest(), i, n, path, root)
    if path:
        broken = list(path)
        broken[0] = bytes(32)
        with pytest.raises(ProofError):
            merkle.verify_inclusion(d[i], i, n, broken, root)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_consistency_proofs_verify(case: tuple[int, int]) -> None:
    m, n = case
    d = leaves(n)
    oracle = merkle.list_oracle(d)
    old, new = merkle.mth(oracle, 0, m), merkle.mth(oracle, 0, n)
    path = merkle.consistency_path(oracle, m, n)
    merkle.verify_consistency(m, n, old, new, path)
    if m < n:
        # a rewritten past: the old root no longer follows
        with pytest.raises(ProofError):
            merkle.verify_consistency(m, n, hashlib.sha256(b"x").digest(), new, path)
        with pytest.raises(ProofError):
            merkle.verify_consistency(m, n, old, hashlib.sha256(b"x").digest(), path)


@given(st.integers(0, 600))
def test_frontier_matches_the_tree(n: int) -> None:
    d = leaves(n)
    f = merkle.Frontier()
    for x in d:
        f.append(x)
    assert f.root() == merkle.root_of(d)
    again = merkle.Frontier.from_hex(n, f.to_hex())
    assert again.root() == f.root()


def test_database_tree_matches_the_definition(db_url: str) -> None:
    """Proofs served from the database (cached chunks of 256 and the ledger's hashes) verify; on SQLite and
    PostgreSQL."""
    from sqlalchemy import update

    from socred.service.platform import Platform
    from socred.store import ledger as store_ledger
    from socred.store import merkle_store
    from tests.conftest import CATALOGS
    from tests.helpers import PERSON, rows

    p = Platform(db_url)
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
        for i in range(700)
    ]
    assert p.ingest("court", rows(ops)).accepted == 700
    size = p.head()[0]
    with p.engine.connect() as c:
        hashes = store_ledger.hashes(c, 0, size)
    assert merkle_store.catch_up(p.engine) == 3  # two chunks of 256 and their parent
    assert merkle_store.catch_up(p.engine) == 0
    oracle = merkle.list_oracle(hashes)
    with p.engine.connect() as c:
        tree = merkle_store.Tree(c)
        for n in (1, 255, 256, 257, 511, 512, 513, size):
            assert tree.root(n) == merkle.mth(oracle, 0, n)
        for i in (0, 255, 256, 600, size - 1):
            assert tree.inclusion(i, size) == merkle.inclusion_path(oracle, i, size)
        for m in (1, 256, 300, 512, size):
            assert tree.consistency(m, size) == merkle.consistency_path(oracle, m, size)
    assert p.verify_ledger().ok
    with p.engine.begin() as c:  # a cached node edited behind the application's back
        t = merkle_store.merkle_nodes
        c.execute(update(t).where(t.c.level == 8, t.c.idx == 1).values(hash=bytes(32)))
    bad = p.verify_ledger()
    assert not bad.ok and bad.first_bad_seq == 257 and "cached Merkle tree" in (bad.reason or "")
    p.engine.dispose()
