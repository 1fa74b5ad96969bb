"""The check service answers exactly what the per-subject definition answers, for every activity.

The service reads only the records that can change an answer, shares answers between subjects and
takes a quick path from the list holds (service/checks.py): for a demo population, several
activities (restrictions carried by record-triggered lists, benefits carried by a grade-triggered
list), manual list actions and several dates, a batch check equals ``Platform.check`` — the one
definition — subject by subject, and so does a group of single checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from socred.domain import clock
from socred.domain.ids import parse_subject_id
from socred.service.checks import CheckJob, CheckService
from socred.service.list_actions import ListActions
from socred.service.platform import Platform
from socred.store import repo
from socred.store import schema as t
from tests.portal.conftest import make_demo

ACTIVITIES = (
    "air_travel",
    "rail_first_class",
    "rental_deposit",
    "government_procurement",
    "tax_service",
    "none_such",
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    path = tmp_path_factory.mktemp("checks") / "demo.db"
    make_demo(path, subjects=400, records=2400, seed=5)
    p = Platform(f"sqlite:///{path}")
    with p.engine.connect() as conn:
        ids = [r[0] for r in conn.execute(t.subjects.select().with_only_columns(t.subjects.c.subject_id))]
    # manual list actions on a few subjects: one added to a list, one removed from one
    la = ListActions(p)
    today = clock.today()
    for sid, action, code in (
        (ids[0], "add", "DISHONEST_JUDGMENT_DEBTOR"),
        (ids[1], "remove", "DISHONEST_JUDGMENT_DEBTOR"),
    ):
        try:
            proposal = la.propose("admin:alice", sid, code, action, "test", today=today)
        except Exception:  # the subject's catalog may not define the list
            continue
        la.decide(proposal["id"], "admin:bob", "approved", "checked", today=today)
    try:
        yield p
    finally:
        p.engine.dispose()


def test_batch_and_single_checks_equal_the_definition(world: Platform) -> None:
    p = world
    service = CheckService(p, index_every=None)
    with p.engine.connect() as conn:
        ids = sorted(
            repo.subject_rows(
                conn,
                [r[0] for r in conn.execute(t.subjects.select().with_only_columns(t.subjects.c.subject_id))],
            )
        )
    sids = [parse_subject_id(s) for s in ids]
    today = clock.today()
    with p.engine.connect() as conn:
        from socred.service.list_actions import approved

        assert approved(conn)  # the manual actions above are part of what is checked
    decisions: set[str] = set()
    for activity in ACTIVITIES:
        for at in (today, today - timedelta(days=200), date(2025, 1, 1)):
            (batch,) = service.run([CheckJob("air.cn", activity, sids, at, batch=True)])
            assert batch.status == 200
            singles = service.run([CheckJob("air.cn", activity, [s], at) for s in sids[:60]])
            want = {s.value: p.check(s.value, activity, at).to_dict() for s in sids}
            for got in batch.results:
                assert got == want[got["subject_id"]], (activity, at)
                decisions.add(got["decision"])
            for out in singles:
                (got,) = out.results
                assert got == want[got["subject_id"]], (activity, at)
    assert decisions == {"allowed", "restricted"}
