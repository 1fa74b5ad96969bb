"""Malformed input gets 422 naming the field and the reason; no input yields a 5xx; no full resident number
is ever echoed in an error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Env
from tests.helpers import PERSON, PERSON2

BAD_PERSON = PERSON[:-1] + "7"  # fails its check character
ENDPOINTS = [("/api/v1/check", "party"), ("/api/v1/check/batch", "party"), ("/api/v1/records", "provider")]

JUNK: list[Any] = [
    b"",
    b"{",
    b"null",
    b"[]",
    b"[1,2,3]",
    b'"text"',
    b"42",
    b"true",
    b"{}",
    b'{"a":',
    b"\xff\xfe\x00",
    b'{"subject_id": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"operations": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"subject_id": 1e999999, "activity": "air_travel"}',
    b'{"subject_id": "\\ud800", "activity": "air_travel"}',
    b'{"subject_id": "' + b"9" * 1_000_000 + b'", "activity": "air_travel"}',
]

WRONG_TYPES: list[dict[str, Any]] = [
    {"subject_id": 11010519491231002, "activity": "air_travel"},
    {"subject_id": None, "activity": "air_travel"},
    {"subject_id": PERSON, "activity": ["air_travel"]},
    {"subject_id": PERSON, "activity": "AIR TRAVEL"},
    {"subject_id": PERSON, "activity": "air_travel", "at": 20260101},
    {"subject_id": PERSON, "activity": "air_travel", "at": "2026-02-30"},
    {"subject_id": PERSON, "activity": "air_travel", "at": "0001-01-01"},
    {"subject_id": PERSON, "activity": "air_travel", "at": "9999-12-31"},
    {"subject_id": PERSON, "activity": "air_travel", "at": "yesterday"},
    {"subject_id": PERSON, "activity": "air_travel", "extra": 1},
    {"subject_ids": PERSON, "activity": "air_travel"},
    {"subject_ids": [PERSON, 5], "activity": "air_travel"},
    {"operations": {"record_id": "x"}},
    {"operations": "x"},
    {"operations": None},
]


@pytest.mark.parametrize("body", JUNK, ids=range(len(JUNK)))
def test_junk_bodies_are_4xx(senv: Env, body: bytes) -> None:
    for path, role in ENDPOINTS:
        for ctype in ("application/json", "text/plain", None):
            headers = senv.h(role)
            if ctype:
                headers["Content-Type"] = ctype
            r = senv.client.post(path, content=body, headers=headers)
            assert 400 <= r.status_code < 500, (path, ctype, r.status_code, r.text[:200])
            assert PERSON not in r.text


@pytest.mark.parametrize("body", WRONG_TYPES, ids=range(len(WRONG_TYPES)))
def test_wrong_types_are_422_with_field(senv: Env, body: dict[str, Any]) -> None:
    for path, role in ENDPOINTS:
        r = senv.post(path, role, body)
        assert r.status_code in (403, 422), (path, body, r.text)
        if r.status_code == 422:
            err = r.json()
            assert err["error"] == "invalid_request"
            assert all(d["field"] and d["reason"] for d in err["detail"]), err
            assert all(set(d) == {"field", "reason", "loc", "type"} for d in err["detail"]), err


def test_invalid_identifier_names_the_reason_and_masks_it(senv: Env) -> None:
    r = senv.post("/api/v1/check", "party", {"subject_id": BAD_PERSON, "activity": "air_travel"})
    assert r.status_code == 422
    (d,) = r.json()["detail"]
    assert d["field"] == "subject_id"
    assert "check character" in d["reason"]
    assert BAD_PERSON not in r.text and PERSON not in r.text
    r = senv.post(
        "/api/v1/check/batch",
        "party",
        {"activity": "air_travel", "subject_ids": [PERSON, BAD_PERSON, "nonsense", PERSON2]},
    )
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["detail"]] == ["subject_ids[1]", "subject_ids[2]"]
    assert BAD_PERSON not in r.text
    # a path parameter too, and an unknown field named like a resident number
    r = senv.get(f"/api/v1/subjects/{BAD_PERSON}/report", "admin", params={"reason": "review"})
    assert r.status_code == 422 and BAD_PERSON not in r.text
    r = senv.post("/api/v1/check", "party", {"subject_id": PERSON, "activity": "air_travel", PERSON2: 1})
    assert r.status_code == 422 and PERSON2 not in r.text and PERSON not in r.text


def test_huge_lists_are_422(senv: Env) -> None:
    ops = [{"record_id": f"r{i}"} for i in range(10_001)]
    r = senv.post("/api/v1/records", "provider", {"operations": ops})
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "operations"
    assert "10000" in r.json()["detail"][0]["reason"]


def test_oversized_body_is_413(senv: Env) -> None:
    big = b'{"operations": [' + b",".join([b'{"summary": "' + b"x" * 1000 + b'"}'] * 70_000) + b"]}"
    r = senv.client.post(
        "/api/v1/records", content=big, headers={**senv.h("provider"), "Content-Type": "application/json"}
    )
    assert r.status_code == 413


def test_staff_reads_need_a_reason(senv: Env) -> None:
    for path in (
        f"/api/v1/subjects/{PERSON}/report",
        f"/api/v1/subjects/{PERSON}/access-log",
        "/api/v1/ledger/entries",
    ):
        r = senv.get(path, "admin")
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "reason"


def test_unknown_routes_and_methods(senv: Env) -> None:
    assert senv.get("/api/v1/nope", "admin").status_code == 404
    assert senv.get("/api/v1/check", "party").status_code == 405
    assert senv.get(f"/api/v1/receipts/rc_{'0' * 26}", "party").status_code == 404
    assert senv.get("/api/v1/receipts/bogus", "party").status_code == 422
