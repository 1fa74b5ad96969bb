"""``socred lists``: manual list actions from the command line (docs/due-process.md).

Registered by ``socred.cli``::

    socred lists propose SUBJECT_ID LIST --action add|remove --reason TEXT --by ADMIN [--until DATE]
    socred lists approve ID --by ADMIN --reason TEXT [--refuse]
    socred lists pending

``--by`` names the administrator (the CLI runs with the database's own rights, like ``socred tokens
issue``; the HTTP API takes the name from the session token). The four-eyes rule holds here too:
the proposer cannot approve its own proposal (exit 1).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

lists_app = typer.Typer(
    help="Manual list actions: one administrator proposes, another approves (four eyes).",
    no_args_is_help=True,
)


def _run(call: Any) -> Any:
    from socred import cli
    from socred.service.list_actions import ListActionError

    try:
        return call()
    except ListActionError as e:
        where = f"{e.field}: " if e.field else ""
        raise cli.Exit(2 if e.status == 422 else 1, where + e.message) from None


def _admin(name: str) -> str:
    from socred import cli

    name = name.strip()
    if not name or len(name) > 100 or ":" in name:
        cli.fail(2, "--by must name the administrator (a user name without ':')")
    return f"admin:{name}"


@lists_app.command("propose")
def lists_propose(
    subject_id: Annotated[str, typer.Argument(help="The subject's identifier.")],
    list_code: Annotated[str, typer.Argument(help="A list code of the catalog that scores the subject.")],
    action: Annotated[str, typer.Option("--action", help="add | remove")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the ledger and the subject.")],
    by: Annotated[str, typer.Option("--by", help="The proposing administrator.")],
    until: Annotated[
        str | None, typer.Option("--until", help="YYYY-MM-DD: the action ends on this day.")
    ] = None,
) -> None:
    """Propose adding or removing a subject on a list; prints the pending proposal as JSON."""
    from socred import cli
    from socred.service.list_actions import ListActions

    end = cli.parse_day(until, "--until")
    la = ListActions(cli.platform())
    cli.emit(_run(lambda: la.propose(_admin(by), subject_id, list_code, action.strip().lower(), reason, end)))


@lists_app.command("approve")
def lists_approve(
    action_id: Annotated[str, typer.Argument(help="The proposal's id (la_…).")],
    by: Annotated[str, typer.Option("--by", help="The deciding administrator (not the proposer).")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")],
    refuse: Annotated[bool, typer.Option("--refuse", help="Refuse instead of approving.")] = False,
) -> None:
    """Approve (a list_action ledger entry naming both administrators) or refuse a proposal."""
    from socred import cli
    from socred.service.list_actions import ListActions

    la = ListActions(cli.platform())
    outcome = "refused" if refuse else "approved"
    cli.emit(_run(lambda: la.decide(action_id.strip(), _admin(by), outcome, reason)))


@lists_app.command("pending")
def lists_pending(limit: Annotated[int, typer.Option("--limit", min=1, max=100_000)] = 100) -> None:
    """Pending proposals as JSON lines, oldest first."""
    from socred import cli
    from socred.service.list_actions import ListActions

    p = cli.platform()
    p.ensure_schema()
    for item in ListActions(p).find("pending", None, limit):
        cli.emit(item)
