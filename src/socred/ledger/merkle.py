"""An RFC 6962 (Certificate Transparency) Merkle tree over the ledger, pure functions only.

The leaves are the ledger's entries in seq order; leaf ``i`` (0-based) is entry ``i + 1`` and its
data is the entry's 32-byte ``hash`` (which commits to the entry's content and, through
``prev_hash``, to the chain). As in RFC 6962 section 2.1::

    MTH({})       = SHA-256()
    MTH({d0})     = SHA-256(0x00 || d0)                               a leaf
    MTH(D[0:n])   = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))       k = largest power of 2 < n

Proof generation needs the hash of any subtree; storage supplies it through a ``Subtrees`` oracle
(``socred.store.merkle_store``), so the algorithms here are the same for the database and for a
plain list of leaves (tests). Verification (RFC 9162 section 2.1.3.2 and 2.1.4.2) needs nothing but
the proof, the two sizes and the roots: it is what an outsider runs offline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()

# subtree(start, size) -> MTH(D[start:start+size]); start is a multiple of the largest power of two <= size
Subtrees = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not verify; the message says which check failed."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH of leaf data (not yet leaf-hashed), directly from the definition."""
    if not leaves:
        return EMPTY_ROOT
    level = [leaf_hash(d) for d in leaves]
    return _fold(level)


def _fold(level: list[bytes]) -> bytes:
    """The root over already-hashed leaves: pairwise, carrying an odd last node up (same as the RFC split)."""
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def list_oracle(leaves: Sequence[bytes]) -> Subtrees:
    """A ``Subtrees`` oracle over leaf data in memory (tests, small ledgers)."""
    hashed = [leaf_hash(d) for d in leaves]

    def subtree(start: int, size: int) -> bytes:
        return _fold(hashed[start : start + size])

    return subtree


def mth(subtree: Subtrees, start: int, size: int) -> bytes:
    """MTH(D[start:start+size]) from an oracle that answers aligned power-of-two subtrees."""
    if size == 0:
        return EMPTY_ROOT
    if size & (size - 1) == 0:
        return subtree(start, size)
    k = split(size)
    return node_hash(subtree(start, k), mth(subtree, start + k, size - k))


def inclusion_path(subtree: Subtrees, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) of RFC 6962 section 2.1.1."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, n, m = 0, size, index
    while n > 1:
        k = split(n)
        if m < k:
            path.append(mth(subtree, start + k, n - k))
            n = k
        else:
            path.append(mth(subtree, start, k))
            start, n, m = start + k, n - k, m - k
    path.reverse()
    return path


def consistency_path(subtree: Subtrees, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]) of RFC 6962 section 2.1.2."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from {first} to {second} entries: need 0 < first <= second")
    path: list[bytes] = []
    start, n, m, whole = 0, second, first, True
    while m != n:
        k = split(n)
        if m <= k:
            path.append(mth(subtree, start + k, n - k))
            n = k
        else:
            path.append(mth(subtree, start, k))
            start, n, m, whole = start + k, n - k, m - k, False
    if not whole:
        path.append(mth(subtree, start, n))
    path.reverse()
    return path


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 section 2.1.3.2, with ``leaf`` the leaf data (an entry hash). Raises ProofError."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")
    fn, sn, r = index, size - 1, leaf_hash(leaf)
    for p in path:
        if sn == 0:
            raise ProofError("the inclusion path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion path is shorter than the tree is deep")
    if r != root:
        raise ProofError("the inclusion path does not lead to the checkpoint's Merkle root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2: the tree of ``second`` leaves extends the tree of ``first``. Raises ProofError."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency from {first} to {second} entries")
    if first == second:
        if path:
            raise ProofError("a proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError("two trees of the same size have different roots: history was rewritten")
        return
    proof = list(path)
    if not proof:
        raise ProofError("the consistency proof is empty")
    if first & (first - 1) == 0:
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the trees are deep")
    if fr != first_root:
        raise ProofError(
            f"the proof does not reproduce the Merkle root of the first {first} entries: history was rewritten"
        )
    if sr != second_root:
        raise ProofError(f"the proof does not reproduce the Merkle root of the {second} entries")


class Frontier:
    """The roots of the perfect subtrees covering the leaves appended so far (at most 64): enough to
    compute the Merkle root after each append without keeping the leaves. A downstream node keeps one
    per upstream and checks its own root against each signed checkpoint."""

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != bin(size).count("1"):
            raise ValueError(
                f"a frontier of {size} leaves has {bin(size).count('1')} nodes, not {len(nodes)}"
            )
        self.size = size
        self.nodes = list(nodes)  # biggest subtree first

    def append(self, data: bytes) -> None:
        h = leaf_hash(data)
        n = self.size
        while n & 1:  # merge with every complete left sibling
            h = node_hash(self.nodes.pop(), h)
            n >>= 1
        self.nodes.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        r = self.nodes[-1]
        for left in reversed(self.nodes[:-1]):
            r = node_hash(left, r)
        return r

    def to_hex(self) -> list[str]:
        return [n.hex() for n in self.nodes]

    @classmethod
    def from_hex(cls, size: int, nodes: Sequence[str]) -> Frontier:
        return cls(size, [bytes.fromhex(n) for n in nodes])
