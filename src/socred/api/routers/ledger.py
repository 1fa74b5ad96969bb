"""The ledger over HTTP: the signed checkpoint (public); entries and verification (auditors, administrators)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from socred.api.deps import ERRORS_AUTH, ErrorBody, get_services, not_found, require_role
from socred.service import access_log, federation, proofs
from socred.service.auth import Principal, ledger_checkpoint
from socred.service.platform import UsageError

router = APIRouter(prefix="/api/v1/ledger", tags=["ledger"])


def reason_query() -> Any:
    return Query(
        min_length=3, max_length=500, description="Why you read it: kept in each subject's access log."
    )


class Checkpoint(BaseModel):
    """The signed head of the ledger: anyone can keep it and later prove the ledger was not rewritten."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "origin": "socred",
                    "size": 1042,
                    "root_hash": "9f2c5d0e4b7a1c3e8d6f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d",
                    "merkle_root": "5d1e0c3b9a7f2e4d6c8b0a1f3e5d7c9b2a4f6e8d0c1b3a5f7e9d2c4b6a8f0e1d",
                    "algorithm": "Ed25519",
                    "key_id": "3b1f0c9a7d2e4f61",
                    "public_key": "mZ5y0rQ9...base64...=",
                    "signed_message": '{"merkle_root":"5d1e…","origin":"socred","root_hash":"9f2c…","size":1042}',
                    "signature": "base64 Ed25519 signature of signed_message",
                }
            ]
        }
    }

    origin: str = Field(description="The name of this ledger.")
    size: int = Field(description="Number of entries (the seq of the head).")
    root_hash: str = Field(description="Hash of the head entry (hex); it commits to every entry before it.")
    merkle_root: str | None = Field(
        None,
        description="RFC 6962 Merkle root (hex) over the hashes of entries 1..size: inclusion and consistency "
        "proofs verify against it (GET /api/v1/ledger/proof, /consistency).",
    )
    algorithm: str = Field(description="Ed25519.")
    key_id: str = Field(description="First 16 hex digits of SHA-256 of the raw public key.")
    public_key: str = Field(description="The raw 32-byte Ed25519 public key, base64.")
    signed_message: str = Field(
        description="The exact UTF-8 text signed: canonical JSON of merkle_root, origin, root_hash, size."
    )
    signature: str = Field(description="Ed25519 signature of signed_message, base64.")


class LedgerEntry(BaseModel):
    seq: int
    recorded_at: str
    actor: str
    kind: str
    body: dict[str, Any]
    prev_hash: str
    hash: str


class LedgerPage(BaseModel):
    entries: list[LedgerEntry]
    next_after: int | None = Field(description="Pass as `after` for the next page; null at the end.")
    anchor: str | None = Field(
        None,
        description="Hash of entry `after` as this ledger holds it now (64 zeros for `after=0`): a reader "
        "compares it with the hash it verified before, so a rewritten history is caught.",
    )
    checkpoint: Checkpoint | None = Field(None, description="Signed checkpoint at the page's last entry.")
    head: Checkpoint | None = Field(None, description="Signed checkpoint of the ledger head.")
    consistency: list[str] = Field(
        default_factory=list,
        description="RFC 6962 consistency proof (hex hashes) from the first `after` entries to the head.",
    )


class VerifyAnswer(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"ok": True, "entries": 1042, "head": "9f2c…"}]}}

    ok: bool
    entries: int | None = None
    head: str | None = None
    first_bad_seq: int | None = None
    reason: str | None = None


@router.get("/checkpoint", response_model=Checkpoint, summary="The signed ledger head (public)")
def checkpoint(request: Request) -> dict[str, Any]:
    s = get_services(request)
    return ledger_checkpoint(s.platform, s.signer())


class InclusionProof(BaseModel):
    type: str = Field(description="inclusion")
    seq: int
    leaf_index: int = Field(description="seq - 1: the leaf of the entry in the RFC 6962 tree.")
    tree_size: int
    entry_hash: str = Field(description="The entry's hash: the leaf's data.")
    path: list[str] = Field(description="The audit path (hex), RFC 6962 section 2.1.1.")
    checkpoint: Checkpoint


class ConsistencyProof(BaseModel):
    type: str = Field(description="consistency")
    first: int
    first_merkle_root: str
    second: int
    path: list[str] = Field(description="The consistency proof (hex), RFC 6962 section 2.1.2.")
    checkpoint: Checkpoint


def _proof(call: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = call()
        return result
    except UsageError as e:
        raise not_found(str(e)) from None


@router.get(
    "/proof",
    response_model=InclusionProof,
    responses={404: {"model": ErrorBody}},
    summary="Prove that an entry is in the ledger (public; no content, only its hash)",
)
def inclusion_proof(
    request: Request,
    seq: int = Query(ge=1, le=2**62, description="The entry."),
    size: int | None = Query(
        None, ge=1, le=2**62, description="Tree size to prove against (default: the head)."
    ),
) -> dict[str, Any]:
    s = get_services(request)
    return _proof(lambda: proofs.prove_inclusion(s.platform, s.signer(), seq, size))


@router.get(
    "/consistency",
    response_model=ConsistencyProof,
    responses={404: {"model": ErrorBody}},
    summary="Prove that the first FIRST entries are unchanged in the current ledger (public)",
)
def consistency_proof(
    request: Request,
    first: int = Query(ge=1, le=2**62, description="The size of the older checkpoint you hold."),
    second: int | None = Query(None, ge=1, le=2**62, description="The newer size (default: the head)."),
) -> dict[str, Any]:
    s = get_services(request)
    return _proof(lambda: proofs.prove_consistency(s.platform, s.signer(), first, second))


@router.get(
    "/entries",
    response_model=LedgerPage,
    responses=ERRORS_AUTH,
    summary="Read ledger entries (auditors, administrators; logged in each subject's access log)",
)
def entries(
    request: Request,
    reason: str = reason_query(),
    after: int = Query(0, ge=0, le=2**62, description="Entries after this seq."),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(require_role("admin", "auditor", "node")),
) -> dict[str, Any]:
    """A page of the ledger with its proof: the signed checkpoint at the page's last entry, the signed
    head and the anchor (docs/federation.md). Downstream nodes replicate through this endpoint."""
    s = get_services(request)
    s.platform.ensure_schema()
    page = federation.serve_page(s.platform, s.signer(), after, limit)
    out = page["entries"]
    if out:
        with s.platform.engine.connect() as conn:
            subjects = access_log.subjects_of_entries(conn, out)
        if subjects:
            first, last = out[0]["seq"], out[-1]["seq"]
            access_log.record(
                s.platform.engine,
                [
                    access_log.Access(
                        sid,
                        principal.kind,
                        principal.id,
                        "ledger",
                        reason,
                        {"entries": [first, last], "seqs": seqs[:50]},
                    )
                    for sid, seqs in sorted(subjects.items())
                ],
            )
    return page


@router.get(
    "/verify",
    response_model=VerifyAnswer,
    responses=ERRORS_AUTH,
    summary="Recompute the hash chain (auditors, administrators)",
)
def verify(
    request: Request, principal: Principal = Depends(require_role("admin", "auditor"))
) -> dict[str, Any]:
    result: dict[str, Any] = get_services(request).platform.verify_ledger().to_dict()
    return result
