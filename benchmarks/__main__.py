"""``python -m benchmarks`` (``make bench``): run the suite and print the table.

python -m benchmarks                                # 200,000 records, 20,000 subjects
python -m benchmarks --records 1000000 --subjects 100000 --json results-1m.json
python -m benchmarks --data DIR --only score-duckdb,score-spark     # reuse generated data
python -m benchmarks chart results-1m.json results-10m.json --out docs/performance.svg
python -m benchmarks markdown results-1m.json       # the table in Markdown, for docs/performance.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.suite import ALL, Config, run_suite, table


def _int(text: str) -> int:
    return int(float(text.replace("_", "").replace(",", "")))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["markdown"]:
        from benchmarks.suite import load_results, markdown

        for path in argv[1:]:
            print(markdown(load_results(Path(path))))
            print()
        return 0
    if argv[:1] == ["chart"]:
        from benchmarks.chart import write_chart

        ap = argparse.ArgumentParser(prog="python -m benchmarks chart")
        ap.add_argument("results", nargs="+", type=Path)
        ap.add_argument("--out", type=Path, default=Path("performance.svg"))
        ap.add_argument("--title", default="socred: time against size (2 cores, 24 GiB)")
        a = ap.parse_args(argv[1:])
        print(write_chart(a.results, a.out, a.title))
        return 0
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--records", type=_int, default=200_000, help="records to generate (default 200,000)")
    ap.add_argument("--subjects", type=_int, default=20_000, help="subjects to generate (default 20,000)")
    ap.add_argument("--batch-size", type=_int, default=20_000, help="operations per ingest transaction")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--changes", type=float, default=0.0, help="corrections/retractions/repairs, fraction")
    ap.add_argument("--work", type=Path, default=None, help="working directory (default: a temp dir)")
    ap.add_argument(
        "--data", type=Path, default=None, help="reuse a directory made by socred demo --out --projection"
    )
    ap.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of: {', '.join(ALL)}")
    ap.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    ap.add_argument("--pg", default=None, help="PostgreSQL URL (default $SOCRED_BENCH_PG or the test server)")
    ap.add_argument("--spark-memory", default="4g", help="Spark driver memory (local mode)")
    ap.add_argument("--check-seconds", type=int, default=10, help="duration of the HTTP load test")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep PostgreSQL schemas")
    a = ap.parse_args(argv)
    only = tuple(x for x in a.only.split(",") if x and x not in a.skip.split(","))
    unknown = [x for x in only if x not in ALL]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ALL)}")
    cfg = Config(
        records=a.records,
        subjects=a.subjects,
        batch_size=a.batch_size,
        seed=a.seed,
        changes=a.changes,
        data=a.data,
        only=only,
        keep=a.keep,
        spark_memory=a.spark_memory,
        check_seconds=a.check_seconds,
    )
    if a.work is not None:
        cfg.work = a.work
    if a.pg:
        cfg.pg_url = a.pg
    results = run_suite(cfg)
    print(table(results))
    if a.json is not None:
        a.json.write_text(json.dumps(results.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
