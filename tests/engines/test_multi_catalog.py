"""score-all over several catalogs, versions and regions at once, against the evaluator.

Each generated world loads one to three catalog ids with one or two versions each: regions from a
small pool of nested prefixes, some versions not yet in effect on the scoring date, some catalogs
serving only persons or only organizations. Every subject must come out of the batch exactly as
``select_catalog`` + ``score`` answer for it, or not at all when no catalog serves it (issue 17:
the class of "the batch chose another catalog" cannot come back unnoticed).
"""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socred.domain.catalog import Catalog, parse_catalog
from socred.domain.scoring import ScoringError, score, select_catalog
from socred.service.batch import score_batches
from socred.store.export import RECORD_SCHEMA

from .strategies import AS_OF, Subject, _records, catalog_docs

_REGION_PREFIXES = ["", "31", "3101", "310104", "44"]
_SUBJECT_REGIONS = ["310104", "310105", "310201", "440101", "110101"]


@st.composite
def worlds(
    draw: st.DrawFn, max_subjects: int = 40
) -> tuple[list[Catalog], list[tuple[Subject, str]], date, str | None]:
    versions: list[Catalog] = []
    for cid in draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True)):
        for version in draw(st.lists(st.integers(1, 3), min_size=1, max_size=2, unique=True)):
            doc: dict[str, Any] = draw(catalog_docs())
            kinds = draw(st.sampled_from([["person"], ["organization"], None]))
            if kinds is not None:  # a catalog that serves one kind only
                for c in doc["categories"]:
                    c["subjects"] = kinds
            doc.update(
                id=cid,
                version=version,
                regions=draw(
                    st.lists(st.sampled_from(_REGION_PREFIXES), min_size=1, max_size=2, unique=True)
                ),
                effective_from=(AS_OF + timedelta(days=draw(st.integers(-40, 15)))).isoformat(),
            )
            versions.append(parse_catalog(doc))
    codes = [*sorted({code for c in versions for code in c.categories}), "UNDEFINED"]
    as_of = AS_OF + timedelta(days=draw(st.integers(0, 2)))
    ids = draw(
        st.lists(st.text("0aB9中_", min_size=1, max_size=4), min_size=5, max_size=max_subjects, unique=True)
    )
    subjects = [
        (
            Subject(sid, draw(st.sampled_from(["person", "organization"])), draw(_records(codes, as_of))),
            draw(st.sampled_from(_SUBJECT_REGIONS)),
        )
        for sid in ids
    ]
    named = draw(st.one_of(st.none(), st.sampled_from(sorted({c.id for c in versions}))))
    return versions, subjects, as_of, named


def _table(subjects: list[tuple[Subject, str]]) -> pa.Table:
    rows = [
        {
            "record_id": r.record_id,
            "source": r.source,
            "subject_id": s.subject_id,
            "kind": s.kind,
            "region": region,
            "category": r.category,
            "occurred_on": r.occurred_on,
            "retracted": r.retracted,
            "repaired_on": r.repaired_on,
        }
        for s, region in subjects
        for r in s.records
    ]
    return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)


def _expected(
    versions: list[Catalog], subjects: list[tuple[Subject, str]], as_of: date, named: str | None
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for s, region in subjects:
        try:
            catalog = select_catalog(versions, region, s.kind, as_of, named)
        except ScoringError:
            continue
        if named is not None and (catalog.serves_region(region) is None or not catalog.serves_kind(s.kind)):
            continue  # score-all --catalog scores the subjects the catalog serves
        d = score(catalog, s.subject_id, s.kind, s.records, as_of).to_dict()
        out[s.subject_id] = {
            "catalog": d["catalog"],
            "score": d["score"],
            "grade": d["grade"],
            **d["domains"],
            "lists": sorted(m["code"] for m in d["lists"]),
            "measures": sorted(d["measures"]),
        }
    return out


def _run(engine: str, world: tuple[list[Catalog], list[tuple[Subject, str]], date, str | None]) -> None:
    versions, subjects, as_of, named = world
    try:
        want = _expected(versions, subjects, as_of, named)
    except ScoringError:
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scores.parquet"
        try:
            summary = score_batches(
                iter(_table(subjects).to_batches()), versions, out, as_of, named, engine, expected_records=10
            )
        except ScoringError:
            # a named catalog with no version in effect on the date: the evaluator refuses it too
            assert named is not None
            with pytest.raises(ScoringError):
                select_catalog(versions, "310104", "person", as_of, named)
            return
        rows = pq.read_table(out).to_pylist()
    got = {
        r["subject_id"]: {
            k: r[k]
            for k in (
                "catalog",
                "score",
                "grade",
                "government",
                "commercial",
                "social",
                "judicial",
                "lists",
                "measures",
            )
        }
        for r in rows
    }
    assert [r["subject_id"] for r in rows] == sorted(got)
    assert got == want
    if named is None:
        unserved = sum(1 for s, region in subjects if s.subject_id not in want)
        assert summary["unserved_subjects"] == unserved


_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


@settings(max_examples=60, **_SETTINGS)  # type: ignore[arg-type]
@given(world=worlds())
def test_duckdb_score_all_matches_the_evaluator(world: Any) -> None:
    _run("duckdb", world)


@pytest.mark.spark
@settings(max_examples=6, **_SETTINGS)  # type: ignore[arg-type]
@given(world=worlds(max_subjects=80))
def test_spark_score_all_matches_the_evaluator(spark: Any, world: Any) -> None:
    _run("spark", world)
