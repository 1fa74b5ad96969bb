"""Measurements that run in a process of their own (for a clean peak-RSS figure and a fresh JVM)."""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any


def _points(as_of: date) -> list[tuple[str, int, date]]:
    from datetime import timedelta

    from socred.demo_scale import shipped_catalogs

    national = next(c for c in shipped_catalogs() if c.id == "national")
    return [(c.code, c.points, as_of - timedelta(days=c.valid_for - 1)) for c in national.categories.values()]


def _floor_sql(records: str, as_of: date) -> str:
    values = ", ".join(
        f"('{code}', {points}, DATE '{lo.isoformat()}')" for code, points, lo in _points(as_of)
    )
    return (
        f"SELECT r.subject_id, SUM(p.points) AS points FROM {records} r "
        f"JOIN (VALUES {values}) AS p(code, points, lo) ON r.category = p.code "
        f"WHERE r.occurred_on >= p.lo AND r.occurred_on <= DATE '{as_of.isoformat()}' AND NOT r.retracted "
        "GROUP BY r.subject_id"
    )


def floor_duckdb(dataset: Path, as_of: date, out: Path) -> float:
    """The raw DuckDB aggregate over the same Parquet: read, join points, GROUP BY subject, write."""
    import duckdb

    glob = str(dataset / "**" / "*.parquet").replace("'", "''")
    con = duckdb.connect(config={"memory_limit": "3GB"})
    t0 = time.perf_counter()
    src = f"read_parquet('{glob}', hive_partitioning = true)"
    con.sql(f"COPY ({_floor_sql(src, as_of)}) TO '{str(out).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")
    seconds = time.perf_counter() - t0
    con.close()
    return seconds


def floor_spark(dataset: Path, as_of: date) -> float:
    from socred.engines.spark_engine import get_spark

    spark = get_spark()
    t0 = time.perf_counter()
    spark.read.parquet(str(dataset)).createOrReplaceTempView("bench_records")
    spark.sql(_floor_sql("bench_records", as_of)).toArrow()
    return time.perf_counter() - t0


def main(argv: list[str]) -> dict[str, Any]:
    cmd = argv[0]
    if cmd == "floor-duckdb":
        dataset, as_of = Path(argv[1]), date.fromisoformat(argv[2])
        return {"seconds": floor_duckdb(dataset, as_of, dataset.parent / "floor.parquet")}
    if cmd == "score":
        from socred.demo_scale import shipped_catalogs
        from socred.service.batch import score_dataset

        dataset, engine, as_of, out = Path(argv[1]), argv[2], date.fromisoformat(argv[3]), Path(argv[4])
        result: dict[str, Any] = {"session_start": 0.0}
        if engine == "spark":
            from socred.engines.spark_engine import get_spark

            t0 = time.perf_counter()
            get_spark().range(1).count()
            result["session_start"] = time.perf_counter() - t0
            result["floor_seconds"] = floor_spark(dataset, as_of)
        elif "--no-floor" not in argv:
            result["floor_seconds"] = floor_duckdb(dataset, as_of, out.with_suffix(".floor.parquet"))
        t0 = time.perf_counter()
        result["summary"] = score_dataset(dataset, shipped_catalogs(), out, as_of, None, engine)
        result["seconds"] = time.perf_counter() - t0
        return result
    raise SystemExit(f"unknown worker command {cmd!r}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), default=str))
