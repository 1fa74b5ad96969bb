"""The per-subject answer: the quick check equals the full one wherever it applies.

:func:`socred.domain.answers.quick_check` answers a check from the list holds alone when no
grade-triggered list carries a measure of the activity (the check service uses it for most
subjects). On random catalogs and records it must equal :func:`check_answer` for every activity.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socred.domain.answers import check_answer, plan, quick_check, relevant_categories
from socred.domain.catalog import parse_catalog
from tests.engines.strategies import _ACTIVITIES, AS_OF, _records, catalog_docs


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=catalog_docs(), data=st.data())
def test_quick_check_equals_the_full_answer(doc: dict[str, Any], data: st.DataObject) -> None:
    catalog = parse_catalog(doc)
    codes = [c["code"] for c in doc["categories"]] + ["UNDEFINED"]
    at = AS_OF + timedelta(days=data.draw(st.integers(0, 2)))
    kind = data.draw(st.sampled_from(["person", "organization"]))
    records = data.draw(_records(codes, at))
    for activity in (*_ACTIVITIES, "unknown_activity"):
        p = plan(catalog, activity)
        if p is None:
            assert relevant_categories(catalog, activity) is None
            continue
        full = check_answer(catalog, "S", kind, records, (), None, activity, at)
        del full["subject_id"]
        assert quick_check(p, kind, records, at) == full
        # and only the relevant categories' records matter
        relevant = relevant_categories(catalog, activity)
        assert relevant is not None
        only = [r for r in records if r.category in relevant]
        assert quick_check(p, kind, only, at) == full
