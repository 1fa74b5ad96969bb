"""The batch engines against the per-subject evaluator (scoring.md), on DuckDB and on Spark.

Differential tests: for random catalogs and record streams, every row of the batch output
equals the result of ``socred.domain.scoring.score`` for that subject. Explicit edge
tests pin the boundaries of the spec on one hand-written catalog, batch and evaluator alike.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from socred.domain.catalog import Catalog, parse_catalog
from socred.domain.scoring import ScoringRecord, score
from socred.engines import BatchBackend, get_backend
from socred.engines.sql import OUTPUT_SCHEMA

from .strategies import AS_OF, Case, Subject, cases, records_table

_COMPARED = (
    "subject_id",
    "kind",
    "catalog",
    "as_of",
    "score",
    "grade",
    "government",
    "commercial",
    "social",
    "judicial",
    "lists",
    "measures",
)


def expected(catalog: Catalog, subjects: list[Subject] | tuple[Subject, ...], as_of: date) -> list[dict]:
    """The evaluator's answer per subject, in the shape of a batch row, sorted by subject."""
    rows = []
    for s in subjects:
        d = score(catalog, s.subject_id, s.kind, s.records, as_of).to_dict()
        rows.append(
            {
                "subject_id": d["subject_id"],
                "kind": d["kind"],
                "catalog": d["catalog"],
                "as_of": date.fromisoformat(d["as_of"]),
                "score": d["score"],
                "grade": d["grade"],
                **d["domains"],
                "lists": sorted(m["code"] for m in d["lists"]),
                "measures": sorted(d["measures"]),
            }
        )
    return sorted(rows, key=lambda r: r["subject_id"])


def batch_rows(table: pa.Table) -> list[dict]:
    assert table.schema == OUTPUT_SCHEMA
    return [{k: row[k] for k in _COMPARED} for row in table.to_pylist()]


def assert_same(got: list[dict], want: list[dict]) -> None:
    assert [r["subject_id"] for r in got] == [r["subject_id"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert g == w, f"subject {w['subject_id']!r}: batch {g} != evaluator {w}"


def check_case(backend: BatchBackend, case: Case) -> None:
    got = batch_rows(backend.score(case.table(), case.catalog, case.as_of))
    assert_same(got, expected(case.catalog, case.subjects, case.as_of))


# ---------------------------------------------------------------- differential


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_duckdb_matches_evaluator(duckdb_backend: BatchBackend, case: Case) -> None:
    check_case(duckdb_backend, case)


@pytest.mark.spark
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases(min_subjects=30, max_subjects=80))  # a Spark run costs seconds: many subjects each
def test_spark_matches_evaluator(spark_backend: BatchBackend, case: Case) -> None:
    check_case(spark_backend, case)


# ---------------------------------------------------------------- edges

T = AS_OF

EDGE_DOC: dict[str, Any] = {
    "id": "edges",
    "version": 2,
    "title": "edge cases",
    "regions": [""],
    "effective_from": "2026-01-01",
    "base_score": 100,
    "score_bounds": [0, 200],
    "grades": [{"grade": "TOP", "min": 150}, {"grade": "MID", "min": 90}, {"grade": "LOW", "min": 0}],
    "categories": [
        {"code": "EXP", "domain": "social", "subjects": ["person"], "points": -10, "valid_for": 10},
        {
            "code": "REP",
            "domain": "commercial",
            "subjects": ["person", "organization"],
            "points": -7,
            "valid_for": 30,
            "lists": ["BL"],
        },
        {
            "code": "CAP",
            "domain": "judicial",
            "subjects": ["person"],
            "points": -5,
            "valid_for": 30,
            "max_count": 2,
        },
        {
            "code": "NEG",
            "domain": "government",
            "subjects": ["person", "organization"],
            "points": -500,
            "valid_for": 30,
        },
        {
            "code": "POS",
            "domain": "government",
            "subjects": ["person", "organization"],
            "points": 500,
            "valid_for": 30,
        },
        {
            "code": "ORG_ONLY",
            "domain": "social",
            "subjects": ["organization"],
            "points": 20,
            "valid_for": 30,
            "lists": ["RL"],
        },
        {
            "code": "LISTER",
            "domain": "judicial",
            "subjects": ["person"],
            "points": -1,
            "valid_for": 2,
            "lists": ["BL"],
        },
    ],
    "lists": [
        {"code": "BL", "kind": "black", "duration": 10, "measures": ["NO_FLY"]},
        {"code": "RL", "kind": "red", "duration": 5, "measures": ["PERK"]},
        {"code": "UNUSED", "kind": "black", "duration": 5, "measures": ["NO_FLY"]},
        {"code": "HONOR", "kind": "red", "grades": ["TOP"], "measures": ["PERK", "FAST"]},
        {"code": "LOWLIST", "kind": "black", "grades": ["LOW"], "measures": ["NO_FLY"]},
    ],
    "measures": [
        {"code": "NO_FLY", "activity": "air_travel", "effect": "restrict"},
        {"code": "PERK", "activity": "rental_deposit", "effect": "benefit"},
        {"code": "FAST", "activity": "fast_lane", "effect": "benefit"},
    ],
}


def rec(
    rid: str,
    category: str,
    days: int,
    *,
    retracted: bool = False,
    repaired: int | None = None,
    source: str = "src",
) -> ScoringRecord:
    """A record that occurred ``days`` after T (negative: before), repaired ``repaired`` after T."""
    return ScoringRecord(
        record_id=rid,
        source=source,
        category=category,
        occurred_on=T + timedelta(days=days),
        retracted=retracted,
        repaired_on=None if repaired is None else T + timedelta(days=repaired),
    )


# subject id -> (kind, records, expected score, expected lists, expected measures)
EDGES: dict[str, tuple[str, tuple[ScoringRecord, ...], int, list[str], list[str]]] = {
    # occurred_on + valid_for == T: expired exactly on the date
    "expires-on-date": ("person", (rec("e1", "EXP", -10),), 100, [], []),
    "expires-day-after": ("person", (rec("e1", "EXP", -9),), 90, [], []),
    "occurred-on-date": ("person", (rec("e1", "EXP", 0),), 90, [], []),
    "occurs-after-date": ("person", (rec("e1", "EXP", 1), rec("r1", "REP", 1)), 100, [], []),
    # a repair on the occurrence date: neither counts nor lists
    "repaired-on-occurrence": ("person", (rec("r1", "REP", -3, repaired=-3),), 100, [], []),
    "repaired-on-date": ("person", (rec("r1", "REP", -3, repaired=0),), 100, [], []),
    "repaired-day-after": ("person", (rec("r1", "REP", -3, repaired=1),), 93, ["BL"], ["NO_FLY"]),
    # max_count 2: three records of one day (ties broken by record_id) and an older one
    "max-count-ties": (
        "person",
        (rec("b", "CAP", -1), rec("a", "CAP", -1), rec("c", "CAP", -1), rec("z", "CAP", -5)),
        90,
        [],
        [],
    ),
    "max-count-under": ("person", (rec("a", "CAP", -1),), 95, [], []),
    # a retracted or repaired record is not among the max_count most recent
    "max-count-skips-dead": (
        "person",
        (
            rec("a", "CAP", -1, retracted=True),
            rec("b", "CAP", -1, repaired=0),
            rec("c", "CAP", -2),
            rec("d", "CAP", -40),
        ),
        95,
        [],
        [],
    ),
    # list BL (10 days): the first record's hold ended on T-2, a later one extends it past T;
    # the records' own valid_for (2 days) is over
    "list-extended": ("person", (rec("l1", "LISTER", -12), rec("l2", "LISTER", -4)), 100, ["BL"], ["NO_FLY"]),
    "list-extension-repaired": (
        "person",
        (rec("l1", "LISTER", -12), rec("l2", "LISTER", -4, repaired=0)),
        100,
        [],
        [],
    ),
    "list-outlives-validity": ("person", (rec("l1", "LISTER", -5),), 100, ["BL"], ["NO_FLY"]),
    "list-ended": ("person", (rec("l1", "LISTER", -10),), 100, [], []),
    # clamping at both bounds, and the grade-triggered lists that follow
    "clamped-low": ("person", (rec("n1", "NEG", -1),), 0, ["LOWLIST"], ["NO_FLY"]),
    "clamped-high": (
        "organization",
        (rec("p1", "POS", -1), rec("p2", "POS", -2)),
        200,
        ["HONOR"],
        ["FAST", "PERK"],
    ),
    "clamped-high-and-listed": (
        "organization",
        (rec("p1", "POS", -1), rec("r1", "REP", -1)),
        200,
        ["BL", "HONOR"],
        ["FAST", "NO_FLY", "PERK"],
    ),
    # every record retracted: the subject is still scored, with the base score
    "all-retracted": (
        "person",
        (rec("e1", "EXP", -1, retracted=True), rec("r1", "REP", -1, retracted=True)),
        100,
        [],
        [],
    ),
    # a category defined only for organizations is ignored for a person, and vice versa
    "other-kind-person": ("person", (rec("o1", "ORG_ONLY", -1),), 100, [], []),
    "other-kind-organization": (
        "organization",
        (rec("o1", "ORG_ONLY", -1), rec("e1", "EXP", -1)),
        120,
        ["RL"],
        ["PERK"],
    ),
    "undefined-category": ("person", (rec("u1", "NOT_IN_CATALOG", -1),), 100, [], []),
    # same record id and day from two sources: both count
    "same-id-two-sources": (
        "person",
        (rec("x", "EXP", -1, source="a"), rec("x", "EXP", -1, source="b")),
        80,
        ["LOWLIST"],
        ["NO_FLY"],
    ),
}

EDGE_SUBJECTS = [Subject(sid, kind, recs) for sid, (kind, recs, *_rest) in EDGES.items()]


@pytest.fixture(scope="module")
def edge_catalog() -> Catalog:
    return parse_catalog(EDGE_DOC)


@pytest.fixture(scope="module")
def edge_rows(backend: BatchBackend, edge_catalog: Catalog) -> dict[str, dict]:
    """All edge subjects scored in one batch run per engine."""
    table = backend.score(records_table(EDGE_SUBJECTS), edge_catalog, T)
    return {r["subject_id"]: r for r in batch_rows(table)}


@pytest.mark.parametrize("subject_id", list(EDGES))
def test_edge(edge_rows: dict[str, dict], edge_catalog: Catalog, subject_id: str) -> None:
    kind, records, want_score, want_lists, want_measures = EDGES[subject_id]
    got = edge_rows[subject_id]
    assert (got["score"], got["lists"], got["measures"]) == (want_score, want_lists, want_measures)
    assert got == expected(edge_catalog, [Subject(subject_id, kind, records)], T)[0]


def test_edge_rows_are_all_subjects_sorted(edge_rows: dict[str, dict]) -> None:
    assert list(edge_rows) == sorted(EDGES)


# ---------------------------------------------------------------- inputs and errors


def test_catalog_not_yet_in_effect(backend: BatchBackend, edge_catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="takes effect on 2026-01-01"):
        backend.score(records_table(EDGE_SUBJECTS), edge_catalog, date(2025, 12, 31))


def test_empty_input(backend: BatchBackend, edge_catalog: Catalog) -> None:
    out = backend.score(records_table([]), edge_catalog, T)
    assert out.schema == OUTPUT_SCHEMA
    assert out.num_rows == 0


def test_missing_column(backend: BatchBackend, edge_catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="repaired_on"):
        backend.score(records_table(EDGE_SUBJECTS).drop_columns(["repaired_on"]), edge_catalog, T)


def test_subject_of_two_kinds(backend: BatchBackend, edge_catalog: Catalog) -> None:
    subjects = [
        Subject("S1", "person", (rec("a", "REP", -1),)),
        Subject("S1", "organization", (rec("b", "REP", -1),)),
    ]
    with pytest.raises(ValueError, match="more than one kind"):
        backend.score(records_table(subjects), edge_catalog, T)


def test_partitioned_parquet(backend: BatchBackend, edge_catalog: Catalog, tmp_path: Path) -> None:
    """A hive-partitioned directory and a glob read like the Arrow table (extra columns ignored)."""
    table = records_table(EDGE_SUBJECTS)
    ds.write_dataset(
        table, tmp_path / "by_kind", format="parquet", partitioning=["kind"], partitioning_flavor="hive"
    )
    want = expected(edge_catalog, EDGE_SUBJECTS, T)
    assert_same(batch_rows(backend.score(tmp_path / "by_kind", edge_catalog, T)), want)
    if backend.name == "duckdb":  # the same reader paths on Spark cost a job each
        half = table.num_rows // 2
        (tmp_path / "flat").mkdir()
        pq.write_table(table.slice(0, half), tmp_path / "flat" / "part-0.parquet")
        pq.write_table(table.slice(half), tmp_path / "flat" / "part-1.parquet")
        assert_same(batch_rows(backend.score(str(tmp_path / "flat" / "*.parquet"), edge_catalog, T)), want)
        assert_same(
            batch_rows(backend.score(tmp_path / "flat" / "part-0.parquet", edge_catalog, T)),
            expected(edge_catalog, _subjects_of(table.slice(0, half)), T),
        )


def _subjects_of(table: pa.Table) -> list[Subject]:
    by: dict[str, tuple[str, list[ScoringRecord]]] = {}
    for r in table.to_pylist():
        by.setdefault(r["subject_id"], (r["kind"], []))[1].append(
            ScoringRecord(
                r["record_id"], r["source"], r["category"], r["occurred_on"], r["retracted"], r["repaired_on"]
            )
        )
    return [Subject(sid, kind, tuple(recs)) for sid, (kind, recs) in by.items()]


def test_missing_parquet(backend: BatchBackend, edge_catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        backend.score(tmp_path / "nothing.parquet", edge_catalog, T)


def test_many_record_lists(backend: BatchBackend) -> None:
    """More record-triggered lists than one 62-bit mask word holds."""
    n = 70
    doc = {
        **{
            k: EDGE_DOC[k]
            for k in (
                "id",
                "version",
                "regions",
                "effective_from",
                "base_score",
                "score_bounds",
                "grades",
                "measures",
            )
        },
        "categories": [
            {
                "code": f"K{i}",
                "domain": "social",
                "subjects": ["person"],
                "points": -1,
                "valid_for": 5,
                "lists": [f"L{i}", f"L{(i * 7) % n}"] if i % 7 else [f"L{i}"],
            }
            for i in range(n)
        ],
        "lists": [
            {"code": f"L{i}", "kind": "black", "duration": 3, "measures": ["NO_FLY"] if i == 65 else []}
            for i in range(n)
        ],
    }
    catalog = parse_catalog(doc)
    subjects = [
        Subject(f"P{j}", "person", tuple(rec(f"r{i}", f"K{i}", -(i % 4)) for i in range(j, n, 9)))
        for j in range(9)
    ]
    assert_same(
        batch_rows(backend.score(records_table(subjects), catalog, T)), expected(catalog, subjects, T)
    )


def test_unknown_engine() -> None:
    with pytest.raises(ValueError, match="unknown batch engine"):
        get_backend("polars")  # type: ignore[arg-type]
