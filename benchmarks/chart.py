"""A log-log SVG chart of time against size from results files (no plotting library needed)."""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

# (label, row name prefix, which value, colour, dashed)
SERIES: tuple[tuple[str, str, str, str, bool], ...] = (
    ("score-all DuckDB (exported Parquet)", "score-all duckdb, exported", "value", "#1f77b4", False),
    ("  floor: raw DuckDB GROUP BY", "score-all duckdb, exported", "floor", "#1f77b4", True),
    ("score-all Spark local[2] (exported Parquet)", "score-all spark", "value", "#d62728", False),
    ("  floor: raw Spark GROUP BY", "score-all spark", "floor", "#d62728", True),
    (
        "score-all DuckDB from SQLite (socred score-all)",
        "score-all duckdb, from SQLite",
        "value",
        "#2ca02c",
        False,
    ),
    ("ingest SQLite (Parquet, bulk path)", "ingest sqlite", "ingest", "#9467bd", False),
    ("ingest PostgreSQL (Parquet, bulk path)", "ingest postgresql", "ingest", "#8c564b", False),
)


def _points(results: list[dict[str, Any]], prefix: str, which: str) -> list[tuple[float, float]]:
    pts = []
    for res in results:
        n = res["config"]["records"]
        for row in res["rows"]:
            if not row["name"].startswith(prefix) or row["value"] is None:
                continue
            if which == "ingest":
                seconds = row.get("extra", {}).get("seconds")
                if seconds:
                    pts.append((n, float(seconds)))
            elif which == "floor" and row.get("floor"):
                pts.append((n, float(row["floor"])))
            elif which == "value":
                pts.append((n, float(row["value"])))
            break
    return sorted(pts)


def svg(results: list[dict[str, Any]], title: str) -> str:
    series = [
        (label, colour, dashed, _points(results, prefix, which))
        for label, prefix, which, colour, dashed in SERIES
    ]
    series = [s for s in series if s[3]]
    xs = [x for *_, pts in series for x, _ in pts] or [1e6, 1e7]
    ys = [y for *_, pts in series for _, y in pts] or [1, 10]
    x0, x1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)))
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    x1 = max(x1, x0 + 1)
    y1 = max(y1, y0 + 1)
    w, h, left, right, top, bottom = 880, 440, 70, 380, 40, 50
    pw, ph = w - left - right, h - top - bottom

    def px(x: float) -> float:
        return left + (math.log10(x) - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + ph - (math.log10(y) - y0) / (y1 - y0) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for e in range(x0, x1 + 1):
        x = px(10**e)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#ddd"/>')
        label = {6: "1M", 7: "10M", 8: "100M", 9: "1B", 5: "100k", 4: "10k", 3: "1k"}.get(e, f"1e{e}")
        out.append(f'<text x="{x:.1f}" y="{top + ph + 18}" text-anchor="middle">{label}</text>')
    for e in range(y0, y1 + 1):
        y = py(10**e)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        label = f"{10**e:g} s"
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 12}" text-anchor="middle">records (log scale)</text>')
    out.append(
        f'<text x="16" y="{top + ph / 2}" transform="rotate(-90 16 {top + ph / 2})" text-anchor="middle">'
        "seconds (log scale)</text>"
    )
    for i, (label, colour, dashed, pts) in enumerate(series):
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        path = " ".join(f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for j, (x, y) in enumerate(pts))
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{colour}"/>')
            out.append(
                f'<text x="{px(x) + 5:.1f}" y="{py(y) - 5:.1f}" font-size="10" fill="{colour}">{y:.3g}</text>'
            )
        ly = top + 10 + i * 20
        lx = left + pw + 16
        out.append(
            f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        out.append(f'<text x="{lx + 30}" y="{ly + 4}">{escape(label.strip())}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_chart(files: list[Path], out: Path, title: str = "socred: time against size") -> Path:
    results = [json.loads(f.read_text(encoding="utf-8")) for f in files]
    out.write_text(svg(results, title), encoding="utf-8")
    return out
