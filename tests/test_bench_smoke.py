"""A smoke run of every benchmark of ``make bench`` at a tiny size (the suite itself: benchmarks/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import suite
from benchmarks.chart import svg
from benchmarks.suite import Config, Results, Row

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return Config(
        records=3000, subjects=600, batch_size=1000, work=tmp_path_factory.mktemp("bench"), check_seconds=1
    )


@pytest.fixture(scope="module")
def data(cfg: Config) -> Path:
    return suite.generate(cfg)


@pytest.fixture(scope="module")
def db(cfg: Config, data: Path) -> Path:
    rows, p = suite.bench_ingest(cfg, data, "sqlite")
    p.engine.dispose()
    ingest, sealing = rows
    assert ingest.value and ingest.floor and ingest.extra["accepted"] == 3000
    assert sealing.value and sealing.floor
    return cfg.work / "bench.db"


def test_ingest_sqlite_and_table(db: Path, cfg: Config) -> None:
    results = Results({"records": 3000, "subjects": 600}, suite.machine(), [Row("x", 2.0, "s", 1.0, "floor")])
    assert results.rows[0].ratio == 0.5
    text = suite.table(results)
    assert "0.50×" in text and "load average" in text


@pytest.mark.postgres
def test_ingest_postgresql(cfg: Config, data: Path, pg_ready: None) -> None:
    rows, _ = suite.bench_ingest(cfg, data, "postgresql")
    assert rows[0].value and rows[0].floor and rows[0].extra["accepted"] == 3000


def test_score_duckdb_and_chart(cfg: Config, data: Path, db: Path) -> None:
    rows = suite.bench_score(cfg, data, db, ["duckdb"])
    names = [r.name for r in rows]
    assert any("from SQLite" in n for n in names) and any("exported Parquet" in n for n in names)
    for r in rows:
        if r.floor is not None:
            assert r.value and r.value > 0 and r.extra["summary"]["subjects"] == 600
    fake = {
        "config": {"records": 3000},
        "rows": [{"name": r.name, "value": r.value, "floor": r.floor} for r in rows],
    }
    picture = svg([fake, {**fake, "config": {"records": 30000}}], "smoke")
    assert picture.startswith("<svg") and "score-all DuckDB" in picture


@pytest.mark.spark
def test_score_spark(cfg: Config, data: Path) -> None:
    if not suite._spark_available():
        pytest.skip("pyspark or Java is missing")
    (row,) = suite.bench_score(cfg, data, None, ["spark"])
    assert row.value and row.floor and row.extra["summary"]["subjects"] == 600


def test_evaluate(cfg: Config, data: Path) -> None:
    (row,) = suite.bench_evaluate(cfg, data, sample=300)
    assert row.value and row.floor


def test_check_and_search(cfg: Config, data: Path, db: Path) -> None:
    if suite.api_available() is not None:
        pytest.skip("the HTTP API is not importable")
    rows = suite.bench_http(cfg, data, db, ("check", "search"))
    check = rows[0]
    assert check.name.startswith("check") and check.value and check.value > 0
    assert check.extra["errors"] == 0
    batch = next(r for r in rows if r.name.startswith("check batch"))
    assert batch.value and batch.floor and batch.value > 1000 and batch.extra["median_s"] > 0
    assert rows[-1].name.startswith("search")


def test_sync(cfg: Config, db: Path) -> None:
    (row,) = suite.bench_sync(cfg, db)
    assert row.value and row.floor, row.note
    assert row.extra["entries"] >= 3000  # every entry of the ingested ledger came across
