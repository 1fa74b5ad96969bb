"""Commands for the HTTP API's credentials and records: parties, tokens, receipts, key rotation, checkpoints.

Registered by ``socred.cli``::

    socred parties add CODE --name NAME --activities a,b     # prints the API key once
    socred parties list | revoke CODE | rotate CODE
    socred providers revoke CODE | rotate CODE
    socred tokens issue SUBJECT_OR_USER --role subject|reviewer|admin|auditor [--ttl 8h]
    socred receipts show ID [--reproduce] | list [--subject ID] [--party CODE]
    socred ledger checkpoint
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

parties_app = typer.Typer(
    help="Register relying parties (airlines, railways, hotels, banks) and manage their keys.",
    no_args_is_help=True,
)
tokens_app = typer.Typer(
    help="Issue signed session tokens for subjects, reviewers, administrators, auditors.",
    no_args_is_help=True,
)
receipts_app = typer.Typer(
    help="Read the receipts of check answers and reproduce them from the ledger.", no_args_is_help=True
)


def _platform() -> Any:
    from socred import cli

    return cli.platform()


def _emit(obj: Any) -> None:
    from socred import cli

    cli.emit(obj)


def _secret(name: str) -> str | None:
    value = os.environ.get(name)
    return value or None


# ---------------------------------------------------------------- parties


@parties_app.command("add")
def parties_add(
    code: Annotated[str, typer.Argument(help="Party code, [a-z0-9.-]+, e.g. air.cn")],
    name: Annotated[str, typer.Option("--name", help="Display name, e.g. 'China Air'.")],
    activities: Annotated[
        str, typer.Option("--activities", help="Activities it may check, comma-separated.")
    ],
) -> None:
    """Register a relying party. Prints its API key ONCE: only a hash is stored."""
    from socred.service.auth import add_party

    print(add_party(_platform(), code, name, activities.split(",")))


@parties_app.command("list")
def parties_list() -> None:
    """List relying parties as JSON lines."""
    from socred.service.auth import list_parties

    for p in list_parties(_platform()):
        _emit(p.to_dict())


@parties_app.command("revoke")
def parties_revoke(code: Annotated[str, typer.Argument(help="Party code.")]) -> None:
    """Revoke a party's key: it gets 401 from now on."""
    from socred.service.auth import revoke_party

    revoke_party(_platform(), code)


@parties_app.command("rotate")
def parties_rotate(code: Annotated[str, typer.Argument(help="Party code.")]) -> None:
    """Give a party a new key (printed once); the old one stops working at once."""
    from socred.service.auth import rotate_party

    print(rotate_party(_platform(), code))


# ---------------------------------------------------------------- providers' keys


def provider_revoke(code: Annotated[str, typer.Argument(help="Provider code.")]) -> None:
    """Revoke a provider's key: it gets 401 from now on."""
    from socred.service.auth import revoke_provider

    revoke_provider(_platform(), code)


def provider_rotate(code: Annotated[str, typer.Argument(help="Provider code.")]) -> None:
    """Give a provider a new key (printed once); the old one stops working at once."""
    from socred.service.auth import rotate_provider

    print(rotate_provider(_platform(), code))


def add_provider_key_commands(providers_app: typer.Typer) -> None:
    providers_app.command("revoke")(provider_revoke)
    providers_app.command("rotate")(provider_rotate)


# ---------------------------------------------------------------- tokens


@tokens_app.command("issue")
def tokens_issue(
    subject_or_user: Annotated[
        str, typer.Argument(help="A subject's identifier (role subject) or a user name.")
    ],
    role: Annotated[str, typer.Option("--role", help="subject | reviewer | admin | auditor")],
    ttl: Annotated[
        str | None,
        typer.Option(
            "--ttl",
            help="Lifetime: seconds, or 15m, 8h, 7d (at most 30d). Default: $SOCRED_TOKEN_TTL, else 1h.",
        ),
    ] = None,
) -> None:
    """Print a signed session token (HS256 JWT) — the stand-in for a real identity provider."""
    from socred.service.auth import TokenCodec, parse_ttl, token_secret

    p = _platform()
    p.ensure_schema()
    seconds = parse_ttl(ttl if ttl is not None else os.environ.get("SOCRED_TOKEN_TTL", "3600"))
    codec = TokenCodec(token_secret(p.engine, _secret("SOCRED_TOKEN_SECRET")))
    print(codec.issue(subject_or_user, role.strip().lower(), seconds))


# ---------------------------------------------------------------- receipts


@receipts_app.command("show")
def receipts_show(
    receipt_id: Annotated[str, typer.Argument(help="A receipt id (rc_…, or rb_….N for a batch answer).")],
    again: Annotated[
        bool,
        typer.Option(
            "--reproduce", help="Also recompute the answer from the ledger alone; exit 1 when it differs."
        ),
    ] = False,
) -> None:
    """Print a receipt as JSON: the answer as given, with the ledger size and head hash it came from."""
    from socred import cli
    from socred.service.checks import get_receipt, reproduce

    p = _platform()
    receipt = get_receipt(p, receipt_id.strip())
    if not again:
        _emit(receipt)
        return
    result = reproduce(p, receipt)
    _emit({**receipt, "reproduction": result})
    if not result["match"]:
        raise cli.Exit(1)


@receipts_app.command("list")
def receipts_list(
    subject: Annotated[str | None, typer.Option("--subject", help="Only this subject.")] = None,
    party: Annotated[str | None, typer.Option("--party", help="Only this relying party.")] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="Only this batch (rb_…).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000)] = 20,
) -> None:
    """Receipts as JSON lines, newest first."""
    from socred.service.checks import list_receipts

    p = _platform()
    sid = p.parse_subject(subject).value if subject else None
    for r in list_receipts(p, subject_id=sid, party=party, batch_id=batch, limit=limit):
        _emit(r)


# ---------------------------------------------------------------- ledger checkpoint


def checkpoint_command() -> None:
    """Print the signed ledger head: size, root hash, Ed25519 signature, public key id."""
    from socred.service.auth import LedgerSigner, ledger_checkpoint

    p = _platform()
    p.ensure_schema()
    signer = LedgerSigner.load(
        p.engine, _secret("SOCRED_SIGNING_KEY"), os.environ.get("SOCRED_ORIGIN") or "socred"
    )
    _emit(ledger_checkpoint(p, signer))


def _signer(p: Any) -> Any:
    from socred.service.auth import LedgerSigner

    return LedgerSigner.load(
        p.engine, _secret("SOCRED_SIGNING_KEY"), os.environ.get("SOCRED_ORIGIN") or "socred"
    )


def prove_command(
    seq: Annotated[
        int | None, typer.Argument(help="The entry to prove included (omit with --consistency).")
    ] = None,
    size: Annotated[
        int | None,
        typer.Option("--size", help="Prove against the checkpoint of this many entries (default: the head)."),
    ] = None,
    consistency: Annotated[
        int | None,
        typer.Option(
            "--consistency",
            help="Instead: prove that the ledger of this many entries is a prefix of the current one.",
        ),
    ] = None,
    entry: Annotated[
        bool, typer.Option("--entry", help="Include the entry itself, so its content is checked too.")
    ] = False,
) -> None:
    """Print an RFC 6962 proof with the signed checkpoint it verifies against (JSON).

    socred ledger prove 42                  entry 42 is in the ledger (inclusion proof)
    socred ledger prove --consistency 500   the first 500 entries were not rewritten since (consistency proof)

    Anyone can then check it without the database: socred ledger check-proof proof.json --public-key KEY
    """
    from socred import cli
    from socred.service import proofs

    p = _platform()
    if consistency is not None:
        if seq is not None:
            raise cli.Exit(2, "give either an entry SEQ or --consistency FIRST, not both")
        _emit(proofs.prove_consistency(p, _signer(p), consistency, size))
        return
    if seq is None:
        raise cli.Exit(2, "give the entry SEQ to prove, or --consistency FIRST")
    _emit(proofs.prove_inclusion(p, _signer(p), seq, size, entry))


def check_proof_command(
    proof_file: Annotated[
        Path, typer.Argument(help="A proof printed by 'socred ledger prove' ('-' for stdin).")
    ],
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key", help="The ledger's public key (base64), learned out of band: pins the signer."
        ),
    ] = None,
    old_checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--old-checkpoint", help="A checkpoint kept earlier: a consistency proof must start from it."
        ),
    ] = None,
) -> None:
    """Verify a proof offline, against its signed checkpoint: no database is opened. Exit 1 if it fails."""
    import json
    import sys

    from socred import cli
    from socred.service import proofs

    def load(path: Path) -> Any:
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
            return json.loads(text)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise cli.Exit(2, f"cannot read {str(path)!r} as JSON: {e}") from None

    result = proofs.check_proof(
        load(proof_file), public_key, load(old_checkpoint) if old_checkpoint else None
    )
    _emit(result)
    if not result["ok"]:
        raise cli.Exit(1)
