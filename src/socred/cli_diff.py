"""``socred catalog diff OLD NEW --as-of DATE``: what a new catalog version would change.

Registered on the ``catalog`` sub-command by ``socred.cli``. The numbers come from
:mod:`socred.service.policy_diff`; this module only renders them: tables and a bar chart in
the terminal, JSON with ``--json``, an SVG chart with ``--chart``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from markupsafe import escape
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # the diff engine (DuckDB, Arrow) is imported when the command runs, not at start-up
    from socred.service.policy_diff import DiffReport

NOT_SCORED = "—"  # as socred.service.policy_diff.NOT_SCORED names a subject a catalog does not serve


def catalog_diff_command(
    old: Annotated[
        str, typer.Argument(help="The catalog in force: id@version, id (newest version) or a YAML file.")
    ],
    new: Annotated[
        str, typer.Argument(help="The proposed catalog: id@version, id or a YAML file (need not be loaded).")
    ],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Date YYYY-MM-DD both are applied on (default: today, Asia/Shanghai)."),
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help="duckdb (embedded) or spark.")] = "duckdb",
    records: Annotated[
        Path | None,
        typer.Option(
            "--records", help="Score this exported Parquet dataset (socred export) instead of the database."
        ),
    ] = None,
    whole: Annotated[
        bool,
        typer.Option(
            "--all-regions",
            help="Apply both to every region their prefixes cover, even where a more specific catalog is in force.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    chart: Annotated[
        Path | None,
        typer.Option("--chart", help="Also write an SVG chart of grades and list movements here."),
    ] = None,
) -> None:
    """Preview the impact of a catalog change on the whole population before approving it.

    Scores every subject with records under OLD and under NEW at the same date (the batch engine, as score-all) and reports how many subjects change grade, join or leave each list, and gain or lose each measure.

    Effective dates are ignored: the question is what if these rules applied on DATE. A subject one catalog does not serve (its regions or subject kinds) counts as not scored ("—") under it.

    Examples:

      socred catalog diff shanghai@2 shanghai@3 --as-of 2026-12-01

      socred catalog diff shanghai proposed-v4.yaml --as-of 2027-01-01 --chart impact.svg

      socred catalog diff national@1 national@2 --json
    """
    from socred import cli
    from socred.domain import clock

    if engine not in ("duckdb", "spark"):
        cli.fail(2, f"--engine must be duckdb or spark, got {engine!r}")
    day = cli.parse_day(as_of, "--as-of") or clock.today()
    if records is not None and not records.exists():
        cli.fail(2, f"--records: no such file or directory {str(records)!r}")
    from socred.service import policy_diff

    try:
        report = policy_diff.catalog_diff(cli.platform(), old, new, day, engine, records, whole)
    except policy_diff.DiffError as e:
        cli.fail(2, str(e))
    if chart is not None:
        try:
            chart.write_text(svg_chart(report), encoding="utf-8")
        except OSError as e:
            cli.fail(2, f"cannot write the chart to {str(chart)!r}: {e.strerror}")
    if as_json:
        cli.emit(report.to_dict())
        return
    render(report, Console())


def _bar(n: int, top: int, width: int = 30) -> str:
    if top <= 0 or n <= 0:
        return ""
    cells = max(1, round(width * n / top))
    return "█" * cells


def render(report: DiffReport, console: Console) -> None:
    console.print(
        f"[bold]{report.old}[/bold] → [bold]{report.new}[/bold] as of {report.as_of.isoformat()}: "
        f"{report.subjects:,} subjects ({report.records:,} records), {report.seconds:.2f} s on {report.engine}"
    )
    console.print(
        f"grade changed: [bold]{report.grade_changed:,}[/bold]   score up: {report.score_up:,}   "
        f"score down: {report.score_down:,}   mean change: {report.mean_delta:+.2f} points"
    )
    before, after = report.grade_counts()
    top = max([*before.values(), *after.values(), 1])
    grades = Table(title="Grades", show_lines=False)
    grades.add_column("grade")
    grades.add_column("before", justify="right")
    grades.add_column("after", justify="right")
    grades.add_column("change", justify="right")
    grades.add_column("before ▏ after", no_wrap=True)
    for g in report.grades:
        b, a = before.get(g, 0), after.get(g, 0)
        grades.add_row(
            g,
            f"{b:,}",
            f"{a:,}",
            f"{a - b:+,}",
            f"[grey50]{_bar(b, top)}[/grey50]\n[cyan]{_bar(a, top)}[/cyan]",
        )
    console.print(grades)
    moved = [(o, n, k) for o, row in report.transitions.items() for n, k in row.items() if o != n]
    if moved:
        tr = Table(title="Grade transitions")
        tr.add_column("from")
        tr.add_column("to")
        tr.add_column("subjects", justify="right")
        for o, n, k in sorted(moved, key=lambda x: -x[2]):
            tr.add_row(o, n, f"{k:,}")
        console.print(tr)
    for title, rows in (("Lists", report.lists), ("Measures", report.measures)):
        t = Table(title=title)
        t.add_column("code", no_wrap=True)
        t.add_column("title", max_width=32, overflow="ellipsis", no_wrap=True)
        for col in (
            "before",
            "after",
            "joined" if title == "Lists" else "gained",
            "left" if title == "Lists" else "lost",
        ):
            t.add_column(col, justify="right")
        for m in rows:
            t.add_row(m.code, m.title, f"{m.before:,}", f"{m.after:,}", f"+{m.joined:,}", f"-{m.left:,}")
        console.print(t)
    if NOT_SCORED in report.grades:
        console.print(f"{NOT_SCORED}: not served by that catalog (its regions or subject kinds).")


_STYLE = (
    "<style>svg{font-family:sans-serif;font-size:12px;background:#fff}.label,.value,.axis{fill:#222}"
    ".grid{stroke:#ddd}.s0{fill:#9aa5b1}.s1{fill:#1f6feb}.s2{fill:#d1242f}.s3{fill:#2da44e}"
    ".legend{fill:#222}</style>"
)


def svg_chart(report: DiffReport) -> str:
    """One standalone SVG: grades before/after, then joins/leaves per list."""
    from socred.portal.charts import bars

    before, after = report.grade_counts()
    rows_grades = []
    for g in report.grades:
        rows_grades.append((f"{g} · {report.old}", [float(before.get(g, 0)), 0.0]))
        rows_grades.append((f"{g} · {report.new}", [0.0, float(after.get(g, 0))]))
    g_svg = bars(
        rows_grades,
        [report.old, report.new],
        f"Grades as of {report.as_of.isoformat()}",
        "Subjects per grade under the old and the new catalog.",
    )
    rows_lists = [(m.code, [float(m.joined), float(m.left)]) for m in report.lists]
    l_svg = bars(
        rows_lists or [("(no lists)", [0.0, 0.0])],
        ["joined", "left"],
        "List movements",
        "Subjects joining and leaving each list under the new catalog.",
    )
    parts = [str(g_svg), str(l_svg)]
    sizes = [_view_size(p) for p in parts]
    width = max(w for w, _ in sizes)
    total = sum(h for _, h in sizes) + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total}" viewBox="0 0 {width} {total}">',
        _STYLE,
        f'<text x="8" y="20" font-size="15" font-weight="bold" class="label">'
        f"Policy impact: {escape(report.old)} → {escape(report.new)}</text>",
    ]
    y = 32
    for p, (w, h) in zip(parts, sizes, strict=True):
        out.append(p.replace("<svg ", f'<svg x="0" y="{y}" width="{w}" height="{h}" ', 1))
        y += h
    out.append("</svg>")
    return "\n".join(out)


def _view_size(svg: str) -> tuple[int, int]:
    m = re.search(r'viewBox="0 0 (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)"', svg)
    return (int(float(m.group(1))), int(float(m.group(2)))) if m else (640, 300)
