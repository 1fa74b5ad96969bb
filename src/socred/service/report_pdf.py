"""The subject's own report as a PDF (``GET /api/v1/me/report.pdf``), rendered with fpdf2.

Chinese text needs a CJK font: the first of :data:`CJK_FONTS` (or ``SOCRED_PDF_FONT``) that exists
is embedded (subset). Without one the PDF uses the built-in Helvetica, replaces every character it
cannot show by ``?`` and says so on its first page. The identifier is masked on the page (the
file may be passed on); records are named by their provider and record id.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from socred.domain.ids import mask_person_name, mask_subject_id

CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
FALLBACK_NOTE = (
    "No CJK font was found on the server: characters outside Latin-1 are shown as '?'. "
    "The JSON report (GET /api/v1/me/report) holds the full text."
)


def cjk_font() -> Path | None:
    """The CJK font to embed, or None."""
    configured = os.environ.get("SOCRED_PDF_FONT")
    for candidate in ([configured] if configured else []) + list(CJK_FONTS):
        p = Path(candidate)
        if p.is_file():
            return p
    return None


class _Doc:
    def __init__(self, font: Path | None) -> None:
        from fpdf import FPDF  # fpdf takes 0.4 s to import: not at the server's start-up

        self.pdf = FPDF(orientation="P", unit="mm", format="A4")
        self.pdf.set_auto_page_break(auto=True, margin=15)
        self.pdf.set_margins(15, 15, 15)
        self.pdf.set_creator("socred")
        self.unicode = font is not None
        if font is not None:
            self.pdf.add_font("cjk", "", str(font))
            self.family = "cjk"
        else:
            self.family = "Helvetica"
        self.pdf.add_page()

    def _t(self, text: Any) -> str:
        s = "" if text is None else str(text)
        if self.unicode:
            return s
        return s.encode("latin-1", "replace").decode("latin-1")

    def heading(self, text: str, size: int = 13) -> None:
        self.pdf.ln(2)
        self.pdf.set_font(self.family, size=size)
        self.line(text, size=size, height=7)

    def line(self, text: Any, size: int = 9, height: float = 5) -> None:
        self.pdf.set_font(self.family, size=size)
        from fpdf.enums import XPos, YPos

        self.pdf.multi_cell(0, height, self._t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def pairs(self, items: Iterable[tuple[str, Any]]) -> None:
        for k, v in items:
            self.line(f"{k}: {'-' if v is None or v == '' else v}")

    def bullets(self, items: Sequence[str], empty: str = "None.") -> None:
        if not items:
            self.line(empty)
        for x in items:
            self.line(f"- {x}")

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def render(report: Mapping[str, Any], generated_at: str) -> bytes:
    """The PDF of a ``/api/v1/me/report`` object."""
    font = cjk_font()
    doc = _Doc(font)
    doc.pdf.set_title("socred credit report")
    sid = str(report.get("subject_id", ""))
    doc.heading("个人信用报告 / Credit report" if doc.unicode else "Credit report", 16)
    if font is None:
        doc.line(FALLBACK_NOTE)
    name = report.get("name")
    if name and report.get("kind") == "person":
        name = mask_person_name(str(name))
    doc.pairs(
        [
            ("Subject", mask_subject_id(sid) if report.get("kind") == "person" else sid),
            ("Name", name),
            ("Kind", report.get("kind")),
            ("Region", report.get("region")),
            ("Generated at (UTC)", generated_at),
        ]
    )

    score = report.get("score")
    doc.heading("Score")
    if score:
        doc.pairs(
            [
                ("Catalog", score.get("catalog")),
                ("As of", score.get("as_of")),
                ("Score", score.get("score")),
                ("Grade", score.get("grade")),
                ("Domains", ", ".join(f"{k} {v}" for k, v in (score.get("domains") or {}).items())),
                ("Measures", ", ".join(score.get("measures") or []) or None),
            ]
        )
        doc.line("Contributions (every counting record; base score plus these, clamped, is the score):")
        doc.bullets(
            [
                f"{c['record_id']} ({c['source']}) {c['category']}: {c['points']:+d} points, {c['domain']}, "
                f"{c['occurred_on']} to {c['expires_on']}; {c.get('legal_basis') or ''}"
                for c in score.get("contributions") or []
            ]
        )
        for a in score.get("list_actions") or []:
            doc.line(f"Manual list action: {a.get('explanation')}")
    else:
        doc.line(report.get("score_error") or "No score.")

    doc.heading("Lists, measures and what would lift each restriction")
    restrictions = report.get("restrictions") or []
    if not restrictions:
        doc.line("Not on any list.")
    for r in restrictions:
        doc.line(
            f"{r.get('title')} ({r.get('list')}, {r.get('kind')} list): since {r.get('since') or '-'}, "
            f"until {r.get('until') or 'no fixed end'}",
            size=10,
        )
        doc.bullets(
            [
                f"measure {m['code']}: {m['title']} ({m['activity']}, {m['effect']})"
                for m in r.get("measures", [])
            ]
        )
        doc.bullets([f"lifted by: {x}" for x in r.get("what_lifts_it", [])], empty="")

    doc.heading("Records (public or not)")
    records = report.get("records") or []
    if not records:
        doc.line("No record about you is on file.")
    for rec in records:
        flags = [
            "disputed" if rec.get("disputed") else "",
            "retracted" if rec.get("retracted") else "",
            f"repaired on {rec['repaired_on']}" if rec.get("repaired_on") else "",
            "published" if rec.get("published") else "",
        ]
        doc.line(
            f"{rec.get('record_id')} ({rec.get('source')}) {rec.get('category')}, occurred {rec.get('occurred_on')}"
            + (f", case {rec['case_number']}" if rec.get("case_number") else ""),
            size=10,
        )
        doc.line(
            f"   stops counting on {rec.get('expires_on') or '-'}; publicity ends {rec.get('publicity_ends_on') or '-'}; "
            f"repair possible from {rec.get('repair_eligible_on') or '-'}"
            + ("; " + ", ".join(f for f in flags if f) if any(flags) else "")
        )

    doc.heading("Objections and appeals")
    doc.bullets(
        [
            f"{o['id']}: record {o['record_id']} ({o['source']}), {o['status']}, due by {o['due_by']}"
            + (" (overdue)" if o.get("overdue") else "")
            + (f"; decided by {o['decided_by']}: {o['decision_reason']}" if o.get("decided_by") else "")
            for o in report.get("objections") or []
        ]
    )
    doc.heading("Credit repair applications")
    doc.bullets(
        [
            f"{r['id']}: record {r['record_id']} ({r['source']}), {r['status']}"
            + (f", repaired on {r['repaired_on']}" if r.get("repaired_on") else "")
            for r in report.get("repairs") or []
        ]
    )
    doc.heading("Notices")
    doc.bullets(
        [
            f"{n.get('created_at')}: placed on {n.get('list_title') or n.get('list')} from {n.get('since') or n.get('as_of')}"
            for n in report.get("notices") or []
        ]
    )
    doc.heading("Who read your data (access log, newest first)")
    log = (report.get("access_log") or {}).get("entries") or []
    doc.bullets(
        [f"{e['at']}: {e['who'].get('kind')} {e['who'].get('id')}, {e['what']}, why: {e['why']}" for e in log]
    )
    return doc.output()


__all__ = ["CJK_FONTS", "FALLBACK_NOTE", "cjk_font", "render"]
