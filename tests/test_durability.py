"""Nothing accepted is lost and nothing is half-written, even when ingestion is killed mid-way."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from socred.service.platform import Platform
from socred.store import repo
from tests.helpers import PERSON, TEST_CATALOG, submit, write_jsonl


def test_kill_during_ingest_then_resume(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    p = Platform(url)
    p.init()
    p.load_catalog_file(TEST_CATALOG)
    p.add_provider("court", "Court", ["TRAFFIC_HONKING"])
    n = 30_000
    ops = [
        submit(f"k{i:06d}", subject_id=PERSON, occurred_on=f"2026-0{1 + i % 9}-1{i % 10}") for i in range(n)
    ]
    f = write_jsonl(tmp_path / "big.jsonl", ops)
    lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
    # The first run reads a named pipe that is fed only the first 5,000 operations and then held
    # open: the ingester must be mid-way, waiting for more, when it is killed - however fast it is.
    fifo = tmp_path / "feed.jsonl"
    os.mkfifo(fifo)
    fed = 5_000
    env = {**os.environ, "SOCRED_DB": url}

    def cmd_for(path: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "socred",
            "ingest",
            str(path),
            "--source",
            "court",
            "--batch-size",
            "500",
        ]

    proc = subprocess.Popen(cmd_for(fifo), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writer = open(fifo, "w", encoding="utf-8")  # noqa: SIM115 - blocks until the ingester opens it
    writer.writelines(lines[:fed])
    writer.flush()
    # wait until some batches are committed, then kill without warning
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with p.engine.connect() as c:
            if repo.head(c)[0] > 2000:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with contextlib.suppress(BrokenPipeError):
        writer.close()
    with p.engine.connect() as c:
        seq, _ = repo.head(c)
        n_records = repo.count(c, "records")
    assert 2000 < seq <= fed + 1, "the kill should land mid-way"
    # every committed operation is in the ledger and the projection, and only those
    assert n_records == seq - 1
    assert p.verify_ledger().ok
    assert p.rebuild_projections() == seq
    # resuming with the same file applies the rest and reports the committed ones as duplicates
    done = subprocess.run(cmd_for(f), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["duplicates"] == seq - 1
    assert summary["accepted"] == n - (seq - 1)
    v = p.verify_ledger()
    assert v.ok and v.entries == n + 1
    p.engine.dispose()
