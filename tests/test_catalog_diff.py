"""``socred catalog diff``: the batch preview counts exactly what the per-subject evaluator says."""

from __future__ import annotations

import dataclasses

import json
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
import yaml

from socred.demo import CATALOG_DIR, populate
from socred.domain import scoring
from socred.domain.catalog import parse_catalog
from socred.service.platform import Platform
from socred.service.policy_diff import NOT_SCORED, DiffError, catalog_diff, resolve_catalog
from socred.store import repo

AS_OF = date(2026, 11, 28)


def proposed_national(tmp: Path) -> Path:
    """national@2: a stricter A band, heavier tax arrears, and tax arrears now list the debtor."""
    doc = yaml.safe_load((CATALOG_DIR / "national.yaml").read_text(encoding="utf-8"))
    doc["version"] = 2
    doc["effective_from"] = "2027-01-01"  # not yet in force on AS_OF: the preview applies it anyway
    for band in doc["grades"]:
        if band["grade"] == "A":
            band["min"] = 1000
    for cat in doc["categories"]:
        if cat["code"] == "TAX_ARREARS":
            cat["points"] = -60
            cat["lists"] = ["TAX_ARREARS_LIST"]
    doc["lists"].append(
        {
            "code": "TAX_ARREARS_LIST",
            "kind": "black",
            "title": "Announced tax arrears",
            "duration": 365,
            "measures": ["NO_AIR_TRAVEL"],
        }
    )
    path = tmp / "national-v2.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Platform, Path]:
    tmp = tmp_path_factory.mktemp("diff")
    p = Platform(f"sqlite:///{tmp / 'demo.db'}")
    p.init()
    populate(p, subjects=600, records=3000)
    return p, proposed_national(tmp)


def expected(p: Platform, new_file: Path) -> tuple[Counter[tuple[str, str]], Counter[str], Counter[str]]:
    """Transitions, list joins and measure gains, one subject at a time with the evaluator."""
    old = resolve_catalog(p, "national@1")
    new = parse_catalog(yaml.safe_load(new_file.read_text(encoding="utf-8")))
    new_now = dataclasses.replace(new, effective_from=AS_OF)
    active = p.catalogs()
    transitions: Counter[tuple[str, str]] = Counter()
    joins: Counter[str] = Counter()
    gains: Counter[str] = Counter()
    with p.engine.connect() as conn:
        subjects = [(r.subject_id, r.kind, r.region) for r in conn.execute(repo.t.subjects.select())]
    for sid, kind, region in subjects:
        if scoring.select_catalog(active, region, kind, AS_OF).id != "national":
            continue
        recs = p.scoring_records(sid)
        a = scoring.score(old, sid, kind, recs, AS_OF)
        b = scoring.score(new_now, sid, kind, recs, AS_OF)
        transitions[(a.grade, b.grade)] += 1
        for code in {m.code for m in b.lists} - {m.code for m in a.lists}:
            joins[code] += 1
        for code in set(b.measures) - set(a.measures):
            gains[code] += 1
    return transitions, joins, gains


def test_diff_agrees_with_the_evaluator(demo: tuple[Platform, Path]) -> None:
    p, new_file = demo
    report = catalog_diff(p, "national@1", str(new_file), AS_OF)
    transitions, joins, gains = expected(p, new_file)
    assert report.old == "national@1" and report.new == "national@2"
    assert report.subjects == sum(transitions.values()) > 100
    got = Counter({(o, n): k for o, row in report.transitions.items() for n, k in row.items()})
    assert got == transitions
    assert report.grade_changed == sum(k for (o, n), k in transitions.items() if o != n) > 0
    lists = {m.code: m for m in report.lists}
    assert lists["TAX_ARREARS_LIST"].before == 0
    assert lists["TAX_ARREARS_LIST"].joined == joins["TAX_ARREARS_LIST"] > 0
    assert lists["DISHONEST_JUDGMENT_DEBTOR"].joined == 0 and lists["DISHONEST_JUDGMENT_DEBTOR"].left == 0
    measures = {m.code: m for m in report.measures}
    assert measures["NO_AIR_TRAVEL"].joined == gains["NO_AIR_TRAVEL"] > 0
    assert report.score_up == 0 and report.score_down > 0 and report.mean_delta < 0
    assert NOT_SCORED not in report.grades


def test_same_catalog_changes_nothing(demo: tuple[Platform, Path]) -> None:
    p, _ = demo
    report = catalog_diff(p, "national@1", "national", AS_OF)
    assert report.grade_changed == 0 and report.score_up == report.score_down == 0
    assert all(m.joined == m.left == 0 for m in [*report.lists, *report.measures])
    assert all(o == n for o, row in report.transitions.items() for n in row)


def test_all_regions_counts_subjects_another_catalog_serves(demo: tuple[Platform, Path]) -> None:
    p, new_file = demo
    narrow = catalog_diff(p, "national@1", str(new_file), AS_OF)
    whole = catalog_diff(p, "national@1", str(new_file), AS_OF, whole=True)
    with p.engine.connect() as conn:
        n_subjects = repo.count(conn, "subjects")
    assert narrow.subjects < whole.subjects == n_subjects


def test_a_region_catalog_against_national_shows_subjects_not_scored(demo: tuple[Platform, Path]) -> None:
    p, _ = demo
    report = catalog_diff(p, "shanghai@1", "national@1", AS_OF, whole=True)
    assert NOT_SCORED in report.grades
    assert report.scored_old < report.scored_new == report.subjects


def test_bad_references_are_named(demo: tuple[Platform, Path], tmp_path: Path) -> None:
    p, _ = demo
    with pytest.raises(DiffError, match="no catalog 'nowhere' is loaded"):
        resolve_catalog(p, "nowhere")
    with pytest.raises(DiffError, match="has no version 9"):
        resolve_catalog(p, "national@9")
    with pytest.raises(DiffError, match="must be a number"):
        resolve_catalog(p, "national@x")
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nversion: 1\n", encoding="utf-8")
    with pytest.raises(DiffError, match=r"bad\.yaml"):
        resolve_catalog(p, str(bad))


def test_cli_json_table_and_chart(demo: tuple[Platform, Path], tmp_path: Path) -> None:
    p, new_file = demo
    db = str(p.engine.url).removeprefix("sqlite:///")
    base = [sys.executable, "-m", "socred", "--db", db, "catalog", "diff", "national@1", str(new_file)]
    chart = tmp_path / "impact.svg"
    done = subprocess.run(
        [*base, "--as-of", "2026-11-28", "--json", "--chart", str(chart)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["old"] == "national@1" and out["new"] == "national@2" and out["as_of"] == "2026-11-28"
    assert out["grade_changed"] > 0
    assert any(t["from"] == "A" and t["to"] == "B" for t in out["transitions"])
    svg = chart.read_text(encoding="utf-8")
    assert svg.startswith("<svg") and "TAX_ARREARS_LIST" in svg and "national@2" in svg
    table = subprocess.run([*base, "--as-of", "2026-11-28"], capture_output=True, text=True, timeout=120)
    assert (
        table.returncode == 0 and "Grade transitions" in table.stdout and "TAX_ARREARS_LIST" in table.stdout
    )
    bad = subprocess.run([*base[:-1], "nowhere@1"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no catalog 'nowhere' is loaded" in bad.stderr
