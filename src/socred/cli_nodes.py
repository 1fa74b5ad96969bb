"""``socred nodes`` and ``socred sync``: federation from the command line (docs/federation.md).

    socred nodes self                                   this node's code and public key (give them upstream)
    socred nodes allow CODE --regions 31                let node CODE read this one; prints its key once
    socred nodes add CODE --url URL --public-key KEY --regions 31 --key nk_…   register a source to pull from
    socred nodes add cn --url URL --public-key KEY --regions 31 --key nk_… --lists   take national lists from cn
    socred nodes status                                 verified position, lag and errors of each source
    socred nodes conflicts                              subjects named differently by different nodes
    socred sync [--node CODE]                           pull, verify and apply now
    socred nodes score CODE SUBJECT_ID                  the answer node CODE gives, from its records and catalog

The node code is ``SOCRED_ORIGIN`` (the name the ledger signs its checkpoints under).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

nodes_app = typer.Typer(
    help="Federation: register the nodes this one pulls from or serves, and watch their lag.\n\n"
    "Connect a city to the national node. On the city (SOCRED_ORIGIN=cn-31): 'socred nodes allow cn "
    "--regions 31' (prints a key) and 'socred nodes self' (prints the public key). On the national node "
    "(SOCRED_ORIGIN=cn): 'socred nodes add cn-31 --url URL --public-key KEY --key nk_... --regions 31', "
    "then 'socred sync' (or SOCRED_SYNC_INTERVAL for socred serve). docs/federation.md explains what is verified.",
    no_args_is_help=True,
)


def _regions(value: str) -> list[str]:
    return [r.strip() for r in value.split(",") if r.strip()]


@nodes_app.command("self")
def nodes_self() -> None:
    """This node's code (SOCRED_ORIGIN) and ledger public key: what another node registers with 'nodes add'."""
    from socred import cli
    from socred.cli_api import _secret
    from socred.service.auth import LedgerSigner

    p = cli.platform()
    p.ensure_schema()
    signer = LedgerSigner.load(
        p.engine, _secret("SOCRED_SIGNING_KEY"), os.environ.get("SOCRED_ORIGIN") or "socred"
    )
    size, root = p.head()
    import base64

    cli.emit(
        {
            "code": signer.origin,
            "public_key": base64.b64encode(signer.public_key).decode(),
            "key_id": signer.key_id,
            "ledger_size": size,
            "root_hash": root,
        }
    )


@nodes_app.command("allow")
def nodes_allow(
    code: Annotated[str, typer.Argument(help="The downstream node's code, e.g. cn.")],
    regions: Annotated[
        str,
        typer.Option("--regions", help="Region prefixes whose national lists it may read (comma-separated)."),
    ] = "",
) -> None:
    """Let another node read this one's ledger (and lists for REGIONS). Prints its key once: hand it over."""
    from socred import cli
    from socred.service import federation

    key = federation.allow_node(cli.platform(), code, _regions(regions))
    cli.emit({"node": code, "key": key})


@nodes_app.command("revoke")
def nodes_revoke(code: Annotated[str, typer.Argument(help="The downstream node's code.")]) -> None:
    """Withdraw a downstream node's key."""
    from socred import cli
    from socred.service import federation

    federation.revoke_node(cli.platform(), code)
    cli.emit({"node": code, "revoked": True})


@nodes_app.command("add")
def nodes_add(
    code: Annotated[str, typer.Argument(help="The upstream source's node code, e.g. cn-31 (Shanghai).")],
    url: Annotated[str, typer.Option("--url", help="Its base URL, e.g. https://credit.sh.example")],
    public_key: Annotated[
        str,
        typer.Option("--public-key", help="Its ledger public key (base64), from 'socred nodes self' there."),
    ],
    key: Annotated[
        str, typer.Option("--key", help="The node key it issued to this node ('socred nodes allow').")
    ],
    regions: Annotated[
        str, typer.Option("--regions", help="Its region prefixes, comma-separated, e.g. 31.")
    ] = "",
    lists: Annotated[
        bool,
        typer.Option(
            "--lists", help="Take that node's list memberships for REGIONS (a node above this one)."
        ),
    ] = False,
) -> None:
    """Register a node to pull from: its ledger (a local node below), or with --lists its lists (a node above)."""
    from socred import cli
    from socred.service import federation

    node = federation.add_node(
        cli.platform(), code, url, public_key, _regions(regions), key, "lists" if lists else "ledger"
    )
    cli.emit(node.status())


@nodes_app.command("status")
def nodes_status(
    json_out: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Each source: what was verified and applied, how far behind (entries, seconds), the last error."""
    from rich.table import Table

    from socred import cli
    from socred.service import federation

    rows = [n.status() for n in federation.list_nodes(cli.platform())]
    if json_out or not cli.out.is_terminal:
        for r in rows:
            cli.emit(r)
        return
    table = Table(title="upstream nodes")
    for col in (
        "node",
        "pull",
        "verified",
        "upstream",
        "behind",
        "applied",
        "dupl.",
        "rejected",
        "errors",
        "last error",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["code"],
            r["pull"],
            str(r["verified_seq"]),
            str(r["upstream_size"]),
            f"{r['lag_entries']} / {r['lag_seconds']:.0f} s",
            str(r["applied"]),
            str(r["duplicates"]),
            str(r["rejected"]),
            str(r["errors"]),
            (r["last_error"] or "")[:60],
        )
    cli.out.print(table)


@nodes_app.command("conflicts")
def nodes_conflicts() -> None:
    """Subjects that arrived under another name from another node (both kept; the first name stays shown)."""
    from socred import cli
    from socred.service import federation

    for c in federation.conflicts(cli.platform()):
        cli.emit(c)


@nodes_app.command("score")
def nodes_score(
    code: Annotated[str, typer.Argument(help="The node whose answer to reproduce.")],
    subject_id: Annotated[str, typer.Argument(help="The subject.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD (default today).")] = None,
) -> None:
    """Reproduce node CODE's score: the records that came from it, under its own catalog."""
    from socred import cli
    from socred.service import federation

    result = federation.score_as_node(cli.platform(), code, subject_id, cli.parse_day(as_of, "--as-of"))
    cli.emit(result.to_dict())


def sync_command(
    node: Annotated[
        str | None, typer.Option("--node", help="Only this source (default: every registered one).")
    ] = None,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=1000, help="Entries per request.")
    ] = 1000,
) -> None:
    """Pull from the registered nodes: verify chain, signatures and anchor, then apply each page whole.

    Exit 1 when a source was refused (tampered response, rewritten history, unreachable); what was
    verified before the refusal stays applied, nothing of the refused page is.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

    from socred import cli
    from socred.service import federation

    p = cli.platform()
    show = cli.err.is_terminal
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=cli.err,
        disable=not show,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def on_page(r: federation.SyncReport) -> None:
            if r.node not in tasks:
                tasks[r.node] = bar.add_task(f"sync {r.node}", total=r.upstream_size)
            bar.update(tasks[r.node], completed=r.verified_seq, total=r.upstream_size)

        reports = federation.sync(p, node, page_size=page_size, on_page=on_page)
    failed = False
    for r in reports:
        cli.emit(r.to_dict())
        failed = failed or r.error is not None
    if failed:
        raise cli.Exit(1, "; ".join(f"{r.node}: {r.error}" for r in reports if r.error))
