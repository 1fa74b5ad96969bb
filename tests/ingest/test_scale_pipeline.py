"""The national-scale pipeline end to end, small: demo --out, bulk ingest, export, score-all.

The generated operations are all accepted; the records projection the generator predicts is what
ingestion produces (and what ``socred export`` writes); score-all streamed from the database equals
score-all over the exported dataset and the per-subject evaluator for every subject.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from socred.demo import load_shipped_catalogs
from socred.demo_scale import ScaleSpec, files_in_order, write_dataset
from socred.ingest.bulk import ArrowOperations
from socred.service import batch
from socred.service.platform import Platform
from socred.store import export

TODAY = date(2026, 11, 28)


@pytest.fixture
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    write_dataset(out, ScaleSpec(400, 2500, seed=11, today=TODAY, changes=0.05, projection=True, chunk=700))
    return out


@pytest.fixture
def loaded(db_url: str, generated: Path) -> Iterator[Platform]:
    import json

    p = Platform(db_url)
    p.init()
    load_shipped_catalogs(p)
    manifest = json.loads((generated / "manifest.json").read_text())
    for code, info in manifest["providers"].items():
        p.add_provider(code, info["name"], info["categories"])
    for code, path in files_in_order(generated):
        s = p.ingest(code, ArrowOperations.parquet(path), batch_size=500, today=TODAY)
        assert s.rejected == 0, s.errors[:3]
    yield p
    p.engine.dispose()


def _sorted(t: pa.Table) -> list[dict[str, object]]:
    return sorted(t.to_pylist(), key=lambda r: (r["source"], r["record_id"]))


def test_generated_operations_ingest_export_and_score(
    loaded: Platform, generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = loaded
    assert p.verify_ledger().ok
    predicted = pq.read_table(generated / "records").select(export.RECORD_SCHEMA.names)
    streamed = pa.Table.from_batches(list(export.stream_records(p.engine)), export.RECORD_SCHEMA)
    assert _sorted(streamed) == _sorted(predicted)
    exported = export.export_records(p.engine, tmp_path / "export")
    assert exported["records"] == predicted.num_rows
    from_export = pa.Table.from_batches(
        list(export.dataset_batches(tmp_path / "export")), export.RECORD_SCHEMA
    )
    assert _sorted(from_export) == _sorted(predicted)

    as_of = date(2026, 11, 28)
    summary = batch.score_all(p, tmp_path / "all.parquet", as_of, None, "duckdb")
    assert summary["subjects"] == 400 and summary["unserved_subjects"] == 0
    assert set(summary["catalogs"]) <= {"national@1", "shanghai@1", "rongcheng@1"}
    rows = pq.read_table(tmp_path / "all.parquet").to_pylist()
    assert [r["subject_id"] for r in rows] == sorted(r["subject_id"] for r in rows)
    monkeypatch.setenv("SOCRED_BATCH_BUCKET_RECORDS", "600")  # several subject buckets per catalog
    again = batch.score_dataset(
        tmp_path / "export", p.catalogs(), tmp_path / "b.parquet", as_of, None, "duckdb"
    )
    assert pq.read_table(tmp_path / "b.parquet").to_pylist() == rows
    assert again["subjects"] == 400 and again["buckets"] == 5
    for r in rows:
        one = p.score(r["subject_id"], as_of).to_dict()
        assert (one["score"], one["grade"], one["catalog"]) == (r["score"], r["grade"], r["catalog"])
        assert sorted(li["code"] for li in one["lists"]) == r["lists"]
        assert one["measures"] == r["measures"]


def test_demo_out_command(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    out = tmp_path / "national"
    p = subprocess.run(
        [sys.executable, "-m", "socred", "demo", "--subjects", "50", "--records", "300", "--out", str(out),
         "--changes", "0.1", "--rows-per-file", "40"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    manifest = json.loads(p.stdout)
    assert manifest == json.loads((out / "manifest.json").read_text())
    assert manifest["records"] == 300 and manifest["changes"] == 30
    files = [f for info in manifest["providers"].values() for f in info["files"]]
    assert sum(pq.ParquetFile(out / f).metadata.num_rows for f in files) == 330
    assert all(pq.ParquetFile(out / f).metadata.num_rows <= 40 for f in files)
    bad = subprocess.run(
        [sys.executable, "-m", "socred", "demo", "--out", str(out), "--changes", "2"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "--changes" in bad.stderr
