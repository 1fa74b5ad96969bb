"""The domain of public information (service/public.py) on a demo population."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from socred.domain import scoring
from socred.domain.catalog import Category
from socred.domain.ids import mask_person_name, mask_subject_id
from socred.domain.scoring import ScoringError
from socred.service.platform import Platform
from socred.service.public import (
    PER_PAGE,
    InvalidInput,
    PublicInfo,
    Rules,
    SubjectRefs,
    _records_of,
    is_shown,
    publicity_days,
    shown_until,
)
from socred.store import schema as t
from socred.store.codes import codes_of
from tests.portal.conftest import today


def cat(**kw: Any) -> Category:
    base: dict[str, Any] = {
        "code": "X",
        "title": "x",
        "domain": "social",
        "subjects": frozenset({"person"}),
        "points": -5,
        "valid_for": 365,
        "legal_basis": "law",
        "public": True,
        "severity": "general",
    }
    return Category(**{**base, **kw})


def subjects(p: Platform) -> list[Any]:
    with p.engine.connect() as conn:
        return list(conn.execute(select(t.subjects)).all())


def ingest(p: Platform, source: str, ops: list[dict[str, Any]]) -> None:
    s = p.ingest(source, [(i + 1, op) for i, op in enumerate(ops)])
    assert s.rejected == 0, s.errors


# ------------------------------------------------------------------ the rule itself


def test_publicity_window_by_severity() -> None:
    assert publicity_days(cat(severity="minor", valid_for=90)) == 0
    assert publicity_days(cat(public=False)) == 0
    assert publicity_days(cat(severity="general", valid_for=730)) == 365
    assert publicity_days(cat(severity="serious", valid_for=2000)) == 1095
    assert publicity_days(cat(severity="serious", valid_for=730, points=50)) == 730
    c = cat(valid_for=10)
    d = date(2026, 1, 1)
    assert shown_until(c, d) == date(2026, 1, 10)
    assert is_shown(c, d, False, None, date(2026, 1, 10))
    assert not is_shown(c, d, False, None, date(2026, 1, 11))
    assert not is_shown(c, d, False, None, date(2025, 12, 31))  # not yet
    assert not is_shown(c, d, True, None, date(2026, 1, 5))  # retracted
    assert not is_shown(c, d, False, date(2026, 1, 5), date(2026, 1, 5))  # repaired that day
    assert is_shown(c, d, False, date(2026, 1, 6), date(2026, 1, 5))  # repair in the future of T
    assert not is_shown(None, d, False, None, date(2026, 1, 5))


def test_rules_choose_the_catalog_scoring_chooses(shared_platform: Platform) -> None:
    catalogs = shared_platform.catalogs()
    rng = random.Random(5)
    regions = {s.region for s in subjects(shared_platform)}
    regions |= {"".join(rng.choice("0123456789") for _ in range(6)) for _ in range(200)}
    regions |= {"310000", "371082", "371083", "370000", "31", "000000"}
    for day in (date(2023, 12, 31), date(2024, 1, 1), today()):
        rules = Rules(catalogs, day)
        for region in regions:
            for kind in ("person", "organization"):
                try:
                    expected = scoring.select_catalog(catalogs, region, kind, day)
                except ScoringError:
                    expected = None
                got = rules.catalog_for(region, kind)
                assert (got.ref if got else None) == (expected.ref if expected else None), (region, kind, day)


@pytest.mark.parametrize("offset", [0, -200, -400, -800])
def test_sql_condition_equals_the_python_rule(shared_platform: Platform, offset: int) -> None:
    """Row by row, the SQL form of the rule (announcements, board) agrees with is_shown (profiles)."""
    day = today() + timedelta(days=offset)
    rules = Rules(shared_platform.catalogs(), day)
    with shared_platform.engine.connect() as conn:
        ids = [s.subject_id for s in subjects(shared_platform)]
        records = [r for rs in _records_of(conn, ids).values() for r in rs]
        codes = codes_of(conn)
        numbers = codes.ids(conn, "category", {c for cat in rules.catalogs for c in cat.categories})
        for warnings_only in (False, True):
            sql = {
                (codes.value(conn, r.source), r.record_id)
                for r in conn.execute(
                    select(t.records.c.source, t.records.c.record_id).where(
                        rules.condition(numbers, warnings_only=warnings_only)
                    )
                )
            }
            py = {
                (r.source, r.record_id)
                for r in records
                if (c := rules.shown(r)) is not None and (c.points < 0 or not warnings_only)
            }
            assert sql == py
            assert py or offset < -700  # the demo has something to publish


# ------------------------------------------------------------------ references


def test_references_round_trip_and_refuse_forgeries(info: PublicInfo) -> None:
    person = next(s for s in subjects(info.platform) if s.kind == "person")
    ref = info.refs.ref(person.subject_id, "person")
    assert ref.startswith("p") and len(ref) == 27 and person.subject_id not in ref
    assert info.refs.resolve(ref) == person.subject_id
    assert info.refs.ref("91330100799655058B", "organization") == "91330100799655058B"
    other = SubjectRefs(b"\x01" * 32)
    assert other.resolve(ref) is None
    assert info.refs.resolve("p" + "a" * 26) is None
    assert info.refs.resolve("not-a-ref") is None
    # the key is kept in the keystore: another service over the same database gives the same reference
    assert PublicInfo(info.platform).refs.ref(person.subject_id, "person") == ref


# ------------------------------------------------------------------ profiles


def _persons_by_public(info: PublicInfo) -> tuple[list[Any], list[Any]]:
    public, private = [], []
    for s in subjects(info.platform):
        if s.kind == "person":
            (public if info.profile(s.subject_id) is not None else private).append(s)
    return public, private


def test_person_profile_shows_only_public_information(info: PublicInfo) -> None:
    public, private = _persons_by_public(info)
    assert public and private
    rules = info.rules()
    for s in public[:40]:
        prof = info.profile(s.subject_id)
        assert prof is not None
        assert prof["name"] == mask_person_name(s.name) and prof["subject_id"] == mask_subject_id(
            s.subject_id
        )
        assert "grade" not in prof and "score" not in prof and "history" not in prof
        assert all(entry["kind"] == "black" for entry in prof["lists"])
        assert prof["region"].endswith("00") and prof["region"][:4] == s.region[:4]
        catalog = rules.catalog_for(s.region, s.kind)
        assert catalog is not None
        for r in prof["good"] + prof["warnings"]:
            c = catalog.categories[r["category"]]
            assert c.public and c.severity != "minor"
            assert r["summary"] is None
        # the same profile by its opaque reference
        assert info.profile(prof["id"]) == prof
    for s in private[:20]:
        assert info.profile(s.subject_id) is None
        assert info.search(s.subject_id)["total"] == 0


def test_organization_profile(info: PublicInfo) -> None:
    org = next(s for s in subjects(info.platform) if s.kind == "organization")
    prof = info.profile(org.subject_id)
    assert prof is not None
    assert prof["name"] == org.name and prof["subject_id"] == org.subject_id == prof["id"]
    assert prof["registration"]["uscc"] == org.subject_id
    full = info.platform.score(org.subject_id)
    assert (prof["grade"], prof["score"]) == (full.grade, full.score)
    assert prof["history"][-1] == {"date": today().isoformat(), "score": full.score, "grade": full.grade}
    assert len(prof["history"]) == 13
    dates = [h["date"] for h in prof["history"]]
    assert dates == sorted(dates)


def test_retracted_and_repaired_records_disappear(info: PublicInfo) -> None:
    p = info.platform
    shown = info.announcements(category="DISHONEST_JUDGMENT_DEBTOR")["items"]
    target = next(a for a in shown if a["subject"]["kind"] == "person")
    sid = info.resolve(target["subject"]["id"])
    assert sid is not None
    with p.engine.connect() as conn:
        recs = [
            r for r in _records_of(conn, [sid.value])[sid.value] if r.category == "DISHONEST_JUDGMENT_DEBTOR"
        ]
    assert recs
    before = info.announcements()["total"]
    for r in recs:
        ingest(p, r.source, [{"op": "retract", "record_id": r.record_id, "reason": "entered in error"}])
    after = info.announcements()
    assert after["total"] == before - sum(
        1 for r in recs if info.rules().category(r.subject_region, r.category, r.kind)
    )
    assert all(
        a["subject"]["id"] != target["subject"]["id"] or a["category"] != "DISHONEST_JUDGMENT_DEBTOR"
        for page in range(1, after["pages"] + 1)
        for a in info.announcements(page=page)["items"]
    )
    prof = info.profile(sid.value)
    assert prof is None or all(r["category"] != "DISHONEST_JUDGMENT_DEBTOR" for r in prof["warnings"])

    # a repair: the record is shown no more from the repair date on
    honk = info.announcements(category="TAX_ARREARS")["items"][0]
    hid = info.resolve(honk["subject"]["id"])
    assert hid is not None
    with p.engine.connect() as conn:
        rec = next(r for r in _records_of(conn, [hid.value])[hid.value] if r.category == "TAX_ARREARS")
    ingest(
        p,
        rec.source,
        [{"op": "repair", "record_id": rec.record_id, "repaired_on": today().isoformat(), "reason": "paid"}],
    )
    assert all(
        a["date"] != rec.occurred_on.isoformat() or a["subject"]["id"] != honk["subject"]["id"]
        for a in info.announcements(
            category="TAX_ARREARS", date_from=rec.occurred_on, date_to=rec.occurred_on
        )["items"]
    )


# ------------------------------------------------------------------ search


def test_search_by_identifier_and_masking(info: PublicInfo) -> None:
    public, _ = _persons_by_public(info)
    s = public[0]
    res = info.search(s.subject_id)
    assert res["query_kind"] == "id" and res["total"] == 1
    hit = res["results"][0]
    assert hit["subject_id"] == mask_subject_id(s.subject_id) and hit["name"] == mask_person_name(s.name)
    assert res["query"] == mask_subject_id(s.subject_id)
    spaced = f"{s.subject_id[:6]} {s.subject_id[6:14]}-{s.subject_id[14:].lower()}"
    assert info.search(spaced)["results"] == res["results"]
    assert s.subject_id not in repr(res) and s.name not in repr(res)
    org = next(x for x in subjects(info.platform) if x.kind == "organization")
    res = info.search(org.subject_id.lower())
    assert res["results"][0]["name"] == org.name and res["query"] == org.subject_id


def test_search_by_name_tiers(info: PublicInfo) -> None:
    orgs = [s for s in subjects(info.platform) if s.kind == "organization"]
    org = orgs[0]
    exact = info.search(org.name)["results"]
    assert exact[0]["id"] == org.subject_id and exact[0]["match"] == "exact"
    assert info.search(org.name[:2])["total"] >= 1  # a 2-character prefix (below the trigram length)
    middle = org.name[2:6]
    found = info.search(middle)["results"]
    assert any(r["id"] == org.subject_id and r["match"] == "substring" for r in found)
    typo = org.name[:4] + "错" + org.name[5:]
    assert any(r["id"] == org.subject_id for r in info.search(typo)["results"])
    wide = info.search("有限公司")
    assert wide["total"] == len(orgs) or wide["truncated"]
    assert wide["results"] == sorted(
        wide["results"], key=lambda r: ["exact", "prefix", "substring", "similar"].index(r["match"])
    )


def test_search_persons_by_name_only_when_public(info: PublicInfo) -> None:
    public, private = _persons_by_public(info)
    public_ids = {info.refs.ref(s.subject_id, "person") for s in public}
    for s in (public + private)[:60]:
        res = info.search(s.name)
        for r in res["results"]:
            if r["kind"] == "person":
                assert r["id"] in public_ids
                assert "*" in r["name"]
        assert s.name not in repr(res)
        assert res["query"] == mask_person_name(s.name)


def test_search_pages(info: PublicInfo) -> None:
    res = info.search("公司", page=1)
    assert res["total"] > PER_PAGE and len(res["results"]) == PER_PAGE
    second = info.search("公司", page=2)["results"]
    assert {r["id"] for r in second}.isdisjoint(r["id"] for r in res["results"])


@pytest.mark.parametrize(
    ("query", "field"),
    [("", "q"), ("   ", "q"), ("x" * 101, "q"), ("11010519491231002Y", "q"), ("110105194912310021", "q")],
)
def test_search_invalid_input(info: PublicInfo, query: str, field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        info.search(query)
    assert e.value.field == field
    assert "1101051949123100" not in e.value.reason


def test_echo_never_repeats_a_number_or_a_name(info: PublicInfo) -> None:
    person = next(s for s in subjects(info.platform) if s.kind == "person")
    assert info.echo(person.subject_id) == mask_subject_id(person.subject_id)
    assert info.echo(person.name) == mask_person_name(person.name)
    assert info.echo(f"{person.name} 上海市黄浦区人民") == f"{mask_person_name(person.name)} 上海市黄浦区人民"
    assert info.echo("王小明") == "王**"  # could be a name: masked even if nobody has it
    assert info.echo("110105-19491231-002X") == "1101**********002X"
    assert info.echo("tel 13812345678 90") == "tel 1381*****78 90"
    assert info.echo("上海华信东方科技有限公司") == "上海华信东方科技有限公司"


# ------------------------------------------------------------------ announcements, board, statistics


def test_announcements_newest_first_and_paged(shared_info: PublicInfo) -> None:
    first = shared_info.announcements()
    assert first["total"] > PER_PAGE and len(first["items"]) == PER_PAGE
    seen: list[dict[str, Any]] = []
    for page in range(1, first["pages"] + 1):
        seen += shared_info.announcements(page=page)["items"]
    assert len(seen) == first["total"]
    keys = [(a["date"], a["seq"]) for a in seen]
    assert keys == sorted(keys, reverse=True)
    assert all(a["measure"]["points"] < 0 for a in seen)
    assert shared_info.announcements(page=first["pages"] + 1)["items"] == []
    for a in seen:
        if a["subject"]["kind"] == "person":
            assert "*" in a["subject"]["name"] and "*" in a["subject"]["subject_id"]
        if a["plate"] is not None:
            assert "***" in a["plate"]


def test_announcement_filters(shared_info: PublicInfo) -> None:
    all_items = shared_info.announcements()["total"]
    sh = shared_info.announcements(region="31")
    assert 0 < sh["total"] < all_items
    assert all(a["region"].startswith("31") for a in sh["items"])
    honk = shared_info.announcements(category="traffic_honking")
    assert honk["total"] > 0 and all(a["category"] == "TRAFFIC_HONKING" for a in honk["items"])
    assert all(a["plate"] for a in honk["items"])
    start, end = today() - timedelta(days=60), today() - timedelta(days=30)
    window = shared_info.announcements(date_from=start, date_to=end)
    assert window["total"] > 0
    assert all(start.isoformat() <= a["date"] <= end.isoformat() for a in window["items"])
    for kwargs, field in [
        ({"region": "3"}, "region"),
        ({"region": "31a"}, "region"),
        ({"category": "NO_SUCH_THING"}, "category"),
        ({"category": "drop table"}, "category"),
        ({"date_from": end, "date_to": start}, "from"),
        ({"page": 0}, "page"),
    ]:
        with pytest.raises(InvalidInput) as e:
            shared_info.announcements(**kwargs)
        assert e.value.field == field


def test_scoreboard_after(info: PublicInfo) -> None:
    board = info.scoreboard(limit=5)
    assert len(board["items"]) == 5
    seqs = [i["seq"] for i in board["items"]]
    assert seqs == sorted(seqs, reverse=True)
    assert info.scoreboard(after=board["seq"])["items"] == []
    person = next(s for s in subjects(info.platform) if s.kind == "person" and s.region.startswith("31"))
    ingest(
        info.platform,
        "demo.civil",
        [
            {
                "record_id": "HONK-NEW-1",
                "subject_id": person.subject_id,
                "subject_name": person.name,
                "category": "TRAFFIC_HONKING",
                "occurred_on": today().isoformat(),
                "attributes": {"plate": "沪B12345"},
            }
        ],
    )
    new = info.scoreboard(after=board["seq"])
    assert [i["plate"] for i in new["items"]] == ["沪B***45"]
    assert new["items"][0]["subject"]["name"] == mask_person_name(person.name)
    assert new["seq"] == board["seq"] + 1


def test_statistics(shared_info: PublicInfo, shared_platform: Platform) -> None:
    st = shared_info.statistics()
    people = sum(1 for s in subjects(shared_platform) if s.kind == "person")
    assert st["subjects"] == {"person": people, "organization": len(subjects(shared_platform)) - people}
    assert sum(st["subjects_by_grade"]["person"].values()) == people
    assert st["records"] == 1200 and len(st["months"]) == 12
    assert st["records_shown"] >= shared_info.announcements()["total"]
    assert all(len(p["counts"]) == 12 for p in st["records_by_provider"])
    assert st["checks"] == []
    dj = next(x for x in st["lists"] if x["code"] == "DISHONEST_JUDGMENT_DEBTOR")
    assert dj["kind"] == "black" and dj["person"] + dj["organization"] > 0
    assert shared_info.statistics() is st  # cached while the ledger does not move


def test_statistics_on_the_batch_engine_agree(
    shared_platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socred.service.public as public

    small = PublicInfo(shared_platform).statistics()
    monkeypatch.setattr(public, "BATCH_STATISTICS", 0)
    large = PublicInfo(shared_platform).statistics()
    assert large == small


def test_statistics_served_stale_while_the_ledger_moves(info: PublicInfo) -> None:
    info.stats_ttl = 3600
    first = info.statistics()
    person = next(s for s in subjects(info.platform) if s.kind == "person")
    ingest(
        info.platform,
        "demo.civil",
        [
            {
                "record_id": "STALE-1",
                "subject_id": person.subject_id,
                "subject_name": person.name,
                "category": "TRAFFIC_HONKING",
                "occurred_on": today().isoformat(),
            }
        ],
    )
    assert info.statistics() is first  # within the refresh interval: the figures of their ledger size
    info.stats_ttl = 0
    fresh = info.statistics()
    assert fresh["ledger_size"] == first["ledger_size"] + 1 and fresh["records"] == first["records"] + 1
