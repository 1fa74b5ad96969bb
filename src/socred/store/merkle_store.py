"""The ledger's Merkle tree in the database: complete subtrees of 256 leaves and up, cached.

Perfect subtrees of at least ``CHUNK`` leaves never change once complete, so their roots are kept in
``merkle_nodes`` (level = log2 of the size, idx = start / size) and filled lazily by
:func:`catch_up` when a checkpoint or a proof is asked for. Smaller subtrees are hashed from the
ledger's ``hash`` column on the fly (at most 255 rows). The table is a cache: ``socred ledger
verify`` recomputes it from the chain and names the first chunk whose cached root disagrees.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError

from socred.ledger import merkle
from socred.store import ledger
from socred.store import schema as t

CHUNK_LEVEL = 8
CHUNK = 1 << CHUNK_LEVEL

metadata = MetaData()
merkle_nodes = Table(
    "merkle_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)


def _leaves(conn: Connection, start: int, size: int) -> list[bytes]:
    """Leaf data (entry hashes) of leaves ``start .. start+size-1`` (entries start+1 .. start+size)."""
    got = ledger.hashes(conn, start, size)
    if len(got) != size:
        raise ValueError(f"the ledger has no entries {start + 1}..{start + size}")
    return got


class Tree:
    """A ``Subtrees`` oracle over one connection's snapshot of the ledger."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._memo: dict[tuple[int, int], bytes] = {}

    def subtree(self, start: int, size: int) -> bytes:
        key = (start, size)
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        if size < CHUNK:
            h = merkle.root_of(_leaves(self.conn, start, size))
        else:
            level = size.bit_length() - 1
            row = self.conn.execute(
                select(merkle_nodes.c.hash).where(
                    merkle_nodes.c.level == level, merkle_nodes.c.idx == start // size
                )
            ).first()
            if row is not None:
                h = bytes(row[0])
            else:
                half = size // 2
                h = merkle.node_hash(self.subtree(start, half), self.subtree(start + half, half))
        self._memo[key] = h
        return h

    def root(self, size: int) -> bytes:
        return merkle.mth(self.subtree, 0, size)

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_path(self.subtree, index, size)

    def consistency(self, first: int, second: int) -> list[bytes]:
        return merkle.consistency_path(self.subtree, first, second)


def catch_up(engine: Engine, upto: int | None = None, batch_chunks: int = 64) -> int:
    """Store the roots of every complete chunk (and of the complete subtrees above) not yet stored.

    Returns the number of rows written. Safe to run concurrently: a row another process wrote first
    is the same hash, and the loser's transaction simply ends.
    """
    written = 0
    while True:
        with engine.connect() as conn:
            size = conn.execute(select(func.max(t.ledger_blocks.c.last_seq))).scalar() or 0
            if upto is not None:
                size = min(size, upto)
            done = conn.execute(
                select(func.max(merkle_nodes.c.idx)).where(merkle_nodes.c.level == CHUNK_LEVEL)
            ).scalar()
            nxt = 0 if done is None else int(done) + 1
            complete = size // CHUNK
            if nxt >= complete:
                return written
            last = min(complete, nxt + batch_chunks)
            leaves = _leaves(conn, nxt * CHUNK, (last - nxt) * CHUNK)
        rows: list[dict[str, object]] = []
        level_nodes: dict[int, bytes] = {}
        for i in range(nxt, last):
            chunk = leaves[(i - nxt) * CHUNK : (i - nxt + 1) * CHUNK]
            h = merkle.root_of(chunk)
            rows.append({"level": CHUNK_LEVEL, "idx": i, "hash": h})
            level_nodes[i] = h
        # complete parents: a right child at (level, odd idx) completes (level + 1, idx // 2)
        level = CHUNK_LEVEL
        with engine.connect() as conn:
            while level_nodes:
                parents: dict[int, bytes] = {}
                for idx, h in sorted(level_nodes.items()):
                    if idx % 2 == 0:
                        continue
                    left = level_nodes.get(idx - 1)
                    if left is None:
                        r = conn.execute(
                            select(merkle_nodes.c.hash).where(
                                merkle_nodes.c.level == level, merkle_nodes.c.idx == idx - 1
                            )
                        ).first()
                        if r is None:
                            continue
                        left = bytes(r[0])
                    parents[idx // 2] = merkle.node_hash(left, h)
                level += 1
                rows.extend({"level": level, "idx": i, "hash": h} for i, h in parents.items())
                level_nodes = parents
        try:
            with engine.begin() as conn:
                conn.execute(merkle_nodes.insert(), rows)
            written += len(rows)
        except IntegrityError:  # another process stored them first
            pass


def has_cache(conn: Connection) -> bool:
    from sqlalchemy import inspect

    return bool(inspect(conn).has_table("merkle_nodes"))


def first_bad_chunk(conn: Connection, chunk_roots: list[bytes]) -> int | None:
    """The first chunk whose cached root (or an ancestor's) differs from the roots recomputed from the
    chain (``chunk_roots``: one per complete chunk, in order), as a chunk index; None when all agree."""
    computed: dict[tuple[int, int], bytes] = {(CHUNK_LEVEL, j): h for j, h in enumerate(chunk_roots)}
    level, count = CHUNK_LEVEL, len(chunk_roots)
    while count > 1:
        for j in range(count // 2):
            computed[(level + 1, j)] = merkle.node_hash(
                computed[(level, 2 * j)], computed[(level, 2 * j + 1)]
            )
        level, count = level + 1, count // 2
    bad = [
        (int(lv), int(idx))
        for lv, idx, h in conn.execute(select(merkle_nodes.c.level, merkle_nodes.c.idx, merkle_nodes.c.hash))
        if computed.get((int(lv), int(idx))) != bytes(h)
    ]
    if not bad:
        return None
    return min(idx << (lv - CHUNK_LEVEL) for lv, idx in bad)
