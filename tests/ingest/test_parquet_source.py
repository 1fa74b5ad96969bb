"""Parquet files through the vectorised path: line numbers, unreadable files, mixed operations."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from socred.ingest.bulk import ArrowOperations
from socred.ingest.readers import UnreadableFile, read
from socred.service.platform import Platform
from tests.helpers import PERSON, PERSON2, TEST_CATALOG

TODAY = date(2026, 11, 28)


@pytest.fixture
def platform(sqlite_url: str) -> Platform:
    p = Platform(sqlite_url)
    p.init()
    p.load_catalog_file(TEST_CATALOG)
    p.add_provider("court", "Court", ["TRAFFIC_HONKING", "DISHONEST_JUDGMENT_DEBTOR"])
    return p


def test_rows_and_line_numbers_match_the_reader(platform: Platform, tmp_path: Path) -> None:
    path = tmp_path / "ops.parquet"
    pq.write_table(
        pa.table(
            {
                "op": [None, None, "correct", None, "retract"],
                "record_id": ["p1", "p2", "p1", "p1", "p2"],
                "subject_id": [PERSON2, "123", None, PERSON2, None],
                "subject_name": ["李四", "x", None, "李四", None],
                "category": ["TRAFFIC_HONKING", "TRAFFIC_HONKING", None, "TRAFFIC_HONKING", None],
                "occurred_on": ["2026-04-01", "2026-04-01", "2026-03-01", "2026-04-01", None],
                "reason": [None, None, None, None, "wrong"],
            }
        ),
        path,
        row_group_size=2,
    )
    assert list(ArrowOperations.parquet(path, batch_rows=2)) == list(read(path, "parquet"))
    s = platform.ingest("court", ArrowOperations.parquet(path, batch_rows=2), batch_size=3, today=TODAY)
    # p1 submitted, p2 rejected (line 2), p1 corrected, the original p1 re-sent: a duplicate,
    # retract of p2 (never accepted): unknown record
    assert (s.accepted, s.duplicates, s.rejected) == (2, 1, 2)
    assert [(e["line"], e["field"]) for e in s.errors] == [(2, "subject_id"), (5, "record_id")]
    recs = {r.record_id: r for r in platform.scoring_records(PERSON2)}
    assert recs["p1"].occurred_on == date(2026, 3, 1)
    assert platform.verify_ledger().ok


def test_unreadable_parquet(platform: Platform, tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(UnreadableFile, match="not a readable Parquet file"):
        platform.ingest("court", ArrowOperations.parquet(bad), today=TODAY)


def test_subject_of_person_and_date_column(platform: Platform, tmp_path: Path) -> None:
    t = pa.table(
        {
            "record_id": ["d1", "d2"],
            "subject_id": [PERSON, PERSON],
            "subject_name": ["张三", "张三"],
            "category": ["TRAFFIC_HONKING", "TRAFFIC_HONKING"],
            "occurred_on": pa.array([date(2026, 1, 2), date(2027, 1, 1)], pa.date32()),
        }
    )
    s = platform.ingest("court", ArrowOperations.table(t), today=TODAY)
    assert (s.accepted, s.rejected) == (1, 1)
    assert s.errors[0]["line"] == 2 and s.errors[0]["field"] == "occurred_on"
