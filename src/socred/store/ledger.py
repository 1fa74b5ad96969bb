"""The ledger in the database: blocks of entries, the head, reading, verifying.

An entry's stored form is exactly the bytes its hash covers (``socred.ledger.chain.entry_bytes``:
the canonical JSON of ``{actor, body, kind, recorded_at, seq}``); ``ledger_blocks`` keeps up to
:data:`BLOCK_ENTRIES` consecutive entries per row, joined by newlines (canonical JSON never holds a
raw newline) and compressed with zstd, beside their SHA-256 hashes (32 raw bytes each). So
verification hashes the stored bytes as they are, and reading an entry decompresses one block
(about 0.1 ms). Blocks are only ever inserted; triggers refuse UPDATE and DELETE (migration 0008).

Everything that changes state appends here inside the caller's transaction, after taking the
append lock (:func:`lock_head`), together with the projection rows it implies.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from socred.ledger import merkle
from socred.ledger.chain import (
    GENESIS,
    GENESIS_HEX,
    Entry,
    VerifyResult,
    chain,
    entry_bytes,
    utc_timestamp,
)
from socred.store import schema as t

__all__ = [
    "BLOCK_ENTRIES",
    "RECORD_OPS",
    "Block",
    "BlockCache",
    "acts",
    "append",
    "decode_entry",
    "entries_at",
    "hash_at",
    "hashes",
    "head",
    "iter_blocks",
    "iter_entries",
    "lock_head",
    "set_head",
    "verify",
    "write_entries",
]

#: Entries per block at most.
BLOCK_ENTRIES = 256
#: Kinds of the record operations; every other kind is also indexed in ``ledger_acts``.
RECORD_OPS = frozenset({"submit", "correct", "retract", "repair"})
_ZSTD_LEVEL = 3


class _Zstd:
    """zstd through pyarrow's codec, created on first use (a check never reads the ledger: the server
    starts without importing Arrow)."""

    def __init__(self) -> None:
        self._codec: Any = None

    def _get(self) -> Any:
        if self._codec is None:
            import pyarrow as pa

            self._codec = pa.Codec("zstd", compression_level=_ZSTD_LEVEL)
        return self._codec

    def compress(self, data: bytes) -> bytes:
        out: bytes = self._get().compress(data, asbytes=True)
        return out

    def decompress(self, data: bytes, size: int) -> bytes:
        out: bytes = self._get().decompress(data, decompressed_size=size, asbytes=True)
        return out


_CODEC = _Zstd()


# ------------------------------------------------------------------ the head and the lock


def lock_head(conn: Connection) -> tuple[int, str]:
    """Take the ledger's append lock for this transaction and return (seq, hash) of its head."""
    q = select(t.ledger_head.c.seq, t.ledger_head.c.hash).where(t.ledger_head.c.id == 1)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    # SQLite: the transaction already holds the write lock (BEGIN IMMEDIATE)
    row = conn.execute(q).one()
    return int(row[0]), str(row[1])


def head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(select(t.ledger_head.c.seq, t.ledger_head.c.hash).where(t.ledger_head.c.id == 1)).one()
    return int(row[0]), str(row[1])


def set_head(conn: Connection, seq: int, hash_hex: str) -> None:
    """Move the recorded head of the ledger (inside the transaction that holds the append lock)."""
    conn.execute(update(t.ledger_head).where(t.ledger_head.c.id == 1).values(seq=seq, hash=hash_hex))


# ------------------------------------------------------------------ writing


def block_rows(first_seq: int, lines: Sequence[bytes], digests: Sequence[bytes]) -> list[tuple[Any, ...]]:
    """The ``ledger_blocks`` rows of sealed entries ``first_seq, first_seq + 1, ...``."""
    n = len(lines)
    if n != len(digests):
        raise ValueError("one hash per entry")
    rows = []
    for lo in range(0, n, BLOCK_ENTRIES):
        part = lines[lo : lo + BLOCK_ENTRIES]
        raw = b"\n".join(part)
        rows.append(
            (
                first_seq + lo,
                first_seq + lo + len(part) - 1,
                len(raw),
                _CODEC.compress(raw),
                b"".join(digests[lo : lo + BLOCK_ENTRIES]),
            )
        )
    return rows


def insert_blocks(
    conn: Connection, rows: Sequence[tuple[Any, ...]], acts: Iterable[tuple[int, str, str]] = ()
) -> None:
    """Insert ``ledger_blocks`` rows (:func:`block_rows`) and ``acts`` — (seq, kind, actor) of the entries
    that are not record operations — in the caller's transaction."""
    raw_conn = conn.connection.driver_connection
    assert raw_conn is not None
    marks = "%s" if conn.dialect.name == "postgresql" else "?"
    sql = (
        "INSERT INTO ledger_blocks (first_seq, last_seq, raw_size, entries, hashes) VALUES "
        f"({', '.join([marks] * 5)})"
    )
    cur = raw_conn.cursor()
    try:
        cur.executemany(sql, rows)
        act_rows = list(acts)
        if act_rows:
            cur.executemany(
                f"INSERT INTO ledger_acts (seq, kind, actor) VALUES ({marks}, {marks}, {marks})",
                [(s, k[:32], a[:128]) for s, k, a in act_rows],
            )
    finally:
        cur.close()


def write_entries(
    conn: Connection,
    first_seq: int,
    lines: Sequence[bytes],
    digests: Sequence[bytes],
    acts: Iterable[tuple[int, str, str]] = (),
) -> None:
    """Insert sealed entries ``first_seq, first_seq + 1, ...`` (their bytes and 32-byte hashes) as
    blocks, and ``acts`` — (seq, kind, actor) of the entries that are not record operations."""
    insert_blocks(conn, block_rows(first_seq, lines, digests), acts)


def append(
    conn: Connection, items: Sequence[tuple[str, str, str]], recorded_at: str | None = None
) -> list[Entry]:
    """Append ``(actor, kind, body_json)`` items to the ledger; returns the sealed entries."""
    if not items:
        return []
    seq, head_hex = lock_head(conn)
    ts = recorded_at or utc_timestamp()
    entries = list(chain(seq + 1, head_hex, ((ts, a, k, b) for a, k, b in items)))
    write_entries(
        conn,
        seq + 1,
        [entry_bytes(e.seq, e.recorded_at, e.actor, e.kind, e.body) for e in entries],
        [bytes.fromhex(e.hash) for e in entries],
        [(e.seq, e.kind, e.actor) for e in entries if e.kind not in RECORD_OPS],
    )
    last = entries[-1]
    set_head(conn, last.seq, last.hash)
    return entries


# ------------------------------------------------------------------ reading


@dataclass(frozen=True, slots=True)
class Block:
    """One stored block, decompressed: its entries' bytes and hashes."""

    first_seq: int
    lines: list[bytes]
    hashes: bytes  # 32 bytes per entry

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.lines) - 1

    def digest(self, seq: int) -> bytes:
        i = seq - self.first_seq
        return self.hashes[32 * i : 32 * i + 32]


class DamagedBlock(ValueError):
    """A stored block that cannot be read back (its bytes were changed)."""

    def __init__(self, first_seq: int, why: str) -> None:
        super().__init__(f"the ledger block starting at entry {first_seq} cannot be read: {why}")
        self.first_seq = first_seq


def _block(first_seq: Any, last_seq: Any, raw_size: Any, data: Any, digests: Any) -> Block:
    first, last = int(first_seq), int(last_seq)
    try:
        raw = _CODEC.decompress(bytes(data), int(raw_size))
    except Exception as e:  # any failure of the codec: the bytes are not what was written
        raise DamagedBlock(first, f"it does not decompress ({e.__class__.__name__})") from None
    lines = raw.split(b"\n")
    hashes_ = bytes(digests)
    if len(lines) != last - first + 1 or len(hashes_) != 32 * len(lines):
        raise DamagedBlock(first, "its entries and hashes do not match its seq range")
    return Block(first, lines, hashes_)


_BLOCK_COLUMNS = (
    t.ledger_blocks.c.first_seq,
    t.ledger_blocks.c.last_seq,
    t.ledger_blocks.c.raw_size,
    t.ledger_blocks.c.entries,
    t.ledger_blocks.c.hashes,
)


def iter_blocks(conn: Connection, after: int = 0, upto: int | None = None, page: int = 64) -> Iterator[Block]:
    """Blocks holding entries after ``after`` (and up to ``upto``), in seq order, read in pages."""
    start = _block_start(conn, after + 1)
    if start is None:
        return
    cursor = start - 1
    while True:
        q = select(*_BLOCK_COLUMNS).where(t.ledger_blocks.c.first_seq > cursor)
        if upto is not None:
            q = q.where(t.ledger_blocks.c.first_seq <= upto)
        rows = conn.execute(q.order_by(t.ledger_blocks.c.first_seq).limit(page)).all()
        if not rows:
            return
        for r in rows:
            yield _block(*r)
        cursor = int(rows[-1][0])


def _block_start(conn: Connection, seq: int) -> int | None:
    """first_seq of the block holding entry ``seq`` (or of the first block after it)."""
    got = conn.execute(
        select(t.ledger_blocks.c.first_seq)
        .where(t.ledger_blocks.c.first_seq <= seq)
        .order_by(t.ledger_blocks.c.first_seq.desc())
        .limit(1)
    ).scalar()
    if got is not None:
        return int(got)
    nxt = conn.execute(
        select(t.ledger_blocks.c.first_seq)
        .where(t.ledger_blocks.c.first_seq > seq)
        .order_by(t.ledger_blocks.c.first_seq)
        .limit(1)
    ).scalar()
    return None if nxt is None else int(nxt)


def decode_entry(line: bytes, digest: bytes, prev: bytes) -> Entry:
    """An :class:`Entry` from its stored bytes (the body's text is cut out, never re-serialised)."""
    text = line.decode("utf-8")
    decoder = json.JSONDecoder()
    if not text.startswith('{"actor":'):
        raise ValueError("not an entry")
    actor, end = decoder.raw_decode(text, 9)
    if not text.startswith(',"body":', end):
        raise ValueError("not an entry")
    cut = text.rfind(',"kind":')
    tail = json.loads("{" + text[cut + 1 :])
    return Entry(
        int(tail["seq"]),
        str(tail["recorded_at"]),
        str(actor),
        str(tail["kind"]),
        text[end + 8 : cut],
        prev.hex(),
        digest.hex(),
    )


def iter_entries(conn: Connection, after: int = 0, upto: int | None = None) -> Iterator[Entry]:
    """Entries after ``after`` (up to ``upto``) in seq order."""
    prev: bytes | None = None
    for block in iter_blocks(conn, after, upto):
        for i, line in enumerate(block.lines):
            seq = block.first_seq + i
            digest = block.hashes[32 * i : 32 * i + 32]
            if seq <= after:
                prev = digest
                continue
            if upto is not None and seq > upto:
                return
            if prev is None:
                prev = _hash_bytes(conn, seq - 1)
            yield decode_entry(line, digest, prev)
            prev = digest


def _hash_bytes(conn: Connection, seq: int) -> bytes:
    if seq <= 0:
        return GENESIS
    got = hashes(conn, seq - 1, 1)
    return got[0] if got else GENESIS


class BlockCache:
    """Blocks read for point look-ups, the most recent kept (one per connection's unit of work)."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._blocks: OrderedDict[int, Block] = OrderedDict()

    def block(self, conn: Connection, seq: int) -> Block | None:
        for first, b in self._blocks.items():
            if first <= seq <= b.last_seq:
                self._blocks.move_to_end(first)
                return b
        row = conn.execute(
            select(*_BLOCK_COLUMNS)
            .where(t.ledger_blocks.c.first_seq <= seq)
            .order_by(t.ledger_blocks.c.first_seq.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        b = _block(*row)
        if not b.first_seq <= seq <= b.last_seq:
            return None
        self._blocks[b.first_seq] = b
        if len(self._blocks) > self.size:
            self._blocks.popitem(last=False)
        return b

    def line(self, conn: Connection, seq: int) -> bytes | None:
        b = self.block(conn, seq)
        return None if b is None else b.lines[seq - b.first_seq]

    def entry(self, conn: Connection, seq: int) -> Entry | None:
        b = self.block(conn, seq)
        if b is None:
            return None
        i = seq - b.first_seq
        if i > 0:
            prev = b.hashes[32 * (i - 1) : 32 * i]
        else:
            pb = self.block(conn, seq - 1) if seq > 1 else None
            prev = pb.digest(seq - 1) if pb is not None else GENESIS
        return decode_entry(b.lines[i], b.hashes[32 * i : 32 * i + 32], prev)


def entries_at(conn: Connection, seqs: Iterable[int], cache: BlockCache | None = None) -> dict[int, Entry]:
    """The entries at those seqs (that exist)."""
    cache = cache or BlockCache()
    out: dict[int, Entry] = {}
    for s in sorted(set(seqs)):
        e = cache.entry(conn, s)
        if e is not None:
            out[s] = e
    return out


def hashes(conn: Connection, start: int, size: int) -> list[bytes]:
    """The hashes of entries ``start + 1 .. start + size`` (the leaves of a Merkle subtree), or fewer
    when the ledger ends before."""
    if size <= 0:
        return []
    lo, hi = start + 1, start + size
    first = _block_start(conn, lo)
    if first is None:
        return []
    rows = conn.execute(
        select(t.ledger_blocks.c.first_seq, t.ledger_blocks.c.hashes)
        .where(t.ledger_blocks.c.first_seq >= first, t.ledger_blocks.c.first_seq <= hi)
        .order_by(t.ledger_blocks.c.first_seq)
    ).all()
    out: list[bytes] = []
    expect = lo
    for first_seq, blob in rows:
        data = bytes(blob)
        f = int(first_seq)
        if f > expect:
            break  # a gap: the caller sees fewer hashes than asked for
        for k in range(max(expect, f), min(hi, f + len(data) // 32 - 1) + 1):
            i = k - f
            out.append(data[32 * i : 32 * i + 32])
            expect = k + 1
    return out


def hash_at(conn: Connection, seq: int) -> str | None:
    """The hash of entry ``seq`` as hex (``GENESIS_HEX`` for 0), or None past the end."""
    if seq == 0:
        return GENESIS_HEX
    got = hashes(conn, seq - 1, 1)
    return got[0].hex() if got else None


def acts(conn: Connection, kinds: Sequence[str], upto: int | None = None) -> list[tuple[int, str, str]]:
    """(seq, kind, actor) of the entries of those kinds (never record operations), in seq order."""
    q = select(t.ledger_acts.c.seq, t.ledger_acts.c.kind, t.ledger_acts.c.actor).where(
        t.ledger_acts.c.kind.in_(list(kinds))
    )
    if upto is not None:
        q = q.where(t.ledger_acts.c.seq <= upto)
    return [(int(s), str(k), str(a)) for s, k, a in conn.execute(q.order_by(t.ledger_acts.c.seq))]


# ------------------------------------------------------------------ verifying


def _seq_of(line: bytes) -> int:
    """The ``seq`` an entry's bytes name (their last field: ``,"seq":N}``)."""
    cut = line.rfind(b',"seq":')
    if cut < 0 or not line.endswith(b"}"):
        raise ValueError("no seq")
    return int(line[cut + 7 : -1])


def verify(conn: Connection) -> VerifyResult:
    """Recompute the hash chain over every stored entry, then compare its end with the recorded head
    and the cached Merkle tree. Names the first entry whose content, order or hash does not match."""
    from socred.store import merkle_store

    expected = 1
    prev = GENESIS
    count = 0

    def bad(seq: int, why: str) -> VerifyResult:
        return VerifyResult(False, count, prev.hex(), seq, why)

    sha = hashlib.sha256
    chunk_roots: list[bytes] = []  # Merkle roots of complete 256-entry chunks, for the cache check
    leaves: list[bytes] = []
    try:
        for block in iter_blocks(conn):
            if block.first_seq != expected:
                if block.first_seq > expected:
                    return bad(
                        expected,
                        f"entry {expected} is missing (found {block.first_seq} next): an entry was deleted",
                    )
                return bad(
                    expected, f"entry {block.first_seq} appears again or out of order after {expected - 1}"
                )
            for i, line in enumerate(block.lines):
                seq = block.first_seq + i
                stored = block.hashes[32 * i : 32 * i + 32]
                try:
                    named = _seq_of(line)
                except ValueError:
                    return bad(
                        seq, f"entry {seq} is not a well-formed entry: it was edited after it was written"
                    )
                if named > seq:
                    return bad(
                        seq, f"entry {seq} is missing (found {named} next): an entry was deleted or moved"
                    )
                if named < seq:
                    return bad(seq, f"entry {named} appears again or out of order after {seq - 1}")
                if sha(prev + line).digest() != stored:
                    return bad(
                        seq,
                        f"content of entry {seq} does not match its hash: it was edited after it was written",
                    )
                prev = stored
                count += 1
                leaves.append(stored)
                if len(leaves) == merkle_store.CHUNK:
                    chunk_roots.append(merkle.root_of(leaves))
                    leaves = []
            expected = block.last_seq + 1
    except DamagedBlock as e:
        return bad(e.first_seq, str(e))
    head_seq, head_hash = head(conn)
    if head_seq > count:
        return VerifyResult(
            False,
            count,
            prev.hex(),
            count + 1,
            f"entries {count + 1}..{head_seq} are missing: the ledger was truncated",
        )
    if head_seq == count and head_seq > 0 and head_hash != prev.hex():
        return VerifyResult(
            False, count, prev.hex(), head_seq, f"entry {head_seq} does not match the recorded head hash"
        )
    if count and merkle_store.has_cache(conn):
        first_bad = merkle_store.first_bad_chunk(conn, chunk_roots)
        if first_bad is not None:
            s = first_bad * merkle_store.CHUNK + 1
            return VerifyResult(
                False,
                count,
                prev.hex(),
                s,
                f"the cached Merkle tree disagrees with the chain from entry {s}: "
                "its nodes were edited (signed checkpoints would carry a wrong Merkle root)",
            )
    return VerifyResult(True, count, prev.hex())
