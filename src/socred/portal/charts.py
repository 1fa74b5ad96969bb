"""Charts as inline SVG, drawn on the server: no script, no external library, fine under a strict CSP.

Every chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` (read by screen readers);
pages print the same numbers as a table next to it. Colours come from CSS classes (``.s0`` ...
``.s5``) so that the stylesheet decides contrast and the dark board theme.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count

from markupsafe import Markup, escape

__all__ = ["bars", "columns", "line"]

_ids = count(1)


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _nice_max(v: float) -> float:
    """A round axis maximum at or above ``v`` (1, 2, 5 times a power of ten)."""
    if v <= 0:
        return 1.0
    p = 1.0
    while p * 10 <= v:
        p *= 10
    for m in (1, 2, 5, 10):
        if m * p >= v:
            return m * p
    return 10 * p


def _open(width: int, height: int, title: str, desc: str) -> tuple[str, str]:
    n = next(_ids)
    head = (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="ct{n} cd{n}" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="ct{n}">{escape(title)}</title><desc id="cd{n}">{escape(desc)}</desc>'
    )
    return head, "</svg>"


def bars(
    rows: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[str],
    title: str,
    desc: str,
    width: int = 640,
) -> Markup:
    """Horizontal bars, one row per label, the series stacked left to right."""
    label_w, row_h, gap, top = 190, 26, 8, 8
    lines = _legend_lines(series, label_w, width) if len(series) > 1 else []
    height = top + len(rows) * (row_h + gap) + 16 + _LEGEND_LINE * len(lines)
    head, tail = _open(width, height, title, desc)
    out = [head]
    total_max = _nice_max(max((sum(v) for _, v in rows), default=0))
    plot_w = width - label_w - 60
    for i, (label, values) in enumerate(rows):
        y = top + i * (row_h + gap)
        out.append(
            f'<text class="label" x="{label_w - 8}" y="{y + row_h * 0.68:.1f}" text-anchor="end">{escape(label)}</text>'
        )
        x = float(label_w)
        for s, v in enumerate(values):
            w = plot_w * v / total_max
            if w > 0:
                out.append(
                    f'<rect class="s{s % 6}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h}">'
                    f"<title>{escape(series[s] if s < len(series) else '')} {escape(label)}: {_num(v)}</title></rect>"
                )
            x += w
        out.append(
            f'<text class="value" x="{x + 6:.1f}" y="{y + row_h * 0.68:.1f}">{_num(sum(values))}</text>'
        )
    out.append(_legend(series, lines, top + len(rows) * (row_h + gap) + 12))
    out.append(tail)
    return Markup("".join(out))


def columns(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    title: str,
    desc: str,
    width: int = 720,
    height: int = 300,
) -> Markup:
    """Stacked vertical columns: one column per category (e.g. a month), one colour per series."""
    left, right, top = 44, 10, 12
    names = [name for name, _ in series]
    lines = _legend_lines(names, left, width)
    bottom = 34 + _LEGEND_LINE * len(lines)
    height += _LEGEND_LINE * len(lines)
    head, tail = _open(width, height, title, desc)
    out = [head]
    totals = [sum(s[1][i] for s in series) for i in range(len(categories))]
    top_v = _nice_max(max(totals, default=0))
    plot_h = height - top - bottom
    plot_w = width - left - right
    for k in range(5):
        v = top_v * k / 4
        y = top + plot_h - plot_h * k / 4
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_num(v)}</text>')
    slot = plot_w / max(1, len(categories))
    bar_w = slot * 0.7
    for i, cat in enumerate(categories):
        x = left + i * slot + (slot - bar_w) / 2
        y = float(top + plot_h)
        for s, (name, values) in enumerate(series):
            h = plot_h * values[i] / top_v
            if h > 0:
                y -= h
                out.append(
                    f'<rect class="s{s % 6}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
                    f"<title>{escape(name)} {escape(cat)}: {_num(values[i])}</title></rect>"
                )
        out.append(
            f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{escape(cat)}</text>'
        )
    out.append(_legend(names, lines, top + plot_h + 40))
    out.append(tail)
    return Markup("".join(out))


def line(
    points: Sequence[tuple[str, float]],
    title: str,
    desc: str,
    bands: Sequence[tuple[str, float]] = (),
    width: int = 640,
    height: int = 220,
) -> Markup:
    """A line through ``points`` (label, value), with optional horizontal reference ``bands``."""
    left, right, top, bottom = 48, 40, 12, 30
    head, tail = _open(width, height, title, desc)
    out = [head]
    values = [v for _, v in points] + [v for _, v in bands]
    lo = min(values, default=0.0)
    hi = max(values, default=1.0)
    if hi - lo < 40:
        lo, hi = lo - 20, hi + 20
    plot_h = height - top - bottom
    plot_w = width - left - right

    def y_of(v: float) -> float:
        return top + plot_h - plot_h * (v - lo) / (hi - lo)

    for name, v in bands:
        if lo <= v <= hi:
            y = y_of(v)
            out.append(f'<line class="band" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
            out.append(f'<text class="axis" x="{width - right + 4}" y="{y + 4:.1f}">{escape(name)}</text>')
    for v in (lo, (lo + hi) / 2, hi):
        y = y_of(v)
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_num(round(v))}</text>'
        )
    step = plot_w / max(1, len(points) - 1)
    coords = [(left + i * step, y_of(v)) for i, (_, v) in enumerate(points)]
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(f'<polyline class="trend" points="{path}"/>')
    for (x, y), (label, v) in zip(coords, points, strict=True):
        out.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="4"><title>{escape(label)}: {_num(v)}</title></circle>'
        )
    if points:
        out.append(f'<text class="axis" x="{left}" y="{height - 8}">{escape(points[0][0])}</text>')
        out.append(
            f'<text class="axis" x="{width - right}" y="{height - 8}" text-anchor="end">{escape(points[-1][0])}</text>'
        )
    out.append(tail)
    return Markup("".join(out))


_LEGEND_LINE = 18


def _text_width(text: str) -> float:
    """Rough width of legend text at 11px: CJK characters are twice as wide as Latin ones."""
    return 6.2 * sum(2 if ord(c) > 0x2E80 else 1 for c in text)


def _legend_lines(names: Sequence[str], x0: float, width: float) -> list[list[tuple[int, float]]]:
    """Legend entries (series index, x) laid out in lines no wider than the chart."""
    lines: list[list[tuple[int, float]]] = [[]]
    x = x0
    for i, name in enumerate(names):
        w = 28 + _text_width(name)
        if lines[-1] and x + w > width - 8:
            lines.append([])
            x = x0
        lines[-1].append((i, x))
        x += w
    return lines


def _legend(names: Sequence[str], lines: list[list[tuple[int, float]]], y0: float) -> str:
    out = []
    for n, line in enumerate(lines):
        y = y0 + n * _LEGEND_LINE
        for i, x in line:
            out.append(f'<rect class="s{i % 6}" x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12"/>')
            out.append(f'<text class="legend" x="{x + 16:.1f}" y="{y:.1f}">{escape(names[i])}</text>')
    return "".join(out)
