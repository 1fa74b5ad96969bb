"""score-all's splitter holds memory for the rows it buffers, not for every batch it has seen: a small
part (a region with few records) must not keep the streamed batches alive (100M records once needed
11 GiB because of that)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa

from socred.demo_scale import shipped_catalogs
from socred.service.batch import _Splitter
from socred.store.export import RECORD_SCHEMA


def _batch(n: int, start: int) -> pa.RecordBatch:
    # all but one row in Shanghai (the shanghai catalog); one row in Beijing (the national catalog)
    regions = ["310104"] * (n - 1) + ["110105"]
    return pa.RecordBatch.from_pydict(
        {
            "record_id": [f"r{start + i}" for i in range(n)],
            "source": ["court"] * n,
            "subject_id": [f"31010419800101{(start + i) % 9999:04d}" for i in range(n)],
            "kind": ["person"] * n,
            "region": regions,
            "category": ["CONTRACT_BREACH_JUDGMENT"] * n,
            "occurred_on": [date(2026, 1, 1)] * n,
            "retracted": [False] * n,
            "repaired_on": [None] * n,
        },
        schema=RECORD_SCHEMA,
    )


def test_a_small_part_does_not_pin_the_batches(tmp_path: Path) -> None:
    splitter = _Splitter(tmp_path, shipped_catalogs(), date(2026, 6, 1), None, 1)
    n, rounds = 50_000, 30
    one = _batch(n, 0).nbytes
    before = pa.total_allocated_bytes()
    for k in range(rounds):
        splitter.write(_batch(n, k * n))
    held = pa.total_allocated_bytes() - before
    splitter.close()
    assert splitter.records == n * rounds
    # the big part is flushed every STREAM_ROWS rows; the Beijing part holds 30 rows, not 30 batches
    assert held < 8 * one, f"the splitter holds {held / one:.1f} batches' worth of memory"
