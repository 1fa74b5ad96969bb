"""Scoring semantics (scoring.md): hand-computed cases and properties against a naive reference."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from socred.domain.catalog import Catalog, parse_catalog
from socred.domain.scoring import (
    CheckResult,
    Chooser,
    ScoreResult,
    ScoringError,
    ScoringRecord,
    check,
    check_from_score,
    routes,
    score,
    select_catalog,
)

T = date(2026, 11, 28)
D = date.fromisoformat
BUNDLED = Path(__file__).resolve().parents[2] / "src" / "socred" / "catalogs" / "shanghai.yaml"

BASE_DOC: dict[str, Any] = {
    "id": "t",
    "version": 1,
    "title": "Test catalog",
    "regions": [""],
    "effective_from": "2020-01-01",
    "base_score": 1000,
    "score_bounds": [0, 2000],
    "grades": [
        {"grade": "AAA", "min": 1050},
        {"grade": "AA", "min": 1030},
        {"grade": "A", "min": 960},
        {"grade": "B", "min": 850},
        {"grade": "C", "min": 600},
        {"grade": "D", "min": 0},
    ],
    "categories": [
        {
            "code": "HONK",
            "title": "Honking in a no-honking zone",
            "domain": "social",
            "subjects": ["person"],
            "points": -5,
            "valid_for": 365,
            "max_count": 2,
            "legal_basis": "Env. Regs art. 57",
        },
        {
            "code": "DEBTOR",
            "title": "Dishonest judgment debtor",
            "domain": "judicial",
            "subjects": ["person", "organization"],
            "points": -100,
            "valid_for": 30,  # deliberately shorter than the list's duration
            "legal_basis": "Fa Shi [2017] No. 7, art. 1",
            "lists": ["DEBTOR_LIST"],
        },
        {
            "code": "TAX_A",
            "title": "A-grade taxpayer",
            "domain": "government",
            "subjects": ["organization"],
            "points": 40,
            "valid_for": 365,
            "legal_basis": "Tax credit measures art. 29",
            "lists": ["TAX_RED"],
        },
        {
            "code": "FINE",
            "title": "Large administrative fine",
            "domain": "commercial",
            "subjects": ["person", "organization"],
            "points": -300,
            "valid_for": 100,
            "legal_basis": "Admin Penalty Law art. 9",
        },
        {
            "code": "HERO",
            "title": "National honour",
            "domain": "government",
            "subjects": ["person"],
            "points": 60,
            "valid_for": 365,
            "legal_basis": "Medals Law",
        },
    ],
    "lists": [
        {
            "code": "DEBTOR_LIST",
            "kind": "black",
            "title": "Dishonest debtors",
            "duration": 730,
            "measures": ["NO_AIR_TRAVEL", "NO_HSR"],
        },
        {
            "code": "TAX_RED",
            "kind": "red",
            "title": "A-grade taxpayers",
            "duration": 365,
            "measures": ["FAST_TAX"],
        },
        {
            "code": "HONOR_ROLL",
            "kind": "red",
            "title": "Honour roll",
            "grades": ["AAA"],
            "measures": ["DEPOSIT_FREE", "AIR_PRIORITY"],
        },
        {
            "code": "LOW_GRADE",
            "kind": "black",
            "title": "Low grade",
            "grades": ["C", "D"],
            "measures": ["NO_AIR_TRAVEL"],
        },
    ],
    "measures": [
        {"code": "NO_AIR_TRAVEL", "activity": "air_travel", "effect": "restrict", "title": "No flights"},
        {"code": "NO_HSR", "activity": "rail_first_class", "effect": "restrict", "title": "No HSR"},
        {"code": "AIR_PRIORITY", "activity": "air_travel", "effect": "benefit", "title": "Priority boarding"},
        {"code": "DEPOSIT_FREE", "activity": "rental_deposit", "effect": "benefit", "title": "No deposit"},
        {"code": "FAST_TAX", "activity": "tax_service", "effect": "benefit", "title": "Tax green channel"},
    ],
}

ZERO = {"government": 0, "commercial": 0, "social": 0, "judicial": 0}


def make_catalog(**overrides: Any) -> Catalog:
    doc = copy.deepcopy(BASE_DOC)
    doc.update(overrides)
    return parse_catalog(doc)


CAT = make_catalog()
PERSON = "110101199003070011"
ORG = "91310000MA1FL0000X"


def rec(
    rid: str,
    category: str,
    occurred: str,
    *,
    source: str = "SRC",
    retracted: bool = False,
    repaired: str | None = None,
) -> ScoringRecord:
    return ScoringRecord(rid, source, category, D(occurred), retracted, D(repaired) if repaired else None)


def contrib(rid: str, category: str, occurred: str, source: str = "SRC") -> dict[str, Any]:
    c = CAT.categories[category]
    return {
        "record_id": rid,
        "source": source,
        "category": category,
        "domain": c.domain,
        "points": c.points,
        "occurred_on": occurred,
        "expires_on": (D(occurred) + timedelta(days=c.valid_for)).isoformat(),
        "legal_basis": c.legal_basis,
    }


def assert_invariant(cat: Catalog, res: ScoreResult) -> None:
    total = sum(c.points for c in res.contributions)
    assert cat.clamp(cat.base_score + total) == res.score
    for domain, subtotal in res.domains.items():
        assert subtotal == sum(c.points for c in res.contributions if c.domain == domain)


# ---------------------------------------------------------------- scores


def test_no_records_gets_base_score() -> None:
    res = score(CAT, PERSON, "person", [], T)
    assert res.to_dict() == {
        "subject_id": PERSON,
        "kind": "person",
        "catalog": "t@1",
        "as_of": "2026-11-28",
        "score": 1000,
        "grade": "A",
        "domains": ZERO,
        "contributions": [],
        "lists": [],
        "measures": [],
    }
    assert list(res.to_dict()) == [
        "subject_id",
        "kind",
        "catalog",
        "as_of",
        "score",
        "grade",
        "domains",
        "contributions",
        "lists",
        "measures",
    ]
    assert list(res.domains) == ["government", "commercial", "social", "judicial"]
    assert res.reasons(CAT) == []
    assert check(CAT, PERSON, "person", [], "air_travel", T).to_dict() == {
        "subject_id": PERSON,
        "activity": "air_travel",
        "at": "2026-11-28",
        "catalog": "t@1",
        "decision": "allowed",
        "measures": [],
        "lists": [],
        "until": None,
    }


def test_base_score_is_clamped_and_may_put_on_grade_list() -> None:
    high = make_catalog(base_score=2500)
    d = score(high, PERSON, "person", [], T).to_dict()
    assert (d["score"], d["grade"]) == (2000, "AAA")
    assert d["lists"] == [{"code": "HONOR_ROLL", "kind": "red", "since": None, "until": None, "records": []}]
    assert d["measures"] == ["AIR_PRIORITY", "DEPOSIT_FREE"]
    low = make_catalog(base_score=-10)
    d = score(low, PERSON, "person", [], T).to_dict()
    assert (d["score"], d["grade"]) == (0, "D")
    assert [x["code"] for x in d["lists"]] == ["LOW_GRADE"]


def test_clamping_at_lower_bound() -> None:
    recs = [rec(f"f{i}", "FINE", "2026-11-01") for i in range(4)]
    res = score(CAT, PERSON, "person", recs, T)
    assert res.score == 0  # 1000 - 1200 clamped
    assert res.grade == "D"
    assert res.domains == {**ZERO, "commercial": -1200}
    assert len(res.contributions) == 4
    assert_invariant(CAT, res)


def test_clamping_at_upper_bound() -> None:
    cat = make_catalog(score_bounds=[0, 1100])
    recs = [rec("g1", "HERO", "2026-01-05"), rec("g2", "HERO", "2026-02-05")]
    res = score(cat, PERSON, "person", recs, T)
    assert (res.score, res.grade) == (1100, "AAA")  # 1120 clamped
    assert res.domains == {**ZERO, "government": 120}
    assert_invariant(cat, res)


def test_expiry_boundaries() -> None:
    r = [rec("h1", "HONK", "2025-11-28")]  # expires 2026-11-28
    assert score(CAT, PERSON, "person", r, D("2026-11-28")).score == 1000  # T == expires_on
    assert score(CAT, PERSON, "person", r, D("2026-11-27")).score == 995  # last day
    assert score(CAT, PERSON, "person", r, D("2025-11-28")).score == 995  # T == occurred_on
    assert score(CAT, PERSON, "person", r, D("2025-11-27")).score == 1000  # before it happened
    d = score(CAT, PERSON, "person", r, D("2025-11-28")).to_dict()
    assert d["contributions"] == [contrib("h1", "HONK", "2025-11-28")]
    assert d["contributions"][0]["expires_on"] == "2026-11-28"


def test_repair_on_occurrence_date_never_counts_never_lists() -> None:
    r = [rec("d1", "DEBTOR", "2026-11-01", repaired="2026-11-01")]
    for day in ("2026-10-31", "2026-11-01", "2026-11-02", "2026-11-28", "2027-06-01"):
        d = score(CAT, PERSON, "person", r, D(day)).to_dict()
        assert (d["score"], d["contributions"], d["lists"], d["measures"]) == (1000, [], [], [])


def test_repair_after_t_is_known_for_until() -> None:
    r = [rec("d1", "DEBTOR", "2026-11-01", source="court", repaired="2027-03-01")]
    d = score(CAT, PERSON, "person", r, T).to_dict()
    assert d == {
        "subject_id": PERSON,
        "kind": "person",
        "catalog": "t@1",
        "as_of": "2026-11-28",
        "score": 900,
        "grade": "B",
        "domains": {**ZERO, "judicial": -100},
        "contributions": [contrib("d1", "DEBTOR", "2026-11-01", "court")],
        "lists": [
            # the list would run to 2028-10-31, but the repair ends it earlier
            {
                "code": "DEBTOR_LIST",
                "kind": "black",
                "since": "2026-11-01",
                "until": "2027-03-01",
                "records": ["d1"],
            }
        ],
        "measures": ["NO_AIR_TRAVEL", "NO_HSR"],
    }
    c = check(CAT, PERSON, "person", r, "air_travel", T).to_dict()
    assert (c["decision"], c["until"]) == ("restricted", "2027-03-01")
    # on and after the repair date: off the list
    d = score(CAT, PERSON, "person", r, D("2027-03-01")).to_dict()
    assert (d["score"], d["lists"], d["measures"]) == (1000, [], [])
    # a repair before the valid_for ends stops the points too
    r2 = [rec("d2", "DEBTOR", "2026-11-20", repaired="2026-11-29")]
    assert score(CAT, PERSON, "person", r2, D("2026-11-28")).score == 900
    assert score(CAT, PERSON, "person", r2, D("2026-11-29")).score == 1000


def test_max_count_keeps_most_recent_ties_by_record_id_desc() -> None:
    recs = [
        rec("a10", "HONK", "2026-06-01"),
        rec("a9", "HONK", "2026-06-01"),
        rec("a100", "HONK", "2026-06-01"),
        rec("zz", "HONK", "2026-05-01"),  # older: dropped despite the larger id
    ]
    res = score(CAT, PERSON, "person", recs, T)
    # descending: a9 > a100 > a10 (code-point order) -> keep a9 and a100
    assert res.score == 990
    assert [c.to_dict() for c in res.contributions] == [
        contrib("a100", "HONK", "2026-06-01"),
        contrib("a9", "HONK", "2026-06-01"),
    ]
    # a more recent record displaces the smallest of the tie
    recs.append(rec("A0", "HONK", "2026-07-01"))
    res = score(CAT, PERSON, "person", recs, T)
    assert [c.record_id for c in res.contributions] == ["a9", "A0"]
    assert res.score == 990
    # an uppercase id sorts before lowercase in code-point order
    tie = [rec("b", "HONK", "2026-06-01"), rec("B", "HONK", "2026-06-01"), rec("C", "HONK", "2026-06-01")]
    assert [c.record_id for c in score(CAT, PERSON, "person", tie, T).contributions] == ["C", "b"]


def test_list_extended_by_later_record_and_beyond_valid_for() -> None:
    recs = [rec("r1", "DEBTOR", "2025-01-10"), rec("r2", "DEBTOR", "2026-02-01")]
    d = score(CAT, PERSON, "person", recs, T).to_dict()
    assert d == {
        "subject_id": PERSON,
        "kind": "person",
        "catalog": "t@1",
        "as_of": "2026-11-28",
        "score": 1000,  # both records expired for points (valid_for 30)
        "grade": "A",
        "domains": ZERO,
        "contributions": [],
        "lists": [
            {
                "code": "DEBTOR_LIST",
                "kind": "black",
                "since": "2025-01-10",
                "until": "2028-02-01",
                "records": ["r1", "r2"],
            }
        ],
        "measures": ["NO_AIR_TRAVEL", "NO_HSR"],
    }
    assert check(CAT, PERSON, "person", recs, "air_travel", T).to_dict() == {
        "subject_id": PERSON,
        "activity": "air_travel",
        "at": "2026-11-28",
        "catalog": "t@1",
        "decision": "restricted",
        "measures": ["NO_AIR_TRAVEL"],
        "lists": ["DEBTOR_LIST"],
        "until": "2028-02-01",
    }
    # r1 holds until 2027-01-10; afterwards only r2 keeps the subject on the list
    d = score(CAT, PERSON, "person", recs, D("2027-01-10")).to_dict()
    assert d["lists"] == [
        {
            "code": "DEBTOR_LIST",
            "kind": "black",
            "since": "2026-02-01",
            "until": "2028-02-01",
            "records": ["r2"],
        }
    ]
    assert score(CAT, PERSON, "person", recs, D("2028-01-31")).lists[0].records == ("r2",)
    assert score(CAT, PERSON, "person", recs, D("2028-02-01")).lists == ()


def test_single_record_list_beyond_valid_for() -> None:
    r = [rec("d1", "DEBTOR", "2026-01-01")]
    res = score(CAT, PERSON, "person", r, T)
    assert res.score == 1000 and res.contributions == ()
    assert [m.to_dict() for m in res.lists] == [
        {
            "code": "DEBTOR_LIST",
            "kind": "black",
            "since": "2026-01-01",
            "until": "2028-01-01",
            "records": ["d1"],
        }
    ]


def test_retracted_record_neither_counts_nor_lists() -> None:
    r = [rec("d1", "DEBTOR", "2026-11-20", retracted=True), rec("h1", "HONK", "2026-11-20", retracted=True)]
    d = score(CAT, PERSON, "person", r, T).to_dict()
    assert (d["score"], d["domains"], d["contributions"], d["lists"], d["measures"]) == (
        1000,
        ZERO,
        [],
        [],
        [],
    )
    assert check(CAT, PERSON, "person", r, "air_travel", T).decision == "allowed"


def test_grade_triggered_list_makes_check_until_null() -> None:
    recs = [rec("f1", "FINE", "2026-11-01"), rec("d1", "DEBTOR", "2026-11-10")]
    d = score(CAT, PERSON, "person", recs, T).to_dict()
    assert (d["score"], d["grade"]) == (600, "C")
    assert d["lists"] == [
        {
            "code": "DEBTOR_LIST",
            "kind": "black",
            "since": "2026-11-10",
            "until": "2028-11-09",
            "records": ["d1"],
        },
        {"code": "LOW_GRADE", "kind": "black", "since": None, "until": None, "records": []},
    ]
    assert check(CAT, PERSON, "person", recs, "air_travel", T).to_dict() == {
        "subject_id": PERSON,
        "activity": "air_travel",
        "at": "2026-11-28",
        "catalog": "t@1",
        "decision": "restricted",
        "measures": ["NO_AIR_TRAVEL"],
        "lists": ["DEBTOR_LIST", "LOW_GRADE"],
        "until": None,
    }
    # the activity only DEBTOR_LIST restricts keeps its fixed end
    c = check(CAT, PERSON, "person", recs, "rail_first_class", T)
    assert (c.decision, c.lists, c.until) == ("restricted", ("DEBTOR_LIST",), D("2028-11-09"))


def test_check_until_is_latest_over_restricting_lists() -> None:
    doc = copy.deepcopy(BASE_DOC)
    doc["categories"].append(
        {
            "code": "UNPAID_FARE",
            "title": "Unpaid air fare",
            "domain": "commercial",
            "subjects": ["person"],
            "points": -1,
            "valid_for": 10,
            "legal_basis": "Carrier rules",
            "lists": ["FLYING_BAN"],
        }
    )
    doc["lists"].append(
        {
            "code": "FLYING_BAN",
            "kind": "black",
            "title": "Flying ban",
            "duration": 1000,
            "measures": ["NO_AIR_TRAVEL"],
        }
    )
    cat = parse_catalog(doc)
    later = [
        rec("d1", "DEBTOR", "2026-11-10"),
        rec("u1", "UNPAID_FARE", "2026-11-01"),
    ]  # 2028-11-09 vs 2029-07-28
    c = check(cat, PERSON, "person", later, "air_travel", T)
    assert (c.decision, c.lists, c.until) == ("restricted", ("DEBTOR_LIST", "FLYING_BAN"), D("2029-07-28"))
    earlier = [
        rec("d1", "DEBTOR", "2026-11-10"),
        rec("u1", "UNPAID_FARE", "2024-06-01"),
    ]  # 2028-11-09 vs 2027-02-26
    c = check(cat, PERSON, "person", earlier, "air_travel", T)
    assert (c.decision, c.lists, c.until) == ("restricted", ("DEBTOR_LIST", "FLYING_BAN"), D("2028-11-09"))


def test_benefit_versus_restrict() -> None:
    hero = [rec("g1", "HERO", "2026-06-01")]
    assert score(CAT, PERSON, "person", hero, T).grade == "AAA"
    assert check(CAT, PERSON, "person", hero, "air_travel", T).to_dict() == {
        "subject_id": PERSON,
        "activity": "air_travel",
        "at": "2026-11-28",
        "catalog": "t@1",
        "decision": "allowed",
        "measures": ["AIR_PRIORITY"],
        "lists": ["HONOR_ROLL"],
        "until": None,
    }
    # on the honour roll and the debtor list at once: a restriction wins; the benefit-only list has no say on until
    both = [*hero, rec("d1", "DEBTOR", "2026-01-01")]
    assert check(CAT, PERSON, "person", both, "air_travel", T).to_dict() == {
        "subject_id": PERSON,
        "activity": "air_travel",
        "at": "2026-11-28",
        "catalog": "t@1",
        "decision": "restricted",
        "measures": ["AIR_PRIORITY", "NO_AIR_TRAVEL"],
        "lists": ["DEBTOR_LIST", "HONOR_ROLL"],
        "until": "2028-01-01",
    }
    c = check(CAT, PERSON, "person", both, "rental_deposit", T)
    assert (c.decision, c.measures, c.lists, c.until) == ("allowed", ("DEPOSIT_FREE",), ("HONOR_ROLL",), None)
    c = check(CAT, PERSON, "person", both, "unknown_activity", T)
    assert (c.decision, c.measures, c.lists, c.until) == ("allowed", (), (), None)


def test_check_from_score_matches_check_and_rejects_other_catalog() -> None:
    recs = [rec("d1", "DEBTOR", "2026-11-10")]
    res = score(CAT, PERSON, "person", recs, T)
    assert check_from_score(CAT, res, "air_travel") == check(CAT, PERSON, "person", recs, "air_travel", T)
    assert isinstance(check_from_score(CAT, res, "air_travel"), CheckResult)
    with pytest.raises(ScoringError, match="t@1"):
        check_from_score(make_catalog(version=2), res, "air_travel")


def test_effective_from_after_t_raises() -> None:
    cat = make_catalog(id="shanghai", version=3, effective_from="2027-01-01")
    with pytest.raises(ScoringError) as e:
        score(cat, PERSON, "person", [], T)
    assert str(e.value) == "catalog shanghai@3 takes effect on 2027-01-01, after 2026-11-28"
    with pytest.raises(ScoringError):
        check(cat, PERSON, "person", [], "air_travel", T)
    assert score(cat, PERSON, "person", [], D("2027-01-01")).score == 1000  # on the day: fine


def test_category_for_organizations_only_is_ignored_for_a_person() -> None:
    r = [rec("x1", "TAX_A", "2026-06-01")]
    d = score(CAT, PERSON, "person", r, T).to_dict()
    assert (d["score"], d["contributions"], d["lists"]) == (1000, [], [])
    d = score(CAT, ORG, "organization", r, T).to_dict()
    assert d == {
        "subject_id": ORG,
        "kind": "organization",
        "catalog": "t@1",
        "as_of": "2026-11-28",
        "score": 1040,
        "grade": "AA",
        "domains": {**ZERO, "government": 40},
        "contributions": [contrib("x1", "TAX_A", "2026-06-01")],
        "lists": [
            {
                "code": "TAX_RED",
                "kind": "red",
                "since": "2026-06-01",
                "until": "2027-06-01",
                "records": ["x1"],
            }
        ],
        "measures": ["FAST_TAX"],
    }
    # unknown categories are ignored too
    assert score(CAT, PERSON, "person", [rec("u1", "NOT_DEFINED", "2026-06-01")], T).score == 1000


def test_domain_subtotals_full_result() -> None:
    recs = [
        rec("d1", "DEBTOR", "2026-11-10", source="court"),
        rec("h1", "HONK", "2026-06-01", source="police"),
        rec("f1", "FINE", "2026-10-01", source="samr"),
        rec("g1", "HERO", "2026-03-01", source="gov"),
    ]
    res = score(CAT, PERSON, "person", recs, T)
    assert res.to_dict() == {
        "subject_id": PERSON,
        "kind": "person",
        "catalog": "t@1",
        "as_of": "2026-11-28",
        "score": 655,
        "grade": "C",
        "domains": {"government": 60, "commercial": -300, "social": -5, "judicial": -100},
        "contributions": [
            contrib("g1", "HERO", "2026-03-01", "gov"),
            contrib("h1", "HONK", "2026-06-01", "police"),
            contrib("f1", "FINE", "2026-10-01", "samr"),
            contrib("d1", "DEBTOR", "2026-11-10", "court"),
        ],
        "lists": [
            {
                "code": "DEBTOR_LIST",
                "kind": "black",
                "since": "2026-11-10",
                "until": "2028-11-09",
                "records": ["d1"],
            },
            {"code": "LOW_GRADE", "kind": "black", "since": None, "until": None, "records": []},
        ],
        "measures": ["NO_AIR_TRAVEL", "NO_HSR"],
    }
    assert_invariant(CAT, res)
    reasons = res.reasons(CAT)
    assert len(reasons) == 3  # the positive HERO record is no reason for a low score
    assert "Large administrative fine" in reasons[0] and "-300" in reasons[0]
    assert "Admin Penalty Law art. 9" in reasons[0]
    assert "Dishonest judgment debtor" in reasons[1] and "-100" in reasons[1]
    assert "Honking" in reasons[2] and "-5" in reasons[2]
    assert res.reasons(CAT, limit=1) == reasons[:1]


def test_reasons_aggregate_per_category() -> None:
    recs = [rec(f"h{i}", "HONK", f"2026-0{i + 1}-01") for i in range(2)] + [rec("x", "HERO", "2026-01-01")]
    res = score(CAT, PERSON, "person", recs, T)
    assert res.reasons(CAT) == [
        "Honking in a no-honking zone: -10 points from 2 records (legal basis: Env. Regs art. 57)."
    ]
    assert score(CAT, PERSON, "person", recs[2:], T).reasons(CAT) == []


def test_records_may_be_any_iterable() -> None:
    recs = [rec("d1", "DEBTOR", "2026-11-10"), rec("h1", "HONK", "2026-06-01")]
    assert score(CAT, PERSON, "person", iter(recs), T) == score(CAT, PERSON, "person", recs, T)


# ---------------------------------------------------------------- choosing the catalog


def _cat(cid: str, version: int, regions: list[str], eff: str) -> Catalog:
    return make_catalog(id=cid, version=version, regions=regions, effective_from=eff)


VERSIONS = [
    _cat("national", 1, [""], "2020-01-01"),
    _cat("shanghai", 1, ["31"], "2024-01-01"),
    _cat("shanghai", 2, ["31"], "2026-01-01"),
    _cat("pudong", 1, ["310115"], "2020-01-01"),
    _cat("bbb", 1, ["44"], "2020-01-01"),
    _cat("aaa", 1, ["44", "45"], "2020-01-01"),
]


def test_select_catalog_by_longest_prefix() -> None:
    assert select_catalog(VERSIONS, "310101", "person", T).ref == "shanghai@2"
    assert select_catalog(VERSIONS, "310115", "person", T).ref == "pudong@1"
    assert select_catalog(VERSIONS, "110101", "person", T).ref == "national@1"
    assert select_catalog(VERSIONS, "440113", "person", T).ref == "aaa@1"  # equal prefixes: smaller id
    assert select_catalog(list(reversed(VERSIONS)), "440113", "person", T).ref == "aaa@1"


def test_select_catalog_by_version_date() -> None:
    assert select_catalog(VERSIONS, "310101", "person", D("2025-12-31")).ref == "shanghai@1"
    assert select_catalog(VERSIONS, "310101", "person", D("2026-01-01")).ref == "shanghai@2"
    # before shanghai takes effect, the national catalog serves Shanghai (no version of it takes part)
    assert select_catalog(VERSIONS, "310101", "person", D("2023-12-31")).ref == "national@1"
    # a later version not yet in effect leaves the current one in use
    future = [*VERSIONS, _cat("shanghai", 3, ["31"], "2027-01-01")]
    assert select_catalog(future, "310101", "person", T).ref == "shanghai@2"
    assert select_catalog(future, "310101", "person", D("2027-01-01")).ref == "shanghai@3"


def test_a_future_version_never_changes_an_earlier_answer() -> None:
    """Held-out finding 1: the regions of a version not yet in effect must not choose the catalog."""
    nat = _cat("nat", 1, [""], "2015-01-01")
    # sh@1 serves 3102 only; sh@2 (from 2030) would serve all of 31: 310104 is nat's in 2025
    sh1 = _cat("sh", 1, ["3102"], "2015-01-01")
    sh2 = _cat("sh", 2, ["31"], "2030-01-01")
    assert select_catalog([nat, sh1, sh2], "310104", "person", D("2025-01-01")).ref == "nat@1"
    assert select_catalog([nat, sh1, sh2], "310204", "person", D("2025-01-01")).ref == "sh@1"
    assert select_catalog([nat, sh1, sh2], "310104", "person", D("2030-01-01")).ref == "sh@2"
    # the mirror case: sh@1 serves all of 31, the future sh@2 only 3102: 310104 stays with sh@1
    sh1b = _cat("sh", 1, ["31"], "2015-01-01")
    sh2b = _cat("sh", 2, ["3102"], "2030-01-01")
    assert select_catalog([nat, sh1b, sh2b], "310104", "person", D("2025-01-01")).ref == "sh@1"
    assert select_catalog([nat, sh1b, sh2b], "310104", "person", D("2030-01-01")).ref == "nat@1"
    # loading the future version changes no earlier answer
    for day in ("2015-01-01", "2020-06-30", "2029-12-31"):
        assert select_catalog([nat, sh1], "310104", "person", D(day)) == select_catalog(
            [nat, sh1, sh2], "310104", "person", D(day)
        )


def test_a_catalog_serves_only_the_kinds_it_has_categories_for() -> None:
    """Held-out finding 3: an organization of region 31 is scored by the national catalog when the
    Shanghai catalog has person categories only."""
    nat = _cat("nat", 1, [""], "2015-01-01")
    persons_only = make_catalog(
        id="sh",
        version=1,
        regions=["31"],
        effective_from="2015-01-01",
        categories=[c for c in BASE_DOC["categories"] if c["subjects"] == ["person"]],
        lists=[li for li in BASE_DOC["lists"] if li.get("grades")],
        measures=[
            m for m in BASE_DOC["measures"] if m["code"] in ("NO_AIR_TRAVEL", "AIR_PRIORITY", "DEPOSIT_FREE")
        ],
    )
    assert persons_only.serves_kind("person") and not persons_only.serves_kind("organization")
    assert select_catalog([nat, persons_only], "310104", "person", T).ref == "sh@1"
    assert select_catalog([nat, persons_only], "310104", "organization", T).ref == "nat@1"
    with pytest.raises(ScoringError, match="serves organizations of region 310104"):
        select_catalog([persons_only], "310104", "organization", T)


def test_routes_are_the_choice_as_a_table() -> None:
    table = routes(VERSIONS, T)
    assert [(r.prefix, r.kind, r.catalog.ref) for r in table[:4]] == [
        ("310115", "organization", "pudong@1"),
        ("310115", "person", "pudong@1"),
        ("31", "organization", "shanghai@2"),
        ("31", "person", "shanghai@2"),
    ]
    assert ("44", "person", "aaa@1") in [(r.prefix, r.kind, r.catalog.ref) for r in table]
    assert table[-1].prefix == ""


def test_select_catalog_named_and_unserved() -> None:
    assert select_catalog(VERSIONS, "310101", "person", T, "national").ref == "national@1"
    assert select_catalog(VERSIONS, "310101", "person", D("2025-02-01"), "shanghai").ref == "shanghai@1"
    with pytest.raises(ScoringError, match="no active catalog with id 'nope'"):
        select_catalog(VERSIONS, "310101", "person", T, "nope")
    with pytest.raises(ScoringError, match="the earliest takes effect on 2024-01-01"):
        select_catalog(VERSIONS, "310101", "person", D("2023-01-01"), "shanghai")
    no_national = [c for c in VERSIONS if c.id != "national"]
    with pytest.raises(ScoringError) as e:
        select_catalog(no_national, "110101", "person", T)
    assert str(e.value) == "no catalog in effect on 2026-11-28 serves persons of region 110101"
    with pytest.raises(ScoringError, match=r"catalog shanghai@1 takes effect on 2024-01-01"):
        select_catalog(no_national, "310101", "person", D("2023-06-01"))
    with pytest.raises(ScoringError):
        select_catalog([], "110101", "person", T)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.integers(1, 3),
            st.lists(st.sampled_from(["", "3", "31", "3101", "310104", "44"]), min_size=1, max_size=3),
            st.integers(0, 20),
            st.sampled_from(["person", "organization", "both"]),
        ),
        max_size=6,
    ),
    st.sampled_from(["310104", "310204", "440101", "110101"]),
    st.sampled_from(["person", "organization"]),
    st.integers(0, 25),
)
def test_choice_matches_the_spec_stated_naively(
    specs: list[tuple[str, int, list[str], int, str]], region: str, kind: str, day: int
) -> None:
    """scoring.md's two steps, written as plainly as possible, against select_catalog and routes."""
    versions: dict[tuple[str, int], Catalog] = {}
    for cid, version, regions, eff, kinds in specs:
        cats = [c for c in BASE_DOC["categories"] if kinds == "both" or c["subjects"] == [kinds]]
        versions.setdefault(
            (cid, version),
            make_catalog(
                id=cid,
                version=version,
                regions=regions,
                effective_from=(D("2020-01-01") + timedelta(days=eff * 30)).isoformat(),
                categories=cats,
            ),
        )
    loaded = list(versions.values())
    as_of = D("2020-01-01") + timedelta(days=day * 30)
    # step 1: each id's highest version in effect
    rep = {}
    for c in loaded:
        if c.effective_from <= as_of and (c.id not in rep or c.version > rep[c.id].version):
            rep[c.id] = c
    # step 2: those serving the subject; longest prefix, then smallest id
    serving = []
    for c in rep.values():
        prefixes = [p for p in c.regions if region.startswith(p)]
        if prefixes and any(kind in cat.subjects for cat in c.categories.values()):
            serving.append((-max(len(p) for p in prefixes), c.id, c))
    want = min(serving, key=lambda x: (x[0], x[1]))[2].ref if serving else None
    try:
        got: str | None = select_catalog(loaded, region, kind, as_of).ref
    except ScoringError:
        got = None
    assert got == want
    chooser = Chooser(loaded)
    try:
        again: str | None = chooser.choose(region, kind, as_of).ref
    except ScoringError:
        again = None
    assert again == want


# ---------------------------------------------------------------- properties


def _reference(cat: Catalog, kind: str, records: list[ScoringRecord], t: date) -> dict[str, Any]:
    """A deliberately naive second reading of scoring.md, to compare against."""
    days = timedelta
    ok = [
        r
        for r in records
        if not r.retracted and r.category in cat.categories and kind in cat.categories[r.category].subjects
    ]
    counting = [
        r
        for r in ok
        if r.occurred_on <= t < r.occurred_on + days(cat.categories[r.category].valid_for)
        and (r.repaired_on is None or t < r.repaired_on)
    ]
    kept: list[ScoringRecord] = []
    for code, c in cat.categories.items():
        mine = [r for r in counting if r.category == code]
        mine.sort(key=lambda r: (r.occurred_on, r.record_id, r.source), reverse=True)
        kept += mine[: c.max_count] if c.max_count is not None else mine
    kept.sort(key=lambda r: (r.occurred_on, r.record_id, r.source))
    domains = {
        d: sum(cat.categories[r.category].points for r in kept if cat.categories[r.category].domain == d)
        for d in ZERO
    }
    s = max(cat.score_bounds[0], min(cat.score_bounds[1], cat.base_score + sum(domains.values())))
    grade = next(g.grade for g in cat.grades if g.min <= s)
    lists: list[dict[str, Any]] = []
    measures: set[str] = set()
    for code, ld in cat.lists.items():
        if ld.grades is not None:
            if grade in ld.grades:
                lists.append({"code": code, "kind": ld.kind, "since": None, "until": None, "records": []})
                measures |= set(ld.measures)
            continue
        assert ld.duration is not None
        holding = []
        for r in ok:
            end = r.occurred_on + days(ld.duration)
            if code in cat.categories[r.category].lists and r.occurred_on <= t < end:
                if r.repaired_on is not None and r.repaired_on <= t:
                    continue
                holding.append((r, min(end, r.repaired_on) if r.repaired_on else end))
        if holding:
            holding.sort(key=lambda h: (h[0].occurred_on, h[0].record_id, h[0].source))
            lists.append(
                {
                    "code": code,
                    "kind": ld.kind,
                    "since": min(h[0].occurred_on for h in holding).isoformat(),
                    "until": max(h[1] for h in holding).isoformat(),
                    "records": [h[0].record_id for h in holding],
                }
            )
            measures |= set(ld.measures)
    return {
        "score": s,
        "grade": grade,
        "domains": domains,
        "contributions": [
            {
                "record_id": r.record_id,
                "source": r.source,
                "category": r.category,
                "domain": cat.categories[r.category].domain,
                "points": cat.categories[r.category].points,
                "occurred_on": r.occurred_on.isoformat(),
                "expires_on": (r.occurred_on + days(cat.categories[r.category].valid_for)).isoformat(),
                "legal_basis": cat.categories[r.category].legal_basis,
            }
            for r in kept
        ],
        "lists": lists,
        "measures": sorted(measures),
    }


BUNDLED_CAT = parse_catalog(yaml.safe_load(BUNDLED.read_text(encoding="utf-8")))
CODES = [*BUNDLED_CAT.categories, "NOT_IN_CATALOG"]


@st.composite
def record_sets(draw: st.DrawFn) -> tuple[str, date, list[ScoringRecord]]:
    t = date(2026, 11, 28) + timedelta(days=draw(st.integers(-400, 400)))
    kind = draw(st.sampled_from(["person", "organization"]))
    # a few categories per subject, so max_count and multi-record lists come into play
    pool = draw(st.lists(st.sampled_from(CODES), min_size=1, max_size=4, unique=True))
    n = draw(st.integers(0, 25))
    ids = draw(st.lists(st.text("aB1-", min_size=1, max_size=3), min_size=n, max_size=n, unique=True))
    recs = []
    for rid in ids:
        back = draw(st.one_of(st.sampled_from([0, 1, 30, 89, 90]), st.integers(-60, 1200)))
        occ = t - timedelta(days=back)
        repaired = None
        if draw(st.booleans()):
            repaired = occ + timedelta(days=draw(st.integers(0, 1200)))
        recs.append(
            ScoringRecord(
                rid,
                draw(st.sampled_from(["court", "tax"])),
                draw(st.sampled_from(pool)),
                occ,
                draw(st.booleans()) and draw(st.booleans()),
                repaired,
            )
        )
    return kind, t, recs


@settings(max_examples=300, deadline=None)
@given(record_sets(), st.randoms(use_true_random=False))
def test_property_contributions_invariant_and_reference(
    data: tuple[str, date, list[ScoringRecord]], rnd: Any
) -> None:
    kind, t, recs = data
    res = score(BUNDLED_CAT, "S", kind, recs, t)
    assert_invariant(BUNDLED_CAT, res)
    assert res.grade == BUNDLED_CAT.grade_for(res.score)
    for c in res.contributions:
        assert c.occurred_on <= t < c.expires_on
    d = res.to_dict()
    expected = _reference(BUNDLED_CAT, kind, recs, t)
    assert {k: d[k] for k in expected} == expected
    # the order of the input never matters
    shuffled = list(recs)
    rnd.shuffle(shuffled)
    assert score(BUNDLED_CAT, "S", kind, shuffled, t) == res
    # check agrees with the lists it is derived from
    for activity in ("air_travel", "government_procurement", "rental_deposit"):
        chk = check(BUNDLED_CAT, "S", kind, recs, activity, t)
        restricting = [
            m
            for m in res.lists
            if any(
                BUNDLED_CAT.measures[x].activity == activity and BUNDLED_CAT.measures[x].effect == "restrict"
                for x in BUNDLED_CAT.lists[m.code].measures
            )
        ]
        assert chk.decision == ("restricted" if restricting else "allowed")
        if restricting and all(m.until is not None for m in restricting):
            assert chk.until == max(m.until for m in restricting if m.until is not None)
        else:
            assert chk.until is None
