"""Ingestion and the ledger through the service layer, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from socred.service.platform import Platform, UsageError
from tests.helpers import ORG, PERSON, PERSON2, TEST_CATALOG, rows, submit, tamper_ledger

TODAY = date(2026, 11, 28)


@pytest.fixture
def platform(db_url: str) -> Iterator[Platform]:
    p = Platform(db_url)
    p.init()
    p.load_catalog_file(TEST_CATALOG)
    p.add_provider("court", "People's Court", ["TRAFFIC_HONKING", "DISHONEST_JUDGMENT_DEBTOR"])
    yield p
    p.engine.dispose()


def ingest(p: Platform, ops: list[dict[str, object]], source: str = "court") -> dict[str, object]:
    return p.ingest(source, rows(ops), today=TODAY).to_dict()


def test_submit_duplicate_and_conflict(platform: Platform) -> None:
    s = ingest(platform, [submit("r1"), submit("r1"), submit("r1", occurred_on="2026-03-02")])
    assert s["accepted"] == 1
    assert s["duplicates"] == 1
    assert s["rejected"] == 1
    assert s["errors"] == [
        {
            "line": 3,
            "field": "record_id",
            "message": "conflict: record 'r1' was already submitted with different content; "
            "use op 'correct' to change it",
        }
    ]
    # a later file re-sending the original is still a duplicate, even after a correction
    s2 = ingest(platform, [{"op": "correct", "record_id": "r1", "occurred_on": "2026-02-01"}, submit("r1")])
    assert (s2["accepted"], s2["duplicates"], s2["rejected"]) == (1, 1, 0)
    rec = platform.scoring_records(PERSON)
    assert [(r.record_id, r.occurred_on) for r in rec] == [("r1", date(2026, 2, 1))]


def test_rejection_reasons_name_line_field_and_reason(platform: Platform) -> None:
    bad_check = PERSON[:-1] + "7"
    s = ingest(
        platform,
        [
            submit("a", subject_id=bad_check),
            submit("b", category="NOPE"),
            submit("c", category="TAX_A_GRADE", subject_id=ORG),
            submit("d", category="DISHONEST_JUDGMENT_DEBTOR", occurred_on="2026-02-30"),
            submit("e", occurred_on="2027-01-01"),
            {"op": "retract", "record_id": "zzz", "reason": "x"},
            {"op": "repair", "record_id": "a", "repaired_on": "2026-01-01", "reason": "paid"},
            submit("f", subject_id=ORG),  # honking is for persons only
            submit("g", summary="x" * 2001),
            {"op": "bogus", "record_id": "h"},
        ],
    )
    errs = {e["line"]: (e["field"], e["message"]) for e in s["errors"]}  # type: ignore[union-attr]
    assert s["accepted"] == 0 and s["rejected"] == 10
    assert errs[1] == ("subject_id", "check character should be 'X', got '7'")
    assert errs[2] == ("category", "unknown category 'NOPE': it is defined in no loaded catalog")
    assert errs[3] == ("category", "category 'TAX_A_GRADE' is not authorized for provider 'court'")
    assert errs[4] == ("occurred_on", "occurred_on '2026-02-30' is not a real calendar date")
    assert errs[5] == ("occurred_on", "occurred_on 2027-01-01 is in the future (today is 2026-11-28)")
    assert errs[6][0] == "record_id" and "unknown record 'zzz'" in errs[6][1]
    assert errs[7][0] == "record_id"
    assert errs[8] == (
        "category",
        "category 'TRAFFIC_HONKING' does not apply to organizations: "
        "no loaded catalog defines it for that kind",
    )
    assert errs[9][0] == "summary" and "at most 2000" in errs[9][1]
    assert errs[10][0] == "op"
    assert platform.head()[0] == 1  # only the catalog load is on the ledger


def test_correct_retract_repair_and_their_duplicates(platform: Platform) -> None:
    s = ingest(
        platform,
        [
            submit("r1", category="DISHONEST_JUDGMENT_DEBTOR", occurred_on="2025-01-10"),
            {"op": "correct", "record_id": "r1", "summary": "case 2025-77"},
            {"op": "correct", "record_id": "r1", "summary": "case 2025-77"},
            {"op": "repair", "record_id": "r1", "repaired_on": "2025-01-09", "reason": "paid"},
            {"op": "repair", "record_id": "r1", "repaired_on": "2026-06-01", "reason": "paid"},
            {"op": "repair", "record_id": "r1", "repaired_on": "2026-06-01", "reason": "paid again"},
            submit("r2", occurred_on="2026-05-01"),
            {"op": "retract", "record_id": "r2", "reason": "wrong plate"},
            {"op": "retract", "record_id": "r2", "reason": "wrong plate"},
            {"op": "correct", "record_id": "r2", "summary": "too late"},
            {"op": "correct", "record_id": "r1", "subject_id": PERSON2},
        ],
    )
    assert (s["accepted"], s["duplicates"], s["rejected"]) == (5, 3, 3)
    errs = {e["line"]: e for e in s["errors"]}  # type: ignore[union-attr]
    assert errs[4]["field"] == "repaired_on"
    assert "before the record's occurred_on 2025-01-10" in errs[4]["message"]
    assert errs[10]["field"] == "record_id" and "retracted" in errs[10]["message"]
    assert errs[11]["field"] == "subject_id" and "cannot change" in errs[11]["message"]
    recs = {r.record_id: r for r in platform.scoring_records(PERSON)}
    assert recs["r1"].repaired_on == date(2026, 6, 1)
    assert recs["r2"].retracted is True


def test_ledger_chain_verify_and_rebuild(platform: Platform) -> None:
    ingest(platform, [submit(f"r{i}", occurred_on="2026-03-0" + str(1 + i % 9)) for i in range(30)])
    ingest(platform, [{"op": "retract", "record_id": "r3", "reason": "error"}])
    v = platform.verify_ledger()
    assert v.ok and v.entries == 32  # catalog load + 30 submits + 1 retract
    before = sorted((r.record_id, r.occurred_on, r.retracted) for r in platform.scoring_records(PERSON))
    assert platform.rebuild_projections() == 32
    after = sorted((r.record_id, r.occurred_on, r.retracted) for r in platform.scoring_records(PERSON))
    assert before == after


def _moved(text: str) -> str:
    cut = text.rfind(',"seq":')
    return text[:cut] + ',"seq":100}'


@pytest.mark.parametrize(
    ("change", "bad", "word"),
    [
        ({"seq": 5, "edit": lambda s: s.replace("2026-03-04", "2026-03-06")}, 5, "edited"),
        ({"seq": 4, "delete": True}, 4, "missing"),
        ({"seq": 3, "edit": _moved}, 3, "missing"),
        ({"seq": 10, "delete": True}, 10, "truncated"),
    ],
)
def test_tampering_behind_the_applications_back_is_detected(
    platform: Platform, change: dict[str, Any], bad: int, word: str
) -> None:
    ingest(platform, [submit(f"r{i}", occurred_on=f"2026-03-{1 + i:02d}") for i in range(9)])
    assert platform.verify_ledger().ok
    tamper_ledger(str(platform.engine.url.render_as_string(hide_password=False)), **change)
    v = platform.verify_ledger()
    assert not v.ok
    assert v.first_bad_seq == bad
    assert v.reason is not None and word in v.reason


def test_ledger_refuses_update_and_delete(platform: Platform) -> None:
    ingest(platform, [submit("r1")])
    for sql in (
        "UPDATE ledger_blocks SET raw_size = raw_size WHERE first_seq = 1",
        "DELETE FROM ledger_blocks",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), platform.engine.begin() as c:
            c.execute(sa.text(sql))
    assert platform.verify_ledger().ok


def test_unknown_provider_is_a_usage_error(platform: Platform) -> None:
    with pytest.raises(UsageError, match="unknown provider 'nobody'"):
        ingest(platform, [submit("r1")], source="nobody")


def test_catalog_versions_are_immutable(platform: Platform) -> None:
    import yaml

    from socred.domain.catalog import CatalogError

    doc = yaml.safe_load(TEST_CATALOG.read_text())
    assert platform.load_catalog(doc) == "testcat@1"  # identical: fine, nothing new on the ledger
    assert platform.head()[0] == 1
    doc["base_score"] = 900
    with pytest.raises(CatalogError, match="already loaded with different content"):
        platform.load_catalog(doc)
    doc["version"] = 2
    assert platform.load_catalog(doc) == "testcat@2"
    assert platform.head()[0] == 2
