"""Hypothesis strategies for the batch engines: random valid catalogs and record streams.

The catalogs are plain dicts (the YAML document) fed to ``parse_catalog``; every value is
kept small so that the interesting edges happen often: a record expiring on the scoring
date, a repair on the date, several records of one capped category on one day, scores
clamped at either bound, grades that trigger lists.

One generated case carries many subjects (each with its own records), so that a single
batch run, which on Spark costs a job or more, checks many subjects at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

from socred.domain.catalog import Catalog, parse_catalog
from socred.domain.scoring import ScoringRecord

__all__ = [
    "AS_OF",
    "RECORD_SCHEMA",
    "Case",
    "Subject",
    "cases",
    "catalog_docs",
    "records_table",
]

#: The scoring date of every generated case; record dates fall a few weeks around it.
AS_OF = date(2026, 6, 15)

RECORD_SCHEMA = pa.schema(
    [
        ("record_id", pa.string()),
        ("source", pa.string()),
        ("subject_id", pa.string()),
        ("kind", pa.string()),
        ("category", pa.string()),
        ("occurred_on", pa.date32()),
        ("retracted", pa.bool_()),
        ("repaired_on", pa.date32()),
    ]
)

# Code points from ASCII to the astral planes, so that string order is tested as code-point
# order (what Python does) rather than a locale collation: "B" < "a" < "é" < "中" < "𝄞".
_ID_ALPHABET = "0aB9zé中𝄞_-"
_GRADE_NAMES = ("AAA", "AA", "A", "B", "C", "D", "E", "优", "良 好", "it's")
_ACTIVITIES = ("air_travel", "rail_first_class", "rental_deposit", "bidding")


@st.composite
def catalog_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid catalog document with random policy: points of both signs, small windows."""
    base = draw(st.integers(-50, 150))
    lo = base - draw(st.integers(0, 40))
    hi = base + draw(st.integers(0, 40))
    n_grades = draw(st.integers(1, 5))
    names = draw(st.lists(st.sampled_from(_GRADE_NAMES), min_size=n_grades, max_size=n_grades, unique=True))
    # Band minimums: strictly descending, the last one the lower bound; a top band may lie
    # above the upper bound (then it is never reached).
    upper_mins = draw(
        st.lists(st.integers(lo + 1, hi + 5), min_size=n_grades - 1, max_size=n_grades - 1, unique=True)
    )
    mins = [*sorted(upper_mins, reverse=True), lo]
    grades = [{"grade": g, "min": m} for g, m in zip(names, mins, strict=True)]

    n_measures = draw(st.integers(0, 5))
    measures = [
        {
            "code": f"M{i}",
            "activity": draw(st.sampled_from(_ACTIVITIES)),
            "effect": draw(st.sampled_from(["restrict", "benefit"])),
            "title": f"measure {i}",
        }
        for i in range(n_measures)
    ]
    measure_codes = [m["code"] for m in measures]

    def some_measures() -> list[str]:
        if not measure_codes:
            return []
        return draw(st.lists(st.sampled_from(measure_codes), max_size=3, unique=True))

    lists: list[dict[str, Any]] = []
    record_lists: list[str] = []
    for i in range(draw(st.integers(0, 4))):
        code = f"L{i}"
        record_lists.append(code)
        lists.append(
            {
                "code": code,
                "kind": draw(st.sampled_from(["black", "red"])),
                "title": f"list {i}",
                "duration": draw(st.integers(1, 20)),
                "measures": some_measures(),
            }
        )
    for i in range(draw(st.integers(0, 2))):
        lists.append(
            {
                "code": f"G{i}",
                "kind": draw(st.sampled_from(["black", "red"])),
                "title": f"grade list {i}",
                "grades": draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True)),
                "measures": some_measures(),
            }
        )
    draw(st.randoms(use_true_random=False)).shuffle(lists)  # file order must not matter

    categories: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 8))):
        entry: dict[str, Any] = {
            "code": f"C{i}",
            "title": f"category {i}",
            "domain": draw(st.sampled_from(["government", "commercial", "social", "judicial"])),
            "subjects": draw(st.sampled_from([["person"], ["organization"], ["person", "organization"]])),
            "points": draw(st.one_of(st.integers(-30, -1), st.integers(1, 30))),
            "valid_for": draw(st.integers(1, 20)),
            "legal_basis": f"basis {i}",
            "lists": draw(st.lists(st.sampled_from(record_lists), max_size=2, unique=True))
            if record_lists
            else [],
        }
        if draw(st.booleans()):
            entry["max_count"] = draw(st.integers(1, 3))
        categories.append(entry)

    return {
        "id": "hypo",
        "version": draw(st.integers(1, 3)),
        "title": "generated",
        "regions": [""],
        "effective_from": (AS_OF - timedelta(days=draw(st.integers(0, 30)))).isoformat(),
        "base_score": base,
        "score_bounds": [lo, hi],
        "grades": grades,
        "categories": categories,
        "lists": lists,
        "measures": measures,
    }


@dataclass(frozen=True)
class Subject:
    subject_id: str
    kind: str
    records: tuple[ScoringRecord, ...]


@dataclass(frozen=True)
class Case:
    """One differential case: a catalog, many subjects with their records, a date."""

    doc: dict[str, Any]
    catalog: Catalog
    subjects: tuple[Subject, ...]
    as_of: date

    def table(self) -> pa.Table:
        return records_table(self.subjects)


def records_table(subjects: tuple[Subject, ...] | list[Subject]) -> pa.Table:
    """The records of ``subjects`` as the Arrow table the engines take (plus an extra column)."""
    rows = [
        {
            "record_id": r.record_id,
            "source": r.source,
            "subject_id": s.subject_id,
            "kind": s.kind,
            "category": r.category,
            "occurred_on": r.occurred_on,
            "retracted": r.retracted,
            "repaired_on": r.repaired_on,
        }
        for s in subjects
        for r in s.records
    ]
    table = pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)
    return table.append_column("region", pa.array(["310000"] * table.num_rows, pa.string()))


@st.composite
def _records(draw: st.DrawFn, codes: list[str], as_of: date) -> tuple[ScoringRecord, ...]:
    n = draw(st.integers(1, 8))
    out: list[ScoringRecord] = []
    # A few shared days per subject, so that same-day ties (and max_count cuts) are common.
    days = draw(st.lists(st.integers(-25, 3), min_size=1, max_size=3))
    for _ in range(n):
        occurred = as_of + timedelta(days=draw(st.sampled_from(days)))
        repaired: date | None = None
        if draw(st.integers(0, 3)) == 0:
            repaired = occurred + timedelta(days=draw(st.integers(-2, 25)))
        out.append(
            ScoringRecord(
                record_id=draw(st.text(_ID_ALPHABET, min_size=1, max_size=3)),
                source=draw(st.sampled_from(["court", "tax"])),
                category=draw(st.sampled_from(codes)),
                occurred_on=occurred,
                retracted=draw(st.integers(0, 4)) == 0,
                repaired_on=repaired,
            )
        )
    return tuple(out)


@st.composite
def cases(draw: st.DrawFn, min_subjects: int = 20, max_subjects: int = 60) -> Case:
    """A random catalog and 20-60 subjects of both kinds with random records."""
    doc = draw(catalog_docs())
    catalog = parse_catalog(doc)
    codes = [c["code"] for c in doc["categories"]] + ["UNDEFINED"]
    ids = draw(
        st.lists(
            st.text(_ID_ALPHABET, min_size=1, max_size=4),
            min_size=min_subjects,
            max_size=max_subjects,
            unique=True,
        )
    )
    as_of = AS_OF + timedelta(days=draw(st.integers(0, 2)))
    subjects = tuple(
        Subject(sid, draw(st.sampled_from(["person", "organization"])), draw(_records(codes, as_of)))
        for sid in ids
    )
    return Case(doc=doc, catalog=catalog, subjects=subjects, as_of=as_of)
