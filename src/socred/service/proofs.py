"""Inclusion and consistency proofs of the ledger, and their offline verification.

``prove_*`` read the database; :func:`check_proof` needs nothing but the proof document (and,
ideally, the public key learned out of band): it is the verifier an outsider runs.

A proof document::

    {"type": "inclusion", "seq": 42, "leaf_index": 41, "tree_size": 1000, "entry_hash": "…",
     "path": ["…", …], "checkpoint": {…signed at tree_size…}, "entry": {…optional…}}
    {"type": "consistency", "first": 500, "first_merkle_root": "…", "second": 1000,
     "path": ["…", …], "checkpoint": {…signed at second…}}
"""

from __future__ import annotations

import base64
from typing import Any

from socred.ledger import merkle
from socred.ledger.chain import canonical_json, entry_hash
from socred.ledger.merkle import ProofError
from socred.service.auth import LedgerSigner, ledger_checkpoint, verify_checkpoint
from socred.service.platform import Platform, UsageError
from socred.store import ledger, merkle_store


def _size(platform: Platform, size: int | None) -> int:
    head = platform.head()[0]
    if size is None:
        return head
    if not 1 <= size <= head:
        raise UsageError(f"--size must be between 1 and the ledger's {head} entries, not {size}")
    return size


def prove_inclusion(
    platform: Platform, signer: LedgerSigner, seq: int, size: int | None = None, with_entry: bool = False
) -> dict[str, Any]:
    platform.ensure_schema()
    n = _size(platform, size)
    if not 1 <= seq <= n:
        raise UsageError(f"entry {seq} is not among the first {n} entries of the ledger")
    cp = ledger_checkpoint(platform, signer, n)  # it brings the cached tree up to date first
    with platform.engine.connect() as conn:
        row = ledger.BlockCache().entry(conn, seq)
        assert row is not None  # 1 <= seq <= the head
        path = merkle_store.Tree(conn).inclusion(seq - 1, n)
    out: dict[str, Any] = {
        "type": "inclusion",
        "seq": seq,
        "leaf_index": seq - 1,
        "tree_size": n,
        "entry_hash": row.hash,
        "path": [h.hex() for h in path],
        "checkpoint": cp,
    }
    if with_entry:
        out["entry"] = {
            "seq": row.seq,
            "recorded_at": row.recorded_at,
            "actor": row.actor,
            "kind": row.kind,
            "body": row.body,
            "prev_hash": row.prev_hash,
        }
    return out


def prove_consistency(
    platform: Platform, signer: LedgerSigner, first: int, second: int | None = None
) -> dict[str, Any]:
    platform.ensure_schema()
    n = _size(platform, second)
    if not 1 <= first <= n:
        raise UsageError(f"the first size must be between 1 and {n}, not {first}")
    cp = ledger_checkpoint(platform, signer, n)
    with platform.engine.connect() as conn:
        tree = merkle_store.Tree(conn)
        old = tree.root(first)
        path = tree.consistency(first, n)
    return {
        "type": "consistency",
        "first": first,
        "first_merkle_root": old.hex(),
        "second": n,
        "path": [h.hex() for h in path],
        "checkpoint": cp,
    }


def check_proof(
    proof: Any, public_key: str | None = None, old_checkpoint: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Verify a proof document offline. ``{"ok": true, …}`` or ``{"ok": false, "reason": …}``."""
    try:
        return _check(proof, public_key, old_checkpoint)
    except (ProofError, UsageError) as e:
        return {"ok": False, "reason": str(e)}
    except (KeyError, TypeError, ValueError) as e:
        return {"ok": False, "reason": f"the proof document is malformed: {e!s}"}


def _check(proof: Any, public_key: str | None, old: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(proof, dict):
        raise UsageError("the proof document is not a JSON object")
    cp = proof["checkpoint"]
    if not verify_checkpoint(cp):
        raise UsageError("the checkpoint's signature does not verify")
    trusted = False
    if public_key is not None:
        if base64.b64decode(cp["public_key"]) != base64.b64decode(public_key):
            raise UsageError("the checkpoint is signed with another key than the one given")
        trusted = True
    root = bytes.fromhex(cp["merkle_root"])
    if proof.get("type") == "inclusion":
        seq, size = int(proof["seq"]), int(proof["tree_size"])
        if size != int(cp["size"]):
            raise UsageError(f"the proof is for {size} entries, the checkpoint for {cp['size']}")
        leaf = bytes.fromhex(proof["entry_hash"])
        if "entry" in proof:
            e = proof["entry"]
            body = e["body"] if isinstance(e["body"], str) else canonical_json(e["body"])
            if (
                int(e["seq"]) != seq
                or entry_hash(e["prev_hash"], seq, e["recorded_at"], e["actor"], e["kind"], body)
                != proof["entry_hash"]
            ):
                raise UsageError(f"the entry's content does not hash to the entry hash of seq {seq}")
        merkle.verify_inclusion(leaf, seq - 1, size, [bytes.fromhex(h) for h in proof["path"]], root)
        result: dict[str, Any] = {"ok": True, "type": "inclusion", "seq": seq, "tree_size": size}
    elif proof.get("type") == "consistency":
        first, second = int(proof["first"]), int(proof["second"])
        if second != int(cp["size"]):
            raise UsageError(f"the proof is for {second} entries, the checkpoint for {cp['size']}")
        first_root = bytes.fromhex(proof["first_merkle_root"])
        if old is not None:
            if not verify_checkpoint(old):
                raise UsageError("the old checkpoint's signature does not verify")
            if int(old["size"]) != first or bytes.fromhex(old["merkle_root"]) != first_root:
                raise UsageError(
                    f"the old checkpoint ({old['size']} entries) is not the tree the proof starts from: history was rewritten"
                )
            if old["public_key"] != cp["public_key"]:
                raise UsageError("the old and the new checkpoint are signed with different keys")
        merkle.verify_consistency(first, second, first_root, root, [bytes.fromhex(h) for h in proof["path"]])
        result = {"ok": True, "type": "consistency", "first": first, "second": second}
    else:
        raise UsageError("the proof's type must be inclusion or consistency")
    result["key_id"] = cp["key_id"]
    result["key_trusted"] = trusted
    if not trusted:
        result["note"] = "signature checked against the key the checkpoint names; pass --public-key to pin it"
    return result


__all__ = ["check_proof", "prove_consistency", "prove_inclusion"]
