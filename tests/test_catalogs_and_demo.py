"""The shipped catalogs are valid, and the demo population is accepted whole."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from socred.demo import CATALOG_DIR, populate
from socred.domain.catalog import parse_catalog
from socred.service.platform import Platform

SHIPPED = sorted(CATALOG_DIR.glob("*.yaml"))


def test_three_catalogs_are_shipped() -> None:
    assert {p.stem for p in SHIPPED} >= {"national", "shanghai", "rongcheng"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_catalog_is_valid_and_every_entry_has_a_legal_basis(path: Path) -> None:
    cat = parse_catalog(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert cat.categories, "a catalog without categories scores nothing"
    for c in cat.categories.values():
        assert c.legal_basis.strip(), f"category {c.code} has no legal basis"
        if c.severity == "minor":
            assert c.public is False, f"minor category {c.code} must never be published"
    for m in cat.measures.values():
        assert m.legal_basis.strip(), f"measure {m.code} has no legal basis"
    # the dishonest judgment debtor list restricts air travel, as the SPC rules do
    djd = cat.lists.get("DISHONEST_JUDGMENT_DEBTOR")
    assert djd is not None and djd.duration == 730
    assert "air_travel" in {cat.measures[m].activity for m in djd.measures}


def test_rongcheng_points_follow_the_published_standards() -> None:
    cat = parse_catalog(yaml.safe_load((CATALOG_DIR / "rongcheng.yaml").read_text(encoding="utf-8")))
    assert cat.base_score == 1000
    assert cat.grades[0].grade == "AAA" and cat.grades[0].min == 1050
    points = {c.points for c in cat.categories.values()}
    assert {-20, -50, -100} <= points


def test_demo_population_is_accepted_and_scorable(tmp_path: Path) -> None:
    p = Platform(f"sqlite:///{tmp_path / 'demo.db'}")
    summary = populate(p, subjects=200, records=600, seed=3)
    assert summary["rejected"] == 0 and summary["accepted"] == 600
    assert sorted(summary["catalogs"]) == ["national@1", "rongcheng@1", "shanghai@1"]
    again = populate(p, subjects=200, records=600, seed=3)  # idempotent: make run may run twice
    assert again["accepted"] == 0 and again["duplicates"] == 600
    assert p.verify_ledger().ok
    p.engine.dispose()
