"""Who may call each due-process endpoint: 401 without a valid credential, 403 without the right.

(tests/api/test_matrix.py cannot see routers included with ``include_router`` under this FastAPI
version, so the due-process routes are checked here as well.)
"""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Env

INVALID = ["anon", "junk", "expired", "forged", "unknown_party", "unknown_provider"]
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
]
SUBJECTS = frozenset({"subject", "subject2"})
REVIEWERS = frozenset({"reviewer"})

# (method, path, body, roles admitted, status for an admitted caller: the ids do not exist)
ROUTES: list[tuple[str, str, Any, frozenset[str], int]] = [
    ("POST", "/api/v1/me/objections", {"record_id": "none", "reason": "x"}, SUBJECTS, 404),
    ("POST", "/api/v1/me/objections/ob_none/appeal", {"reason": "x"}, SUBJECTS, 404),
    ("POST", "/api/v1/me/repairs", {"record_id": "none", "commitment": "x"}, SUBJECTS, 404),
    ("GET", "/api/v1/objections", None, frozenset({"reviewer", "admin"}), 200),
    ("POST", "/api/v1/objections/ob_none/decision", {"outcome": "upheld", "reason": "x"}, REVIEWERS, 404),
    (
        "POST",
        "/api/v1/repairs/rp_none/confirmation",
        None,
        frozenset({"provider", "provider2", "admin"}),
        404,
    ),
    ("POST", "/api/v1/repairs/rp_none/decision", {"outcome": "approved", "reason": "x"}, REVIEWERS, 404),
    ("POST", "/api/v1/notices/sync", None, frozenset({"admin"}), 200),
    ("GET", "/api/v1/repairs", None, frozenset({"reviewer", "admin"}), 200),
    ("GET", "/api/v1/me/report.pdf", None, SUBJECTS, 200),
    ("GET", "/api/v1/list-actions", None, frozenset({"admin", "auditor"}), 200),
    (
        "POST",
        "/api/v1/list-actions",
        {"subject_id": "11010519491231002X", "list": "NO_SUCH_LIST", "action": "add", "reason": "x"},
        frozenset({"admin"}),
        422,
    ),
    (
        "POST",
        "/api/v1/list-actions/la_none/decision",
        {"outcome": "approved", "reason": "x"},
        frozenset({"admin"}),
        404,
    ),
]


def test_due_process_role_matrix(senv: Env) -> None:
    failures = []
    for method, path, body, admitted, ok in ROUTES:
        for role in VALID + INVALID:
            want = ok if role in admitted else 401 if role in INVALID else 403
            r = senv.client.request(method, path, headers=senv.h(role), json=body)
            if r.status_code != want:
                failures.append(f"{method} {path} as {role}: {r.status_code} (wanted {want}) {r.text[:120]}")
    assert not failures, "\n".join(failures)


def test_routes_are_in_the_openapi_document(senv: Env) -> None:
    paths = senv.client.get("/openapi.json").json()["paths"]
    for _, path, *_ in ROUTES:
        template = (
            path.replace("ob_none", "{objection_id}")
            .replace("rp_none", "{repair_id}")
            .replace("la_none", "{action_id}")
        )
        assert template in paths, template


def test_malformed_decisions_are_422(senv: Env) -> None:
    for body in [
        {"outcome": "maybe", "reason": "x"},
        {"outcome": "upheld"},
        {"outcome": "upheld", "reason": ""},
    ]:
        r = senv.post("/api/v1/objections/ob_none/decision", "reviewer", body)
        assert r.status_code == 422, (body, r.text)
    r = senv.post("/api/v1/me/objections", "subject", {"record_id": "a", "reason": "b", "extra": 1})
    assert r.status_code == 422
