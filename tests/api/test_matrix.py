"""Every endpoint against every kind of caller: 401 without a valid credential, 403 without the right.

http.md: a missing or unknown credential gets 401; a credential that is valid (for any role)
but carries no right to the endpoint or activity gets 403. The matrix must cover every
route the API serves under /api/v1 (the public read layer is tested by its own suite).
"""

from __future__ import annotations

from typing import Any

import pytest

from socred.service import auth
from socred.service.platform import Platform
from tests.api.conftest import Env
from tests.helpers import PERSON

INVALID = ["anon", "junk", "expired", "forged", "unknown_party", "unknown_provider", "unknown_node"]
VALID = [
    "provider",
    "provider2",
    "party",
    "party_rail",
    "subject",
    "subject2",
    "reviewer",
    "admin",
    "auditor",
    "node",
]
PUBLIC = frozenset(VALID + INVALID)
STAFF_READ = {"reason": "matrix test"}


def endpoints(receipt: str) -> list[tuple[str, str, dict[str, Any], frozenset[str], int]]:
    """(method, path, request kwargs, roles admitted, success status)."""
    at = {"at": "2026-06-01"}
    return [
        ("POST", "/api/v1/records", {"json": {"operations": []}}, frozenset({"provider", "provider2"}), 200),
        (
            "POST",
            "/api/v1/check",
            {"json": {"subject_id": PERSON, "activity": "air_travel", **at}},
            frozenset({"party"}),
            200,
        ),
        (
            "POST",
            "/api/v1/check/batch",
            {"json": {"subject_ids": [PERSON], "activity": "air_travel", **at}},
            frozenset({"party"}),
            200,
        ),
        (
            "GET",
            f"/api/v1/receipts/{receipt}",
            {"params": STAFF_READ},
            frozenset({"party", "admin", "auditor"}),
            200,
        ),
        (
            "GET",
            "/api/v1/receipts",
            {"params": STAFF_READ},
            frozenset({"party", "party_rail", "admin", "auditor"}),
            200,
        ),
        (
            "POST",
            f"/api/v1/receipts/{receipt}/reproduce",
            {"params": STAFF_READ},
            frozenset({"admin", "auditor"}),
            200,
        ),
        ("GET", "/api/v1/me", {}, frozenset(VALID), 200),
        ("GET", "/api/v1/me/report", {}, frozenset({"subject", "subject2"}), 200),
        ("GET", "/api/v1/me/access-log", {}, frozenset({"subject", "subject2"}), 200),
        (
            "GET",
            f"/api/v1/subjects/{PERSON}/report",
            {"params": STAFF_READ},
            frozenset({"reviewer", "admin", "auditor"}),
            200,
        ),
        (
            "GET",
            f"/api/v1/subjects/{PERSON}/access-log",
            {"params": STAFF_READ},
            frozenset({"admin", "auditor"}),
            200,
        ),
        ("GET", "/api/v1/ledger/checkpoint", {}, PUBLIC, 200),
        (
            "GET",
            "/api/v1/ledger/entries",
            {"params": STAFF_READ},
            frozenset({"admin", "auditor", "node"}),
            200,
        ),
        ("GET", "/api/v1/federation/lists", {"params": {"regions": "11"}}, frozenset({"node"}), 200),
        ("GET", "/api/v1/federation/nodes", {}, frozenset({"admin", "auditor"}), 200),
        ("GET", "/api/v1/federation/conflicts", {}, frozenset({"reviewer", "admin", "auditor"}), 200),
        ("GET", "/api/v1/ledger/verify", {}, frozenset({"admin", "auditor"}), 200),
        ("GET", "/api/v1/admin/parties", {}, frozenset({"admin"}), 200),
        (
            "POST",
            "/api/v1/admin/parties",
            {"json": {"code": "hotel.x", "name": "Hotel", "activities": ["air_travel"]}},
            frozenset({"admin"}),
            201,
        ),
        ("POST", "/api/v1/admin/parties/spare/revoke", {}, frozenset({"admin"}), 204),
        ("POST", "/api/v1/admin/parties/spare/rotate", {}, frozenset({"admin"}), 200),
        ("GET", "/api/v1/admin/providers", {}, frozenset({"admin"}), 200),
        (
            "POST",
            "/api/v1/admin/providers",
            {"json": {"code": "bank.x", "name": "Bank", "categories": ["TAX_A_GRADE"]}},
            frozenset({"admin"}),
            201,
        ),
        ("POST", "/api/v1/admin/providers/spare-p/revoke", {}, frozenset({"admin"}), 204),
        ("POST", "/api/v1/admin/providers/spare-p/rotate", {}, frozenset({"admin"}), 200),
        # due process: unknown ids, so an admitted caller gets 404 and everyone else 401/403
        ("GET", "/api/v1/objections", {}, frozenset({"reviewer", "admin"}), 200),
        (
            "POST",
            "/api/v1/me/objections",
            {"json": {"record_id": "no-such-record", "reason": "not mine"}},
            frozenset({"subject", "subject2"}),
            404,
        ),
        (
            "POST",
            "/api/v1/me/objections/ob_missing/appeal",
            {"json": {"reason": "please look again"}},
            frozenset({"subject", "subject2"}),
            404,
        ),
        (
            "POST",
            "/api/v1/objections/ob_missing/decision",
            {"json": {"outcome": "upheld", "reason": "checked"}},
            frozenset({"reviewer"}),
            404,
        ),
        (
            "POST",
            "/api/v1/me/repairs",
            {"json": {"record_id": "no-such-record", "commitment": "I will pay"}},
            frozenset({"subject", "subject2"}),
            404,
        ),
        (
            "POST",
            "/api/v1/repairs/rp_missing/confirmation",
            {},
            frozenset({"provider", "provider2", "admin"}),
            404,
        ),
        (
            "POST",
            "/api/v1/repairs/rp_missing/decision",
            {"json": {"outcome": "approved", "reason": "fulfilled"}},
            frozenset({"reviewer"}),
            404,
        ),
        ("POST", "/api/v1/notices/sync", {}, frozenset({"admin"}), 200),
        ("GET", "/api/v1/me/report.pdf", {}, frozenset({"subject", "subject2"}), 200),
        ("GET", "/api/v1/repairs", {}, frozenset({"reviewer", "admin"}), 200),
        ("GET", "/api/v1/list-actions", {}, frozenset({"admin", "auditor"}), 200),
        (
            "POST",
            "/api/v1/list-actions",
            {"json": {"subject_id": PERSON, "list": "NO_SUCH_LIST", "action": "add", "reason": "x"}},
            frozenset({"admin"}),
            422,
        ),
        (
            "POST",
            "/api/v1/list-actions/la_missing/decision",
            {"json": {"outcome": "approved", "reason": "x"}},
            frozenset({"admin"}),
            404,
        ),
        ("GET", "/api/v1/ledger/proof", {"params": {"seq": 1}}, PUBLIC, 200),
        ("GET", "/api/v1/ledger/consistency", {"params": {"first": 1}}, PUBLIC, 200),
        ("GET", "/healthz", {}, PUBLIC, 200),
        ("GET", "/readyz", {}, PUBLIC, 200),
        ("GET", "/metrics", {}, PUBLIC, 200),
        ("GET", "/openapi.json", {}, PUBLIC, 200),
    ]


def expected(role: str, admitted: frozenset[str], ok: int, path: str) -> int:
    if role in admitted:
        return ok
    if role in INVALID:
        return 401
    return 403


def test_role_matrix(senv: Env) -> None:
    p = Platform(senv.url)
    auth.add_party(p, "spare", "Spare", ["air_travel"])
    p.add_provider("spare-p", "Spare provider", ["TAX_A_GRADE"])
    p.engine.dispose()
    r = senv.post("/api/v1/check", "party", {"subject_id": PERSON, "activity": "air_travel"})
    assert r.status_code == 200, r.text
    receipt = r.headers["Socred-Receipt"]

    table = endpoints(receipt)
    # every operation the application documents (routers included through any nesting)
    paths = senv.client.get("/openapi.json").json()["paths"]
    served = {
        (m.upper(), path)
        for path, ops in paths.items()
        for m in ops
        if m in ("get", "post", "put", "patch", "delete")
        and path.startswith("/api/v1/")
        and not path.startswith("/api/v1/public")
    }
    assert len(served) > 20, "the OpenAPI document lists the API's operations"
    listed = {
        (
            m,
            path.replace(receipt, "{receipt_id}")
            .replace(PERSON, "{subject_id}")
            .replace("spare-p", "{code}")
            .replace("spare", "{code}")
            .replace("ob_missing", "{objection_id}")
            .replace("rp_missing", "{repair_id}")
            .replace("la_missing", "{action_id}"),
        )
        for m, path, *_ in table
    }
    assert served <= listed, f"endpoints missing from the matrix: {sorted(served - listed)}"

    failures = []
    for method, path, kw, admitted, ok in table:
        for role in VALID + INVALID:
            want = expected(role, admitted, ok, path)
            if role == "party_rail" and path == f"/api/v1/receipts/{receipt}":
                want = 404  # another party's receipt does not exist for it
            res = senv.client.request(method, path, headers=senv.h(role), **kw)
            if res.status_code != want:
                failures.append(
                    f"{method} {path} as {role}: {res.status_code} (wanted {want}) {res.text[:120]}"
                )
            if res.status_code == 401:
                assert res.headers.get("www-authenticate", "").lower().startswith("bearer")
                assert res.json()["error"] == "unauthorized"
            elif res.status_code == 403:
                assert res.json()["error"] == "forbidden"
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "header",
    [
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
        "Bearer    ",
        "bearer  x",
        "Token abc",
        "Bearer " + "a" * 5000,
        "Bearer rp_",
        "Bearer sp_",
        "Bearer a.b.c",
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbjEiLCJyb2xlIjoiYWRtaW4ifQ.",
    ],
)
def test_malformed_authorization_is_401(senv: Env, header: str) -> None:
    for method, path in [("GET", "/api/v1/me"), ("POST", "/api/v1/check"), ("POST", "/api/v1/records")]:
        r = senv.client.request(method, path, headers={"Authorization": header}, json={})
        assert r.status_code == 401, (header, path, r.text)


def test_revoked_and_rotated_keys(senv: Env) -> None:
    body = {"subject_id": PERSON, "activity": "air_travel"}
    assert senv.post("/api/v1/check", "party", body).status_code == 200
    r = senv.post("/api/v1/admin/parties/air.cn/rotate", "admin")
    assert r.status_code == 200
    new = r.json()["api_key"]
    # the old key stops at once, even though this process had admitted it before
    assert senv.post("/api/v1/check", "party", body).status_code == 401
    ok = senv.client.post("/api/v1/check", json=body, headers={"Authorization": f"Bearer {new}"})
    assert ok.status_code == 200
    # revoked from another process (the CLI): the next check is refused
    p = Platform(senv.url)
    auth.revoke_party(p, "air.cn")
    p.engine.dispose()
    assert (
        senv.client.post("/api/v1/check", json=body, headers={"Authorization": f"Bearer {new}"}).status_code
        == 401
    )
    # providers too
    assert senv.post("/api/v1/admin/providers/court/revoke", "admin").status_code == 204
    assert senv.post("/api/v1/records", "provider", {"operations": []}).status_code == 401
    r = senv.post("/api/v1/admin/providers/court/rotate", "admin")
    key = r.json()["api_key"]
    assert (
        senv.client.post(
            "/api/v1/records", json={"operations": []}, headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 200
    )
