"""Federation without I/O: node codes, verifying a replicated page, national list overlays.

A node (``cn``, ``cn-31``, ``cn-35-02``) serves its ledger to the nodes allowed to read it. A page
of entries comes with two signed checkpoints: one at the page's last entry and the node's head.
The reader holds the last (seq, hash) it verified from that node. The page is accepted only if

1. the node's signatures verify under the public key registered for it (not the one the response
   names: a response may lie about its key);
2. the page starts right after what the reader holds, the first entry links to the held hash and
   the ``anchor`` (the hash the node now has at the held seq) equals the held hash, and the RFC 6962
   consistency proof leads from the Merkle root verified before to the signed head's: a node that
   rewrote history before that point is caught here even when it re-hashed everything after;
3. every entry recomputes to its hash and links to the previous one (the hash chain is its own
   consistency proof from the held checkpoint to the page checkpoint);
4. the page checkpoint names the last entry's seq and hash, and its Merkle root is the one the reader
   computes itself from the verified entries (it keeps the Merkle frontier of each upstream);
   the head is not behind it.

Only then is anything of the page applied. :func:`verify_page` returns the entries or raises
:class:`FederationError` with the precise reason.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from socred.ledger.chain import ChainVerifier, Entry, canonical_json, checkpoint_message
from socred.ledger.merkle import Frontier, ProofError, verify_consistency

NODE_CODE_RE = re.compile(r"^[a-z]{2}(-[0-9]{2}){0,3}$")
REGION_RE = re.compile(r"^[0-9]{0,6}$")
# Ledger kinds a national node takes from a local one: record operations and catalog loads.
RECORD_KINDS = frozenset({"submit", "correct", "retract", "repair"})
CATALOG_KIND = "catalog.load"


class FederationError(Exception):
    """A response from another node that must not be applied; the message says exactly why."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        super().__init__(message)
        self.seq = seq


def check_node_code(code: str) -> str:
    c = code.strip().lower()
    if not NODE_CODE_RE.match(c):
        raise ValueError(
            f"invalid node code {code!r}: two letters, then up to three '-NN' parts, e.g. cn, cn-31, cn-35-02"
        )
    return c


def check_regions(regions: Sequence[str]) -> list[str]:
    out: list[str] = []
    for r in regions:
        r = r.strip()
        if not REGION_RE.match(r):
            raise ValueError(
                f"invalid region prefix {r!r}: up to six digits of an administrative division code"
            )
        if r not in out:
            out.append(r)
    return out


def in_regions(region: str, prefixes: Sequence[str]) -> bool:
    return any(region.startswith(p) for p in prefixes)


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key given as base64 (what ``/api/v1/ledger/checkpoint`` shows) or 64 hex digits."""
    s = text.strip()
    try:
        raw = bytes.fromhex(s) if re.fullmatch(r"[0-9a-fA-F]{64}", s) else base64.b64decode(s, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError):
        raise ValueError(
            "the public key must be an Ed25519 public key: base64 of 32 bytes or 64 hex digits"
        ) from None


def verify_signed(public_key: Ed25519PublicKey, message: str, signature_b64: str, what: str) -> None:
    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True), message.encode())
    except (InvalidSignature, ValueError, TypeError):
        raise FederationError(
            f"{what}: the signature does not verify under the registered public key"
        ) from None


def verify_checkpoint(
    public_key: Ed25519PublicKey, cp: Any, origin: str, what: str
) -> tuple[int, str, bytes]:
    """(size, root_hash, merkle_root) of a checkpoint signed by the node ``origin``, or FederationError."""
    if not isinstance(cp, Mapping):
        raise FederationError(f"{what} is missing")
    try:
        size, root = int(cp["size"]), str(cp["root_hash"])
        merkle_root = str(cp["merkle_root"])
        signature = str(cp["signature"])
        signed_origin = str(cp["origin"])
        merkle_bytes = bytes.fromhex(merkle_root)
    except (KeyError, TypeError, ValueError):
        raise FederationError(f"{what} lacks size, root_hash, merkle_root, origin or signature") from None
    if signed_origin != origin:
        raise FederationError(
            f"{what} is signed as {signed_origin!r}, but this node is registered as {origin!r}"
        )
    verify_signed(public_key, checkpoint_message(signed_origin, size, root, merkle_root), signature, what)
    return size, root, merkle_bytes


@dataclass(frozen=True, slots=True)
class VerifiedPage:
    entries: list[Entry]
    last_seq: int
    last_hash: str
    head_size: int
    head_hash: str
    checkpoint: dict[str, Any]  # the signed page checkpoint (kept as the proof of what was applied)
    frontier: Frontier  # the Merkle frontier of the upstream's ledger after the page


def _entry(raw: Any, position: int) -> Entry:
    if not isinstance(raw, Mapping):
        raise FederationError(f"entry {position} of the page is not an object")
    try:
        body = raw["body"]
        text = body if isinstance(body, str) else canonical_json(body)
        return Entry(
            int(raw["seq"]),
            str(raw["recorded_at"]),
            str(raw["actor"]),
            str(raw["kind"]),
            text,
            str(raw["prev_hash"]),
            str(raw["hash"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise FederationError(f"entry {position} of the page is malformed: {e!s}") from None


def verify_page(
    page: Any,
    *,
    origin: str,
    public_key: Ed25519PublicKey,
    held_seq: int,
    held_hash: str,
    frontier: Frontier | None = None,
) -> VerifiedPage:
    """Check a page of ``GET /api/v1/ledger/entries`` from node ``origin`` (see the module doc).

    ``frontier`` is the Merkle frontier of the ``held_seq`` entries verified so far (empty at 0).
    """
    frontier = frontier or Frontier()
    if frontier.size != held_seq:
        raise ValueError("the frontier must cover exactly the entries already verified")
    held_root = frontier.root()
    if not isinstance(page, Mapping):
        raise FederationError("the response is not a JSON object")
    head_size, head_hash, head_root = verify_checkpoint(
        public_key, page.get("head"), origin, "the head checkpoint"
    )
    if head_size < held_seq:
        raise FederationError(
            f"the node's signed head is at {head_size} entries, behind the {held_seq} already verified from it: "
            "its ledger was truncated or replaced",
            head_size + 1,
        )
    anchor = page.get("anchor")
    if held_seq > 0 and anchor != held_hash:
        raise FederationError(
            f"history rewritten: entry {held_seq} now hashes to {str(anchor)[:16]}…, but the checkpoint verified "
            f"earlier says {held_hash[:16]}…",
            held_seq,
        )
    if held_seq > 0:  # the RFC 6962 consistency proof from the tree verified before to the signed head
        try:
            proof = [bytes.fromhex(h) for h in page.get("consistency") or []]
            verify_consistency(held_seq, head_size, held_root, head_root, proof)
        except (ProofError, ValueError, TypeError) as why:
            raise FederationError(
                f"the consistency proof from {held_seq} to {head_size} entries fails: {why}", held_seq
            ) from None
    raw_entries = page.get("entries")
    if not isinstance(raw_entries, list):
        raise FederationError("the response has no list of entries")
    entries = [_entry(r, i + 1) for i, r in enumerate(raw_entries)]
    if not entries:
        if head_size != held_seq or (held_seq > 0 and head_hash != held_hash):
            raise FederationError(
                f"the node's head is at {head_size} entries but it served none after {held_seq}", held_seq + 1
            )
        return VerifiedPage([], held_seq, held_hash, head_size, head_hash, {}, frontier)
    v = ChainVerifier()
    v.expected_seq = held_seq + 1
    v.prev = held_hash
    after = Frontier(frontier.size, frontier.nodes)
    for e in entries:
        if not v.feed(e):
            r = v.result()
            raise FederationError(f"entry {r.first_bad_seq}: {r.reason}", r.first_bad_seq)
        after.append(bytes.fromhex(e.hash))
    last = entries[-1]
    cp = page.get("checkpoint")
    size, root, merkle_root = verify_checkpoint(public_key, cp, origin, "the page checkpoint")
    if size != last.seq or root != last.hash:
        raise FederationError(
            f"the page checkpoint signs entry {size} with hash {root[:16]}…, not the page's last entry "
            f"{last.seq} ({last.hash[:16]}…)",
            last.seq,
        )
    if after.root() != merkle_root:
        raise FederationError(
            f"the Merkle root of the first {last.seq} entries is not the one the page checkpoint signs",
            last.seq,
        )
    if head_size < last.seq or (
        head_size == last.seq and (head_hash != last.hash or head_root != merkle_root)
    ):
        raise FederationError("the head checkpoint does not extend the page", last.seq)
    assert isinstance(cp, Mapping)
    return VerifiedPage(entries, last.seq, last.hash, head_size, head_hash, dict(cp), after)


# ------------------------------------------------------------------ national lists flowing down


@dataclass(frozen=True, slots=True)
class NationalMeasure:
    code: str
    activity: str
    effect: str


@dataclass(frozen=True, slots=True)
class NationalMembership:
    """A subject's membership of a list of the upstream (national) catalog, as published to a node."""

    node: str
    catalog: str  # id@version at the upstream
    list_code: str
    kind: str
    title: str
    since: date | None
    until: date | None
    measures: tuple[NationalMeasure, ...]

    @property
    def label(self) -> str:
        """How the list is named in a local answer: the upstream node, then its list code."""
        return f"{self.node}:{self.list_code}"

    def live(self, at: date) -> bool:
        return (self.since is None or self.since <= at) and (self.until is None or at <= self.until)


def snapshot_message(payload: Mapping[str, Any]) -> str:
    """The exact text a list snapshot's signature covers: canonical JSON of everything but the signature."""
    return canonical_json({k: v for k, v in payload.items() if k != "signature"})


def overlay(
    answer: dict[str, Any], memberships: Sequence[NationalMembership], activity: str, at: date
) -> dict[str, Any]:
    """A local check answer (cli.md ``check --json``) with the national memberships of the subject added.

    A live national membership carrying a measure for ``activity`` adds its measures and its list
    (named ``node:list``); a restricting one restricts. ``until`` follows scoring.md: the latest end
    among the restricting lists, None when one of them is open-ended.
    """
    relevant = [m for m in memberships if m.live(at) and any(x.activity == activity for x in m.measures)]
    if not relevant:
        return answer
    out = dict(answer)
    measures = set(out.get("measures") or ())
    lists = list(out.get("lists") or ())
    restricting_ends: list[date | None] = []
    if out.get("decision") == "restricted":
        u = out.get("until")
        restricting_ends.append(date.fromisoformat(u) if isinstance(u, str) else None)
    for m in relevant:
        if m.label not in lists:
            lists.append(m.label)
        restricts = False
        for x in m.measures:
            if x.activity == activity:
                measures.add(f"{m.node}:{x.code}")
                restricts = restricts or x.effect == "restrict"
        if restricts:
            restricting_ends.append(m.until)
    out["measures"] = sorted(measures)
    out["lists"] = lists
    if restricting_ends:
        out["decision"] = "restricted"
        out["until"] = (
            None
            if any(e is None for e in restricting_ends)
            else max(e for e in restricting_ends if e).isoformat()
        )
    return out
