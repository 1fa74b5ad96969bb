"""The ``socred`` command line (cli.md): thin commands, each one call into the service layer.

Exit codes: 0 success; 1 the command ran and the answer is negative or partly
failed; 2 bad usage or unreadable input. Errors are one sentence on stderr; a
traceback only with ``--debug``.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from socred.cli_api import (
    add_provider_key_commands,
    check_proof_command,
    checkpoint_command,
    parties_app,
    prove_command,
    receipts_app,
    tokens_app,
)
from socred.cli_diff import catalog_diff_command
from socred.cli_lists import lists_app
from socred.cli_nodes import nodes_app, sync_command
from socred.domain.catalog import CatalogError
from socred.domain.ids import IdentifierError, check_identifier
from socred.domain.scoring import ScoringError

app = typer.Typer(
    name="socred",
    help=(
        "socred — an accountable credit-information platform.\n\n"
        "Providers submit records; every accepted operation is appended to a hash-chained ledger; "
        "versioned catalogs turn records into scores, grades, lists and measures.\n\n"
        "Start here:  socred init;  socred catalog load national.yaml;  "
        "socred providers add court --name 'People's Court' --categories DISHONEST_JUDGMENT_DEBTOR;  "
        "socred ingest records.jsonl --source court;  socred score 110105194912310029 --json"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
catalog_app = typer.Typer(help="Load, list and (de)activate scoring catalogs.", no_args_is_help=True)
providers_app = typer.Typer(
    help="Register and list data providers (courts, tax bureaus, ...).", no_args_is_help=True
)
ledger_app = typer.Typer(
    help="Inspect and verify the append-only, hash-chained ledger.", no_args_is_help=True
)
ids_app = typer.Typer(
    help="Validate resident identity numbers and unified social credit codes.", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")
app.add_typer(providers_app, name="providers")
app.add_typer(ledger_app, name="ledger")
app.add_typer(ids_app, name="ids")
app.add_typer(parties_app, name="parties")
app.add_typer(tokens_app, name="tokens")
app.add_typer(receipts_app, name="receipts")
app.add_typer(lists_app, name="lists")
app.add_typer(nodes_app, name="nodes")
app.command("sync")(sync_command)
add_provider_key_commands(providers_app)
ledger_app.command("checkpoint")(checkpoint_command)
ledger_app.command("prove")(prove_command)
ledger_app.command("check-proof")(check_proof_command)
catalog_app.command("diff")(catalog_diff_command)

err = Console(stderr=True)
out = Console()


class _State:
    db: str | None = None
    debug: bool = False


state = _State()


class Exit(Exception):
    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def fail(code: int, message: str) -> NoReturn:
    raise Exit(code, message)


def say(message: str) -> None:
    """An error: one sentence on stderr, never wrapped."""
    sys.stderr.write(message.rstrip() + "\n")
    sys.stderr.flush()


def emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def platform() -> Any:
    from socred.service.platform import Platform

    return Platform(state.db)


def parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(2, f"{option} must be a date YYYY-MM-DD, got {value!r}")


@app.callback()
def _global(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL or SQLite path. Default: $SOCRED_DB, else ./socred.db. "
            "A postgresql:// URL selects PostgreSQL.",
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback when something fails.")] = False,
) -> None:
    state.db = db
    state.debug = debug


# ---------------------------------------------------------------- schema


@app.command()
def init() -> None:
    """Create (or upgrade) the database schema, and the ledger signing key outside it. Safe to run again.

    The key goes to SOCRED_SIGNING_KEY_FILE, or beside a SQLite database as DB.ledger-key (mode 600).
    Keep it secret and back it up: it signs the ledger's checkpoints (docs/ledger.md).
    """
    from socred.service.auth import create_signing_key_file

    p = platform()
    p.init()
    made = create_signing_key_file(p.engine)
    if made is not None:
        err.print(f"ledger signing key written to {made} (keep it secret, back it up)")
    err.print("[green]schema is up to date[/green]")


# ---------------------------------------------------------------- catalogs


@catalog_app.command("load")
def catalog_load(
    file: Annotated[Path, typer.Argument(help="Catalog YAML file (format: docs/catalogs.md).")],
) -> None:
    """Validate a catalog file, store it as a new version and make its id active. Prints id@version."""
    print(platform().load_catalog_file(file))


@catalog_app.command("list")
def catalog_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False) -> None:
    """List loaded catalog versions."""
    from socred.store import repo

    p = platform()
    p.ensure_schema()
    with p.engine.connect() as conn:
        rows = repo.catalog_documents(conn, active_only=False)
    if as_json:
        for r in rows:
            emit(
                {
                    "catalog": f"{r.id}@{r.version}",
                    "title": r.title,
                    "effective_from": str(r.effective_from),
                    "active": bool(r.active),
                    "ledger_seq": r.ledger_seq,
                }
            )
        return
    table = Table("catalog", "title", "effective from", "active", "ledger seq")
    for r in rows:
        table.add_row(
            f"{r.id}@{r.version}",
            r.title,
            str(r.effective_from),
            "yes" if r.active else "no",
            str(r.ledger_seq),
        )
    out.print(table)


# ---------------------------------------------------------------- providers


@providers_app.command("add")
def providers_add(
    code: Annotated[str, typer.Argument(help="Provider code, [a-z0-9.-]+, e.g. court.sh")],
    name: Annotated[str, typer.Option("--name", help="Display name, e.g. 'Shanghai High People's Court'.")],
    categories: Annotated[
        str, typer.Option("--categories", help="Authorized category codes, comma-separated.")
    ],
) -> None:
    """Register a provider. Prints its API key ONCE: only a hash is stored."""
    key = platform().add_provider(code, name, categories.split(","))
    print(key)


@providers_app.command("list")
def providers_list() -> None:
    """List registered providers and their authorized categories."""
    from socred.store import repo

    p = platform()
    p.ensure_schema()
    with p.engine.connect() as conn:
        for prov in repo.list_providers(conn):
            emit(
                {
                    "code": prov.code,
                    "name": prov.name,
                    "categories": sorted(prov.categories),
                    "revoked": prov.revoked,
                }
            )


# ---------------------------------------------------------------- ingestion


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="JSONL, CSV or Parquet file of operations (records.md).")],
    source: Annotated[str, typer.Option("--source", help="The provider code submitting the file.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="jsonl | csv | parquet (default: from the file suffix).")
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects", help="Write rejected rows with their line, field and reason to this JSONL file."
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help="Operations per transaction (default: 100,000 for Parquet, read column-wise; 2,000 otherwise).",
            min=1,
        ),
    ] = None,
) -> None:
    """Apply a file of operations: validate each, append the accepted ones to the ledger.

    Prints one JSON summary: accepted, duplicates, rejected and the errors with line, field and message.
    Exit 1 when any row was rejected. Re-running the same file is safe: identical operations are duplicates.
    """
    from socred.ingest.bulk import PARQUET_BATCH, ArrowOperations
    from socred.ingest.readers import detect_format, read

    p = platform()
    kind = detect_format(file, fmt)
    rows: Any = read(file, kind)
    if kind == "parquet":  # the vectorised path: columns validated at once, same outcome (tests/ingest)
        rows = ArrowOperations.parquet(file)
    if batch_size is None:
        batch_size = PARQUET_BATCH if kind == "parquet" else 2000
    rej_file = None
    if rejects is not None:
        try:
            rej_file = open(rejects, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as e:
            fail(2, f"cannot write rejects file {str(rejects)!r}: {e.strerror}")

    def on_reject(line: int, op: Any, fld: str, msg: str) -> None:
        if rej_file is not None:
            rej_file.write(
                json.dumps(
                    {"line": line, "field": fld, "message": msg, "row": op}, ensure_ascii=False, default=str
                )
                + "\n"
            )

    size = file.stat().st_size if file.exists() else 0
    show = err.is_terminal and size > 1_000_000
    with Progress(
        TextColumn("[bold]ingest[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("operations"),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
        transient=True,
    ) as progress:
        task = progress.add_task(file.name, total=None)
        try:
            summary = p.ingest(
                source,
                rows,
                batch_size=batch_size,
                on_reject=on_reject,
                on_batch=lambda n: progress.advance(task, n),
            )
        finally:
            if rej_file is not None:
                rej_file.close()
    emit(summary.to_dict())
    if summary.rejected:
        raise Exit(1)


# ---------------------------------------------------------------- scoring


@app.command()
def score(
    subject_id: Annotated[
        str, typer.Argument(help="Resident identity number or unified social credit code.")
    ],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Date YYYY-MM-DD (default: today, Asia/Shanghai).")
    ] = None,
    catalog: Annotated[
        str | None, typer.Option("--catalog", help="Catalog id (default: chosen by region).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON (cli.md).")] = False,
) -> None:
    """Score one subject: score, grade, domain subtotals, every contribution with its legal basis, lists."""
    p = platform()
    result = p.score(subject_id, parse_day(as_of, "--as-of"), catalog)
    if as_json:
        emit(result.to_dict())
        return
    d = result.to_dict()
    out.print(f"[bold]{d['subject_id']}[/bold] ({d['kind']}) under {d['catalog']} as of {d['as_of']}")
    out.print(
        f"score [bold]{d['score']}[/bold]  grade [bold]{d['grade']}[/bold]  "
        + "  ".join(f"{k} {v:+d}" for k, v in d["domains"].items())
    )
    if d["contributions"]:
        table = Table("record", "source", "category", "points", "occurred", "expires", "legal basis")
        for c in d["contributions"]:
            table.add_row(
                c["record_id"],
                c["source"],
                c["category"],
                f"{c['points']:+d}",
                c["occurred_on"],
                c["expires_on"],
                c["legal_basis"],
            )
        out.print(table)
    for li in d["lists"]:
        out.print(f"on list {li['code']} ({li['kind']}) since {li['since']} until {li['until']}")
    if d["measures"]:
        out.print("measures: " + ", ".join(d["measures"]))
    cat = next((c for c in p.catalogs() if c.ref == result.catalog), None)
    if cat is not None:
        for reason in result.reasons(cat):
            out.print(f"  - {reason}")


@app.command()
def check(
    subject_id: Annotated[
        str, typer.Argument(help="Resident identity number or unified social credit code.")
    ],
    activity: Annotated[
        str, typer.Argument(help="The activity a relying party asks about, e.g. air_travel.")
    ],
    at: Annotated[
        str | None, typer.Option("--at", help="Date YYYY-MM-DD (default: today, Asia/Shanghai).")
    ] = None,
    catalog: Annotated[
        str | None, typer.Option("--catalog", help="Catalog id (default: chosen by region).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON (cli.md).")] = False,
) -> None:
    """Is the subject restricted from an activity? Names the measures, lists and the end date."""
    result = platform().check(subject_id, activity, parse_day(at, "--at"), catalog)
    d = result.to_dict()
    if as_json:
        emit(d)
        return
    out.print(
        f"{d['subject_id']} {d['activity']} on {d['at']}: [bold]{d['decision']}[/bold] ({d['catalog']})"
    )
    if d["measures"]:
        out.print(
            f"measures {', '.join(d['measures'])} from lists {', '.join(d['lists'])}; until {d['until']}"
        )


@app.command("score-all")
def score_all(
    out_file: Annotated[Path, typer.Option("--out", help="Output Parquet file, one row per subject.")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Date YYYY-MM-DD (default: today, Asia/Shanghai).")
    ] = None,
    catalog: Annotated[
        str | None, typer.Option("--catalog", help="Only this catalog id and the subjects it serves.")
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help="duckdb (embedded) or spark.")] = "duckdb",
) -> None:
    """Score every subject with at least one record, in one relational pass per catalog."""
    if engine not in ("duckdb", "spark"):
        fail(2, f"--engine must be duckdb or spark, got {engine!r}")
    from socred.service.batch import score_all as run

    summary = run(platform(), out_file, parse_day(as_of, "--as-of"), catalog, engine)
    emit(summary)


@app.command()
def export(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the partitioned Parquet dataset.")],
) -> None:
    """Write the records projection as Parquet partitioned by kind (readable by Spark or DuckDB)."""
    from socred.store.export import export_records

    p = platform()
    p.ensure_schema()
    emit(export_records(p.engine, out_dir))


# ---------------------------------------------------------------- ledger


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Recompute the hash chain; report the first entry whose content, order or hash does not match."""
    result = platform().verify_ledger()
    emit(result.to_dict())
    if not result.ok:
        raise Exit(1)


@app.command("rebuild")
@ledger_app.command("rebuild")
def ledger_rebuild() -> None:
    """Rebuild the records projection from the ledger alone."""
    n = platform().rebuild_projections()
    emit({"replayed": n})


@ledger_app.command("show")
def ledger_show(
    after: Annotated[int, typer.Option("--after", help="Show entries after this seq.")] = 0,
    limit: Annotated[int, typer.Option("--limit", help="At most this many entries.")] = 20,
) -> None:
    """Print ledger entries as JSON lines."""
    from socred.store import repo

    p = platform()
    p.ensure_schema()
    with p.engine.connect() as conn:
        for i, e in enumerate(repo.iter_entries(conn, after)):
            if i >= limit:
                break
            emit(e.to_json())


# ---------------------------------------------------------------- identifiers


@ids_app.command("check")
def ids_check(values: Annotated[list[str], typer.Argument(help="One or more identifiers.")]) -> None:
    """Validate identifiers; one JSON object per value. Exit 1 when any is invalid."""
    bad = False
    for v in values:
        r = check_identifier(v)
        bad = bad or not r["valid"]
        emit(r)
    if bad:
        raise Exit(1)


# ---------------------------------------------------------------- serving and demo


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="uvicorn worker processes.")] = 1,
) -> None:
    """Run the public portal and the HTTP API (uvicorn)."""
    import os

    import uvicorn

    if state.db:
        os.environ["SOCRED_DB"] = state.db
    uvicorn.run(
        "socred.api.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="info"
    )


@app.command()
def demo(
    subjects: Annotated[int, typer.Option("--subjects", help="How many subjects to generate.")] = 2000,
    records: Annotated[int, typer.Option("--records", help="How many records to generate.")] = 8000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same population).")] = 7,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write Parquet files of operations (one directory per provider, and manifest.json) "
            "to this directory instead of filling the database; streams, for national scale.",
        ),
    ] = None,
    changes: Annotated[
        float,
        typer.Option(
            "--changes", help="With --out: corrections, retractions and repairs, as a fraction of records."
        ),
    ] = 0.0,
    projection: Annotated[
        bool,
        typer.Option("--projection", help="With --out: also write the records projection (export schema)."),
    ] = False,
    rows_per_file: Annotated[
        int,
        typer.Option("--rows-per-file", help="With --out: at most this many rows per Parquet file.", min=1),
    ] = 2_000_000,
) -> None:
    """Fill the database with a generated demo population: catalogs, providers and records.

    With --out, write a synthetic national population as Parquet operations instead (socred ingest each
    file with --source set to its directory name; manifest.json lists the providers and their categories).
    """
    if out_dir is not None:
        from socred.demo_scale import ScaleSpec, write_dataset

        show = err.is_terminal and records > 1_000_000
        with Progress(
            TextColumn("[bold]demo[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=not show,
            transient=True,
        ) as progress:
            task = progress.add_task("records", total=records)

            def advance(stage: str, done: int, total: int) -> None:
                progress.update(task, description=stage, completed=done, total=total)

            try:
                spec = ScaleSpec(
                    subjects,
                    records,
                    seed,
                    changes=changes,
                    projection=projection,
                    rows_per_file=rows_per_file,
                )
                emit(write_dataset(out_dir, spec, progress=advance))
            except ValueError as e:
                fail(2, str(e))
        return
    from socred.demo import populate

    emit(populate(platform(), subjects=subjects, records=records, seed=seed))


def main() -> None:
    from socred.service.platform import UsageError

    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except Exit as e:
        if e.message:
            say(e.message)
        sys.exit(e.code)
    except typer.Abort:
        err.print("aborted", style="red")
        sys.exit(1)
    except typer.Exit as e:  # click.exceptions.Exit
        sys.exit(e.exit_code)
    except Exception as e:
        if state.debug:
            raise
        import click

        from socred.ingest.readers import UnreadableFile

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        code = 2
        if isinstance(e, CatalogError | ScoringError):
            code = 1
        elif isinstance(e, UsageError | UnreadableFile | IdentifierError):
            code = 2
        msg = str(e) or e.__class__.__name__
        if not isinstance(e, CatalogError | ScoringError | UsageError | UnreadableFile | IdentifierError):
            msg = f"unexpected error ({e.__class__.__name__}): {msg} — run with --debug for details"
        say(msg)
        sys.exit(code)


if __name__ == "__main__":
    main()
