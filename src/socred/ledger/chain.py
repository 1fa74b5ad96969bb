"""The hash chain of the ledger (records.md, "The ledger").

Each entry is ``seq``, ``recorded_at``, ``actor``, ``kind`` and ``body`` (the
operation's canonical JSON). Its hash is
``SHA-256(prev_hash || canonical JSON of {actor, body, kind, recorded_at, seq})``
where ``prev_hash`` is the previous entry's hash as 32 raw bytes (32 zero bytes
before entry 1). Pure functions only: storage lives in ``socred.store``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = bytes(32)
GENESIS_HEX = GENESIS.hex()


def canonical_json(value: Any) -> str:
    """Sorted keys, UTF-8 (no ASCII escaping), no insignificant white space."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def utc_timestamp(now: datetime | None = None) -> str:
    """An entry's ``recorded_at``: UTC, ISO 8601 with microseconds and a ``Z``."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def checkpoint_message(origin: str, size: int, root_hash: str, merkle_root: str | None = None) -> str:
    """The exact text a checkpoint signature covers: canonical JSON of the origin, the size, the head
    hash and, when given, the RFC 6962 Merkle root of the first ``size`` entries (ledger/merkle.py)."""
    fields: dict[str, Any] = {"origin": origin, "root_hash": root_hash, "size": size}
    if merkle_root is not None:
        fields["merkle_root"] = merkle_root
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def entry_bytes(seq: int, recorded_at: str, actor: str, kind: str, body_json: str) -> bytes:
    """Canonical JSON of everything in an entry but its hashes.

    ``body_json`` must already be canonical; the keys are written in sorted order
    by hand so that the body is not parsed and re-serialised on the hot path.
    """
    text = (
        '{"actor":'
        + json.dumps(actor, ensure_ascii=False)
        + ',"body":'
        + body_json
        + ',"kind":'
        + json.dumps(kind, ensure_ascii=False)
        + ',"recorded_at":'
        + json.dumps(recorded_at)
        + ',"seq":'
        + str(int(seq))
        + "}"
    )
    return text.encode("utf-8")


def entry_hash(prev_hash_hex: str, seq: int, recorded_at: str, actor: str, kind: str, body_json: str) -> str:
    h = hashlib.sha256(bytes.fromhex(prev_hash_hex))
    h.update(entry_bytes(seq, recorded_at, actor, kind, body_json))
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    recorded_at: str
    actor: str
    kind: str
    body: str  # canonical JSON text
    prev_hash: str
    hash: str

    def decoded(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value

    def to_json(self) -> dict[str, Any]:
        """The entry as the API and ``socred ledger show`` print it (the body parsed)."""
        return {
            "seq": self.seq,
            "recorded_at": self.recorded_at,
            "actor": self.actor,
            "kind": self.kind,
            "body": json.loads(self.body),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def chain(start_seq: int, prev_hash: str, items: Iterable[tuple[str, str, str, str]]) -> Iterator[Entry]:
    """Seal ``(recorded_at, actor, kind, body_json)`` items into entries after ``prev_hash``."""
    seq = start_seq
    prev = prev_hash
    for recorded_at, actor, kind, body in items:
        digest = entry_hash(prev, seq, recorded_at, actor, kind, body)
        yield Entry(seq, recorded_at, actor, kind, body, prev, digest)
        prev = digest
        seq += 1


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "entries": self.entries, "head": self.head}
        return {"ok": False, "first_bad_seq": self.first_bad_seq, "reason": self.reason}


class ChainVerifier:
    """Feed entries in storage order; reports the first one that breaks the chain."""

    def __init__(self) -> None:
        self.expected_seq = 1
        self.prev = GENESIS_HEX
        self.count = 0
        self.failure: VerifyResult | None = None

    def feed(self, e: Entry) -> bool:
        if self.failure is not None:
            return False
        seq = self.expected_seq
        if e.seq != seq:
            if e.seq > seq:
                why = f"entry {seq} is missing (found {e.seq} next): an entry was deleted"
            else:
                why = f"entry {e.seq} appears again or out of order after {seq - 1}"
            self.failure = VerifyResult(False, self.count, self.prev, seq, why)
            return False
        if e.prev_hash != self.prev:
            self.failure = VerifyResult(
                False,
                self.count,
                self.prev,
                seq,
                f"prev_hash of entry {seq} does not match the hash of entry {seq - 1}",
            )
            return False
        try:
            json.loads(e.body)
        except ValueError:
            self.failure = VerifyResult(
                False, self.count, self.prev, seq, f"body of entry {seq} is not valid JSON"
            )
            return False
        digest = entry_hash(e.prev_hash, e.seq, e.recorded_at, e.actor, e.kind, e.body)
        if digest != e.hash:
            self.failure = VerifyResult(
                False,
                self.count,
                self.prev,
                seq,
                f"content of entry {seq} does not match its hash: it was edited after it was written",
            )
            return False
        self.prev = e.hash
        self.expected_seq += 1
        self.count += 1
        return True

    def result(self) -> VerifyResult:
        if self.failure is not None:
            return self.failure
        return VerifyResult(True, self.count, self.prev)


def verify(entries: Iterable[Entry]) -> VerifyResult:
    v = ChainVerifier()
    for e in entries:
        if not v.feed(e):
            break
    return v.result()
