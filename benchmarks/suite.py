"""The benchmarks: each returns rows of (figure, floor) measured on the same data."""

from __future__ import annotations

import hashlib
import json
import os
import platform as _platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.procs import load_average, run

PG_URL = os.environ.get(
    "SOCRED_BENCH_PG", os.environ.get("SOCRED_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
)
ALL = (
    "validation",
    "ingest-sqlite",
    "ingest-postgresql",
    "score-duckdb",
    "score-spark",
    "evaluate",
    "check",
    "search",
    "sync",
)


@dataclass
class Row:
    """One line of the table: a figure beside its floor (or naive baseline)."""

    name: str
    value: float | None
    unit: str  # "ops/s", "s", "req/s", "ms", "evals/s"
    floor: float | None = None
    floor_name: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """How close to the floor: 1.0 is at the floor; below 1 slower (for times: floor / time)."""
        if self.value is None or self.floor is None or not self.value or not self.floor:
            return None
        if self.unit in ("s", "ms"):
            return self.floor / self.value
        return self.value / self.floor


@dataclass
class Config:
    records: int = 200_000
    subjects: int = 20_000
    batch_size: int = 20_000
    seed: int = 7
    changes: float = 0.0
    work: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "socred-bench")
    data: Path | None = None  # reuse a generated directory (socred demo --out ... --projection)
    only: tuple[str, ...] = ALL
    pg_url: str = PG_URL
    keep: bool = False
    spark_memory: str = "4g"
    check_seconds: int = 10
    search_queries: int = 300
    say: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr, flush=True))


@dataclass
class Results:
    config: dict[str, Any]
    machine: dict[str, Any]
    rows: list[Row] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "machine": self.machine,
            "rows": [{**asdict(r), "ratio": r.ratio} for r in self.rows],
        }


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    import duckdb
    import pyarrow

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1),
        "python": _platform.python_version(),
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "load_before": load_average(),
    }


# ------------------------------------------------------------------ data


def generate(cfg: Config) -> Path:
    from socred.demo_scale import ScaleSpec, write_dataset

    if cfg.data is not None:
        return cfg.data
    out = cfg.work / "data"
    manifest = out / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        if (m["records"], m["subjects"], m["seed"], m["changes"]) == (
            cfg.records,
            min(cfg.subjects, cfg.records),
            cfg.seed,
            round(cfg.records * cfg.changes),
        ) and m["projection"]:
            return out
    cfg.say(f"generating {cfg.records:,} records for {cfg.subjects:,} subjects in {out}")
    write_dataset(out, ScaleSpec(cfg.subjects, cfg.records, cfg.seed, changes=cfg.changes, projection=True))
    return out


def manifest(data: Path) -> dict[str, Any]:
    return json.loads((data / "manifest.json").read_text(encoding="utf-8"))


def _setup(url: str, data: Path) -> Any:
    from socred.demo import load_shipped_catalogs
    from socred.service.platform import Platform

    p = Platform(url)
    p.init()
    load_shipped_catalogs(p)
    for code, info in manifest(data)["providers"].items():
        p.add_provider(code, info["name"], info["categories"])
    return p


def _ingest_all(p: Any, data: Path, batch_size: int) -> tuple[int, int, float]:
    from socred.demo_scale import files_in_order
    from socred.ingest.bulk import ArrowOperations

    today = date.fromisoformat(manifest(data)["today"])
    accepted = rejected = 0
    t0 = time.perf_counter()
    for code, path in files_in_order(data):
        s = p.ingest(code, ArrowOperations.parquet(path), batch_size=batch_size, today=today)
        accepted += s.accepted
        rejected += s.rejected
    return accepted, rejected, time.perf_counter() - t0


# ------------------------------------------------------------------ ingestion


def _written(src: Any, first: int, last: int, batch: int) -> Iterator[tuple[list[Any], list[Any], list[Any]]]:
    """(ledger blocks, records rows, subjects rows) that ingestion wrote, ``batch`` ledger seqs at a time,
    as the database holds them (one ordered scan of each table)."""
    from socred.store import repo

    with src.engine.connect() as c:
        raw = repo.driver(c)
        mark = "%s" if c.dialect.name == "postgresql" else "?"
        cur = raw.cursor()
        cur.execute(
            "SELECT first_seq, last_seq, raw_size, entries, hashes FROM ledger_blocks "
            f"WHERE first_seq BETWEEN {mark} AND {mark} ORDER BY first_seq",
            (first, last),
        )
        blocks = [tuple(r) for r in cur.fetchall()]
        cur.execute(f"SELECT {', '.join(repo.RECORD_COLUMNS)} FROM records ORDER BY first_seq")
        pending: list[Any] = []
        bi = 0
        for lo in range(first, last + 1, batch):
            hi = min(last, lo + batch - 1)
            these = []
            while bi < len(blocks) and blocks[bi][0] <= hi:
                these.append(blocks[bi])
                bi += 1
            records = [r for r in pending if r[8] <= hi]
            pending = [r for r in pending if r[8] > hi]
            while True:
                got = cur.fetchmany(10_000)
                if not got:
                    break
                for r in got:
                    (records if r[8] <= hi else pending).append(tuple(r))
                if pending:
                    break
            subjects: dict[str, tuple[Any, ...]] = {}
            for r in records:
                sid = r[2]
                kind = "organization" if r[3] == 1 else "person"
                region = sid[2:8] if kind == "organization" else sid[:6]
                subjects[sid] = (sid, kind, region, sid, r[8], r[9])
            yield these, records, sorted(subjects.values())
        cur.close()


def _floor_writes(src: Any, dst: Any, first: int, last: int, batch: int) -> tuple[int, float]:
    """Write the rows ``src`` holds for seqs first..last into ``dst`` raw, ``batch`` per transaction."""
    from socred.ingest.bulk import SQLITE_WAL_AUTOCHECKPOINT
    from socred.store import repo

    pg = dst.engine.dialect.name == "postgresql"
    spent = 0.0
    n = 0
    with dst.engine.begin() as c:  # the dictionary codes, as registration and catalog loads gave them
        with src.engine.connect() as s:
            codes = [tuple(r) for r in s.exec_driver_sql("SELECT id, domain, value FROM codes").all()]
        c.exec_driver_sql("DELETE FROM codes")
        repo.insert_rows(c, "codes", ("id", "domain", "value"), codes)
    for blocks, records, subjects in _written(src, first, last, batch):
        t0 = time.perf_counter()
        with dst.engine.begin() as c:
            if not pg:
                repo.driver(c).execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT}")
            mark = "%s" if pg else "?"
            cur = repo.driver(c).cursor()
            cur.executemany(
                f"INSERT INTO ledger_blocks (first_seq, last_seq, raw_size, entries, hashes) VALUES ({', '.join([mark] * 5)})",
                blocks,
            )
            cur.close()
            repo.insert_rows(c, "records", repo.RECORD_COLUMNS, records)
            repo.upsert_subjects(c, subjects)
        spent += time.perf_counter() - t0
        n += sum(int(b[1]) - int(b[0]) + 1 for b in blocks)
    return n, spent


def _chain(src: Any, limit: int = 1_000_000) -> tuple[float, float]:
    """(entries/s of socred's column-wise sealing, entries/s of bare SHA-256 chaining) on the ledger's entries."""
    import pyarrow as pa

    from socred.ingest.bulk import seal
    from socred.ledger.chain import entry_bytes
    from socred.store import ledger

    with src.engine.connect() as c:
        got = []
        for e in ledger.iter_entries(c, 0, limit):
            got.append((e.seq, e.recorded_at, e.actor, e.kind, e.body))
    entries = [entry_bytes(*r) for r in got]
    kinds, bodies = pa.array([r[3] for r in got]), pa.array([r[4] for r in got])
    sha = hashlib.sha256
    bare = sealed = 0.0
    for _ in range(3):
        prev = bytes(32)
        t0 = time.perf_counter()
        for e in entries:
            prev = sha(prev + e).digest()
        bare = max(bare, len(entries) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        seal(1, "0" * 64, got[0][1], got[0][2], kinds, bodies)
        sealed = max(sealed, len(entries) / (time.perf_counter() - t0))
    return sealed, bare


def bench_ingest(cfg: Config, data: Path, backend: str) -> tuple[list[Row], Any]:
    from socred.service.platform import Platform

    schemas: list[str] = []
    if backend == "sqlite":
        db = cfg.work / "bench.db"
        floor_db = cfg.work / "floor.db"
        for f in (db, floor_db):
            for suffix in ("", "-wal", "-shm"):
                Path(str(f) + suffix).unlink(missing_ok=True)
        url, floor_url = f"sqlite:///{db}", f"sqlite:///{floor_db}"
    else:
        url, schema = _pg_schema(cfg.pg_url)
        floor_url, floor_schema = _pg_schema(cfg.pg_url)
        schemas = [schema, floor_schema]
    try:
        p = _setup(url, data)
        start = p.head()[0]
        cfg.say(
            f"ingest {backend}: {manifest(data)['records']:,} operations, {cfg.batch_size:,} per transaction"
        )
        accepted, rejected, seconds = _ingest_all(p, data, cfg.batch_size)
        rate = accepted / seconds
        assert p.verify_ledger().ok
        cfg.say(f"ingest {backend}: {rate:,.0f} ops/s; floor (raw writes of the same rows)")
        floor = Platform(floor_url)
        floor.init()
        n, spent = _floor_writes(p, floor, start + 1, p.head()[0], cfg.batch_size)
        floor_rate = n / spent
        floor.engine.dispose()
        if backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(str(floor_db) + suffix).unlink(missing_ok=True)
        sealed, bare = _chain(p)
        label = "raw executemany" if backend == "sqlite" else "raw COPY"
        rows = [
            Row(
                f"ingest {backend} (Parquet, fresh submits)",
                rate,
                "ops/s",
                floor_rate,
                f"{label} of the same rows, same transactions",
                f"{accepted:,} accepted, {rejected} rejected, {cfg.batch_size:,}/transaction, {seconds:.1f} s",
                {"accepted": accepted, "seconds": seconds},
            )
        ]
        if backend == "sqlite":
            rows.append(
                Row(
                    "  ledger sealing (entry bytes + SHA-256 chain)",
                    sealed,
                    "entries/s",
                    bare,
                    "bare SHA-256 chain over prebuilt entry bytes",
                )
            )
        if backend == "postgresql":
            p.engine.dispose()
            return rows, None
        return rows, p
    finally:
        if schemas and not cfg.keep:
            for s in schemas:
                _drop_pg_schema(cfg.pg_url, s)


def _pg_engine(base: str) -> Any:
    import sqlalchemy as sa

    return sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))


def _pg_schema(base: str) -> tuple[str, str]:
    import sqlalchemy as sa

    schema = "bench_" + uuid.uuid4().hex[:10]
    eng = _pg_engine(base)
    with eng.begin() as c:
        c.execute(sa.text(f"CREATE SCHEMA {schema}"))
    eng.dispose()
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def _drop_pg_schema(base: str, schema: str) -> None:
    import sqlalchemy as sa

    eng = _pg_engine(base)
    with eng.begin() as c:
        c.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    eng.dispose()


def pg_available(base: str) -> str | None:
    import sqlalchemy as sa

    try:
        eng = _pg_engine(base)
        with eng.connect() as c:
            c.execute(sa.text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as e:
        return str(e).splitlines()[0]


def bench_validation(cfg: Config, data: Path, limit: int = 1_000_000) -> list[Row]:
    """The ingestion engine's own work, no database: vectorised path against validate() per row."""
    import pyarrow as pa

    from socred.demo_scale import files_in_order, shipped_catalogs
    from socred.domain.records import Accepted, Context, canonical, validate
    from socred.ingest.bulk import ArrowOperations, prevalidate, seal
    from socred.ledger.chain import chain, utc_timestamp

    m = manifest(data)
    today = date.fromisoformat(m["today"])
    kinds: dict[str, set[str]] = {}
    for c in shipped_catalogs():
        for code, cat in c.categories.items():
            kinds.setdefault(code, set()).update(cat.subjects)
    kbc = {k: frozenset(v) for k, v in kinds.items()}
    ts = utc_timestamp()
    batches: list[tuple[Context, Any]] = []
    n = 0
    for code, path in files_in_order(data):
        if n >= limit:
            break
        ctx = Context(code, frozenset(m["providers"][code]["categories"]), kbc, today)
        for b in ArrowOperations.parquet(path).batches():
            batches.append((ctx, b))
            n += b.num_rows
            if n >= limit:
                break
    t0 = time.perf_counter()
    fast = 0
    for ctx, b in batches:
        prep = prevalidate(b, ctx, 1)
        if prep.fast is not None:
            fast += prep.fast.num_rows
            body = prep.fast.column("body").combine_chunks()
            seal(1, "0" * 64, ts, ctx.source, pa.array(["submit"] * len(body)), body)
    vectorised = n / (time.perf_counter() - t0)
    sample = [(ctx, row) for ctx, b in batches[:3] for row in b.to_pylist()][:200_000]
    t0 = time.perf_counter()
    items = []
    for ctx, row in sample:
        out = validate({k: v for k, v in row.items() if v is not None}, None, ctx)
        if isinstance(out, Accepted):
            items.append((ts, ctx.source, out.op, canonical(out.body)))
    for _ in chain(1, "0" * 64, items):
        pass
    per_row = len(sample) / (time.perf_counter() - t0)
    return [
        Row(
            "validation + ledger bodies + sealing, no database",
            vectorised,
            "ops/s",
            per_row,
            "validate() + canonical() + chain() per row (the row path)",
            f"{n:,} operations ({fast:,} took the fast path); baseline on {len(sample):,}",
        )
    ]


# ------------------------------------------------------------------ score-all


def _worker(args: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, Any], int]:
    r = run([sys.executable, "-m", "benchmarks.worker", *args], env=env)
    if r.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed: {r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1]), r.peak_rss


def bench_score(cfg: Config, data: Path, db: Path | None, engines: list[str]) -> list[Row]:
    as_of = manifest(data)["today"]
    rows: list[Row] = []
    dataset = data / "records"
    if db is not None and "duckdb" in engines:
        cfg.say("score-all duckdb from the database (socred score-all)")
        r = run(
            [
                sys.executable,
                "-m",
                "socred",
                "--db",
                f"sqlite:///{db}",
                "score-all",
                "--as-of",
                as_of,
                "--out",
                str(cfg.work / "all-db.parquet"),
            ]
        )
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        summary = json.loads(r.stdout)
        exp = run(
            [
                sys.executable,
                "-m",
                "socred",
                "--db",
                f"sqlite:///{db}",
                "export",
                "--out",
                str(cfg.work / "export"),
            ]
        )
        if exp.returncode != 0:
            raise RuntimeError(exp.stderr)
        dataset = cfg.work / "export"
        floor, _ = _worker(["floor-duckdb", str(dataset), as_of])
        rows.append(
            Row(
                "score-all duckdb, from SQLite (socred score-all)",
                r.seconds,
                "s",
                floor["seconds"],
                "raw DuckDB GROUP BY over the exported Parquet",
                f"{summary['subjects']:,} subjects, {summary['records']:,} records; peak RSS {r.peak_rss / 2**30:.2f} GiB; "
                f"stages {summary.get('timings')}",
                {"peak_rss": r.peak_rss, "summary": summary, "export_seconds": exp.seconds},
            )
        )
        rows.append(
            Row(
                "  socred export (SQLite to Parquet)",
                exp.seconds,
                "s",
                None,
                "",
                f"peak RSS {exp.peak_rss / 2**30:.2f} GiB",
            )
        )
    for engine in engines:
        cfg.say(f"score-all {engine} over the exported dataset")
        env = {"SOCRED_SPARK_DRIVER_MEMORY": cfg.spark_memory} if engine == "spark" else None
        args = ["score", str(dataset), engine, as_of, str(cfg.work / f"all-{engine}.parquet")]
        floor_seconds = None
        if engine == "duckdb":  # the floor in a process of its own: the peak RSS is score-all's alone
            floor_seconds = _worker(["floor-duckdb", str(dataset), as_of])[0]["seconds"]
            args.append("--no-floor")
        got, rss = _worker(args, env)
        if floor_seconds is not None:
            got["floor_seconds"] = floor_seconds
        summary = got["summary"]
        note = f"{summary['subjects']:,} subjects, {summary['records']:,} records; peak RSS (process tree) {rss / 2**30:.2f} GiB"
        if engine == "spark":
            note += f"; session start {got['session_start']:.1f} s not counted"
        rows.append(
            Row(
                f"score-all {engine}, exported Parquet",
                got["seconds"],
                "s",
                got["floor_seconds"],
                f"raw {'DuckDB' if engine == 'duckdb' else 'Spark'} GROUP BY over the same Parquet",
                note,
                {"peak_rss": rss, "summary": summary},
            )
        )
    return rows


# ------------------------------------------------------------------ per-subject evaluation


def bench_evaluate(cfg: Config, data: Path, sample: int = 50_000) -> list[Row]:
    import duckdb

    from socred.demo_scale import shipped_catalogs
    from socred.domain import scoring
    from socred.domain.scoring import ScoringRecord, select_catalog

    as_of = date.fromisoformat(manifest(data)["today"])
    catalogs = shipped_catalogs()
    src = str(data / "records" / "*.parquet").replace("'", "''")
    con = duckdb.connect()
    rows = con.sql(
        f"SELECT subject_id, kind, region, record_id, source, category, occurred_on, retracted, repaired_on "
        f"FROM read_parquet('{src}') WHERE subject_id IN (SELECT DISTINCT subject_id FROM read_parquet('{src}') "
        f"ORDER BY hash(subject_id) LIMIT {sample})"
    ).fetchall()
    con.close()
    subjects: dict[str, tuple[str, str, list[ScoringRecord]]] = {}
    for sid, kind, region, rid, source, cat, occ, retracted, repaired in rows:
        subjects.setdefault(sid, (kind, region, []))[2].append(
            ScoringRecord(rid, source, cat, occ, retracted, repaired)
        )
    chosen = {
        sid: select_catalog(catalogs, region, kind, as_of, None)
        for sid, (kind, region, _) in subjects.items()
    }
    items = [(chosen[sid], sid, kind, recs) for sid, (kind, _, recs) in subjects.items()]
    t0 = time.perf_counter()
    for cat, sid, kind, recs in items:
        scoring.score(cat, sid, kind, recs, as_of)
    evals = len(items) / (time.perf_counter() - t0)
    # the naive baseline: a dict loop summing the points of the records that count, nothing else
    rules = {
        c.ref: {code: (k.points, k.valid_for, k.subjects) for code, k in c.categories.items()}
        for c in catalogs
    }
    t0 = time.perf_counter()
    for cat, _sid, kind, recs in items:
        table = rules[cat.ref]
        total = cat.base_score
        for r in recs:
            rule = table.get(r.category)
            if rule is None or kind not in rule[2] or r.retracted:
                continue
            age = (as_of - r.occurred_on).days
            if 0 <= age < rule[1] and (r.repaired_on is None or as_of < r.repaired_on):
                total += rule[0]
    naive = len(items) / (time.perf_counter() - t0)
    return [
        Row(
            "per-subject evaluations (score with explanations)",
            evals,
            "evals/s",
            naive,
            "naive pure-Python loop summing points",
            f"{len(items):,} subjects, {len(rows):,} records, in memory",
        )
    ]


# ------------------------------------------------------------------ HTTP: check and search


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float) -> float:
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def _server(cmd: list[str], env: dict[str, str], ready: str, timeout: float = 300) -> Iterator[float]:
    # the server logs every request: to a file, never a pipe nobody reads (it would block when full)
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log)
    try:
        yield _wait_http(ready, timeout)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wrk(url: str, script: Path, seconds: int, connections: int = 64) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    rate = p99 = 0.0
    errors = 0
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Requests/sec:"):
            rate = float(s.split()[1])
        elif s.startswith("99%"):
            p99 = _ms(s.split()[1])
        elif s.startswith("Non-2xx or 3xx responses:"):
            errors = int(s.split(":")[1])
    return {"rate": rate, "p99_ms": p99, "errors": errors}


def _ms(text: str) -> float:
    for suffix, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def _python_load(url: str, bodies: list[bytes], headers: dict[str, str], seconds: int) -> dict[str, float]:
    """A fallback load generator when wrk is missing: 32 async clients, keep-alive."""
    import asyncio

    import httpx

    latencies: list[float] = []
    errors = 0

    async def client(i: int, deadline: float) -> None:
        nonlocal errors
        async with httpx.AsyncClient(headers=headers, timeout=30) as c:
            k = i
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                r = await c.post(url, content=bodies[k % len(bodies)])
                latencies.append(time.perf_counter() - t0)
                errors += r.status_code >= 300
                k += 32

    async def main() -> None:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(client(i, deadline) for i in range(32)))

    t0 = time.perf_counter()
    asyncio.run(main())
    spent = time.perf_counter() - t0
    latencies.sort()
    return {
        "rate": len(latencies) / spent,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0.0,
        "errors": errors,
    }


def _check_script(path: Path, bodies: list[str], key: str) -> Path:
    lines = ",\n".join(json.dumps(b) for b in bodies)
    path.write_text(
        "local bodies = {\n" + lines + "\n}\n"
        "local n = 0\n"
        'wrk.method = "POST"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n"
        "  n = n + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])\n"
        "end\n",
        encoding="utf-8",
    )
    return path


def api_available() -> str | None:
    try:
        from socred.api.app import create_app  # noqa: F401
    except Exception as e:
        return f"socred.api.app.create_app is not importable ({e.__class__.__name__})"
    return None


def bench_http(cfg: Config, data: Path, db: Path, which: tuple[str, ...]) -> list[Row]:
    import duckdb
    import httpx

    from socred.service.auth import add_party
    from socred.service.platform import Platform

    p = Platform(f"sqlite:///{db}")
    key = add_party(p, f"bench-{uuid.uuid4().hex[:6]}", "Benchmark airline", ["air_travel"])
    p.engine.dispose()
    src = str(data / "records" / "*.parquet").replace("'", "''")
    con = duckdb.connect()
    ids = [
        r[0] for r in con.sql(f"SELECT DISTINCT subject_id FROM read_parquet('{src}') LIMIT 5000").fetchall()
    ]
    con.close()
    as_of = manifest(data)["today"]
    bodies = [json.dumps({"subject_id": s, "activity": "air_travel", "at": as_of}) for s in ids]
    batch_body = _batch_body(ids, as_of)
    have_wrk = shutil.which("wrk") is not None
    port, floor_port = _free_port(), _free_port()
    base, floor_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{floor_port}"
    rows: list[Row] = []
    env = {"SOCRED_DB": f"sqlite:///{db}"}
    floor_cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.floor_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(floor_port),
        "--log-level",
        "warning",
    ]
    serve_cmd = [sys.executable, "-m", "socred", "serve", "--host", "127.0.0.1", "--port", str(port)]
    floor_check = floor_search = floor_batch = None
    with _server(floor_cmd, {}, f"{floor_base}/ping", 60):
        if "check" in which:
            if have_wrk:
                floor_check = _wrk(
                    f"{floor_base}/check",
                    _check_script(cfg.work / "floor.lua", bodies[:100], key),
                    cfg.check_seconds,
                )
            else:
                floor_check = _python_load(
                    f"{floor_base}/check", [b.encode() for b in bodies[:100]], {}, cfg.check_seconds
                )
            floor_batch = _batches(f"{floor_base}/check/batch", batch_body, {}, BATCH_ROUNDS)
        if "search" in which:
            floor_search = _sequential(f"{floor_base}/search", ["x"] * cfg.search_queries)
    with _server(serve_cmd, env, f"{base}/healthz", 600) as startup:
        cfg.say(f"API ready in {startup:.1f} s")
        if "check" in which:
            cfg.say("check: wrk -t2 -c64" if have_wrk else "check: Python load generator (no wrk)")
            # warm up: the first check loads the check service's index of every record (slow at scale)
            t0 = time.perf_counter()
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            for b in bodies[:20]:
                httpx.post(f"{base}/api/v1/check", content=b, headers=headers, timeout=3600)
            warm = time.perf_counter() - t0
            cfg.say(f"check: first answers (index load) in {warm:.1f} s")
            if have_wrk:
                got = _wrk(
                    f"{base}/api/v1/check",
                    _check_script(cfg.work / "check.lua", bodies, key),
                    cfg.check_seconds,
                )
            else:
                got = _python_load(
                    f"{base}/api/v1/check",
                    [b.encode() for b in bodies],
                    {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                    cfg.check_seconds,
                )
            assert floor_check is not None
            rows.append(
                Row(
                    "check requests (POST /api/v1/check)",
                    got["rate"],
                    "req/s",
                    floor_check["rate"],
                    "trivial FastAPI endpoint, same server settings",
                    f"p99 {got['p99_ms']:.1f} ms (floor {floor_check['p99_ms']:.1f} ms); {int(got['errors'])} non-2xx; "
                    f"1 uvicorn worker; startup {startup:.1f} s, first answers (index load) {warm:.1f} s",
                    got,
                )
            )
            rows.append(
                Row("  check p99 latency", got["p99_ms"], "ms", floor_check["p99_ms"], "trivial endpoint p99")
            )
            assert floor_batch is not None
            got_b = _batches(f"{base}/api/v1/check/batch", batch_body, headers, BATCH_ROUNDS)
            rows.append(
                Row(
                    f"check batch ({BATCH_SIZE:,} subjects per request)",
                    got_b["rate"],
                    "subjects/s",
                    floor_batch["rate"],
                    "trivial endpoint: parse the same body, answer a constant per subject",
                    f"{BATCH_ROUNDS} sequential requests, median {got_b['median_s'] * 1000:.0f} ms each; half of the "
                    f"subjects have records, half are valid identifiers with none; every answer writes a receipt",
                    got_b,
                )
            )
        if "search" in which:
            probe = httpx.get(f"{base}/api/v1/public/search", params={"q": "zz"}, timeout=60)
            if probe.status_code == 404 and "search" not in probe.text.lower():
                rows.append(
                    Row("search p95", None, "ms", note="skipped: the API has no /api/v1/public/search")
                )
            else:
                names = _names(data, cfg.search_queries)
                got_s = _sequential(f"{base}/api/v1/public/search", names)
                assert floor_search is not None
                rows.append(
                    Row(
                        "search p95 (GET /api/v1/public/search)",
                        got_s["p95_ms"],
                        "ms",
                        floor_search["p95_ms"],
                        "trivial endpoint p95",
                        f"{got_s['n']} sequential queries (names, partial names), {got_s['errors']} non-200 "
                        f"(rate limiting answers 429)",
                        got_s,
                    )
                )
    return rows


BATCH_SIZE = 10_000
BATCH_ROUNDS = 10


def _batch_body(known: list[str], as_of: str) -> bytes:
    """A passenger manifest: half subjects with records, half valid identifiers with none."""
    import random

    from socred.demo import person_id

    rng = random.Random(11)
    half = BATCH_SIZE // 2
    with_records = [known[i % len(known)] for i in range(half)] if known else []
    without = [person_id(rng, "110105") for _ in range(BATCH_SIZE - len(with_records))]
    ids = with_records + without
    rng.shuffle(ids)
    return json.dumps({"subject_ids": ids, "activity": "air_travel", "at": as_of}).encode()


def _batches(url: str, body: bytes, headers: dict[str, str], rounds: int) -> dict[str, float]:
    import httpx

    times: list[float] = []
    n = len(json.loads(body)["subject_ids"])
    with httpx.Client(timeout=600) as c:
        h = {**headers, "Content-Type": "application/json"}
        c.post(url, content=body, headers=h).raise_for_status()  # warm-up
        for _ in range(rounds):
            t0 = time.perf_counter()
            c.post(url, content=body, headers=h).raise_for_status()
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"rate": n / median, "median_s": median, "max_s": max(times)}


def _names(data: Path, n: int = 300) -> list[str]:
    import duckdb

    src = str(
        next((data / "demo.civil").glob("submit-*.parquet"), next(data.glob("*/submit-*.parquet")))
    ).replace("'", "''")
    con = duckdb.connect()
    names = [r[0] for r in con.sql(f"SELECT subject_name FROM read_parquet('{src}') LIMIT {n}").fetchall()]
    con.close()
    return [name if i % 2 else name[:2] for i, name in enumerate(names)]


def _sequential(url: str, queries: list[str]) -> dict[str, float]:
    import httpx

    lat: list[float] = []
    errors = 0
    with httpx.Client(timeout=30) as c:
        for q in queries:
            t0 = time.perf_counter()
            r = c.get(url, params={"q": q})
            if r.status_code == 200:
                lat.append((time.perf_counter() - t0) * 1000)
            else:
                errors += 1
    lat.sort()
    return {
        "p95_ms": lat[max(0, int(len(lat) * 0.95) - 1)] if lat else 0.0,
        "p50_ms": statistics.median(lat) if lat else 0.0,
        "n": len(queries),
        "errors": errors,
    }


# ------------------------------------------------------------------ the suite


def run_suite(cfg: Config) -> Results:
    cfg.work.mkdir(parents=True, exist_ok=True)
    results = Results(
        {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items() if k != "say"}, machine()
    )
    results.config["command"] = " ".join(["python -m benchmarks", *sys.argv[1:]])
    data = generate(cfg)
    results.config["records"] = manifest(data)["records"]
    results.config["subjects"] = manifest(data)["subjects"]
    db: Path | None = None
    sqlite_platform = None
    if "validation" in cfg.only:
        cfg.say("validation without the database")
        results.rows.extend(bench_validation(cfg, data))
    if "ingest-sqlite" in cfg.only or "check" in cfg.only or "search" in cfg.only or "sync" in cfg.only:
        rows, sqlite_platform = bench_ingest(cfg, data, "sqlite")
        db = cfg.work / "bench.db"
        if "ingest-sqlite" in cfg.only:
            results.rows.extend(rows)
        if sqlite_platform is not None:
            sqlite_platform.engine.dispose()
    if "ingest-postgresql" in cfg.only:
        problem = pg_available(cfg.pg_url)
        if problem is None:
            results.rows.extend(bench_ingest(cfg, data, "postgresql")[0])
        else:
            results.rows.append(Row("ingest postgresql", None, "ops/s", note=f"skipped: {problem}"))
    engines = [e for e in ("duckdb", "spark") if f"score-{e}" in cfg.only]
    if "spark" in engines and not _spark_available():
        engines.remove("spark")
        results.rows.append(
            Row("score-all spark", None, "s", note="skipped: pyspark or a Java runtime is missing")
        )
    if engines:
        results.rows.extend(bench_score(cfg, data, db, engines))
    if "evaluate" in cfg.only:
        results.rows.extend(bench_evaluate(cfg, data))
    http = tuple(w for w in ("check", "search") if w in cfg.only)
    if http:
        problem = api_available()
        if problem is not None or db is None:
            for w in http:
                results.rows.append(Row(w, None, "req/s", note=f"skipped: {problem or 'no database'}"))
        else:
            results.rows.extend(bench_http(cfg, data, db, http))
    if "sync" in cfg.only and db is not None:
        results.rows.extend(bench_sync(cfg, db))
    results.machine["load_after"] = load_average()
    return results


SYNC_LIMIT = 100_000  # entries replicated at most: the rate is flat past a few pages


def bench_sync(cfg: Config, db: Path, limit: int = SYNC_LIMIT) -> list[Row]:
    """Federation: a national node pulls the ingested ledger from a local ``socred serve`` over HTTP,
    verifying chain, signatures and anchor page by page, and applies it (entries/s). Floors: the same
    ledger's plain ingestion from Parquet (from the ingest row), and bare chain verification."""
    import base64

    from socred.demo import load_shipped_catalogs
    from socred.ledger.chain import ChainVerifier
    from socred.service import federation
    from socred.service.auth import LedgerSigner
    from socred.service.platform import Platform
    from socred.store import repo

    local = Platform(f"sqlite:///{db}")
    key = federation.allow_node(local, "cn", [""])
    public = base64.b64encode(LedgerSigner.load(local.engine, None, "cn-99").public_key).decode()
    with local.engine.connect() as c:
        entries = [e for _, e in zip(range(limit), repo.iter_entries(c), strict=False)]
    local.engine.dispose()
    t0 = time.perf_counter()
    v = ChainVerifier()
    for e in entries:
        v.feed(e)
    verify_rate = len(entries) / (time.perf_counter() - t0)
    nat_db = cfg.work / "national.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(nat_db) + suffix).unlink(missing_ok=True)
    nat = Platform(f"sqlite:///{nat_db}")
    nat.init()
    load_shipped_catalogs(nat)
    port = _free_port()
    env = {
        "SOCRED_ORIGIN": "cn-99",
        "SOCRED_PUBLIC_RATE": "off",
        "SOCRED_LOG_LEVEL": "WARNING",
        "SOCRED_ACCESS_LOG": "false",
    }
    cmd = [sys.executable, "-m", "socred", "--db", str(db), "serve", "--port", str(port)]
    with _server(cmd, env, f"http://127.0.0.1:{port}/readyz"):
        federation.add_node(nat, "cn-99", f"http://127.0.0.1:{port}", public, [""], key)
        cfg.say(f"sync: a national node pulls up to {len(entries):,} entries over HTTP, verifying each page")
        t0 = time.perf_counter()
        (report,) = federation.sync(nat, "cn-99", page_size=1000, max_pages=max(1, len(entries) // 1000))
        seconds = time.perf_counter() - t0
    nat.engine.dispose()
    if report.error:
        return [Row("sync (verified replication)", None, "entries/s", note=f"failed: {report.error}")]
    rate = report.entries / seconds
    note = f"{report.entries:,} entries, {report.applied:,} applied, 1,000/page, {seconds:.1f} s"
    return [
        Row(
            "sync (verified replication over HTTP)",
            rate,
            "entries/s",
            verify_rate,
            "bare hash-chain verification of the same entries",
            note,
            {"entries": report.entries, "seconds": seconds},
        )
    ]


def _spark_available() -> bool:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return shutil.which("java") is not None


# ------------------------------------------------------------------ the table


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "s":
        return f"{value:,.2f} s"
    if unit == "ms":
        return f"{value:,.1f} ms"
    return f"{value:,.0f} {unit}"


def table(results: Results) -> str:
    head = ("benchmark", "figure", "floor / baseline", "of floor", "floor is", "note")
    lines = [head]
    for r in results.rows:
        ratio = r.ratio
        lines.append(
            (
                r.name,
                _fmt(r.value, r.unit),
                _fmt(r.floor, r.unit) if r.floor is not None else "—",
                f"{ratio:.2f}×" if ratio is not None else "—",
                r.floor_name,
                r.note,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    out = []
    for i, line in enumerate(lines):
        out.append("  ".join(line[j].ljust(widths[j]) for j in range(5)) + "  " + line[5])
        if i == 0:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    m = results.machine
    out.append("")
    out.append(
        f"{results.config['records']:,} records, {results.config['subjects']:,} subjects; {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gib']} GiB; {m['date']}; load average before {m['load_before']}, after {m.get('load_after', '?')}"
    )
    out.append("of floor: the figure as a fraction of the floor's speed (1.00× = as fast as the raw floor).")
    return "\n".join(out)


def markdown(results: Results) -> str:
    """The same table in Markdown, for docs/performance.md."""
    out = [
        "| benchmark | figure | floor / baseline | of floor | floor is | note |",
        "|---|--:|--:|--:|---|---|",
    ]
    for r in results.rows:
        ratio = r.ratio
        out.append(
            "| "
            + " | ".join(
                (
                    r.name.strip() if not r.name.startswith("  ") else "↳ " + r.name.strip(),
                    _fmt(r.value, r.unit),
                    _fmt(r.floor, r.unit) if r.floor is not None else "—",
                    f"{ratio:.2f}×" if ratio is not None else "—",
                    r.floor_name,
                    r.note.replace("|", "/"),
                )
            )
            + " |"
        )
    m = results.machine
    out.append("")
    out.append(
        f"{results.config['records']:,} records, {results.config['subjects']:,} subjects; {m['cpu']}, "
        f"{m['cores']} cores, {m['memory_gib']} GiB; {m['date']}; load average before {m['load_before']}, "
        f"after {m.get('load_after', '?')}. Command: `{results.config.get('command', '?')}`"
    )
    return "\n".join(out)


def load_results(path: Path) -> Results:
    d = json.loads(path.read_text(encoding="utf-8"))
    rows = [Row(**{k: v for k, v in r.items() if k != "ratio"}) for r in d["rows"]]
    return Results(d["config"], d["machine"], rows)
