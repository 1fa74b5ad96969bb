"""Property-based fuzzing of the whole API from its OpenAPI document (schemathesis).

Every operation, with generated valid and invalid input, as an anonymous caller and as
each kind of credential: never a 5xx, and every answer conforms to the document (status
codes, content types, response schemas). Driven with hypothesis directly (schemathesis'
pytest plugin does not support this pytest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode, checks  # noqa: E402

from socred.api.app import create_app  # noqa: E402
from socred.api.settings import Settings  # noqa: E402
from tests.api.conftest import SECRET, prepare  # noqa: E402

# positive data as every kind of caller; negative data as those that get past the door of some operation
ROLES = {
    "positive": ("anon", "party", "provider", "subject", "admin", "auditor"),
    "negative": ("party", "provider", "subject", "admin"),
}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
EXAMPLES = 12


def fuzz(op: Any, mode: Any, roles: tuple[str, ...], keys: dict[str, str]) -> None:
    @given(case=op.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        for role in roles:
            headers = {"Authorization": f"Bearer {keys[role]}"} if role in keys else {}
            case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@pytest.mark.slow
def test_api_conforms_and_never_fails(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fuzz.db'}"
    keys = prepare(db)
    app = create_app(Settings(db=db, token_secret=SECRET, log_format="text", access_log=False))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    # this suite's operations; the public read layer (/api/v1/public, rate-limited) has its own tests
    operations = [
        op for op in (r.ok() for r in schema.get_all_operations()) if not op.path.startswith("/api/v1/public")
    ]
    assert len(operations) >= 20
    try:
        for op in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    fuzz(op, mode, ROLES[mode.value], keys)
                except Unsatisfiable:  # nothing negative to generate for an operation without input
                    continue
                except BaseException as e:  # collect every operation's failure
                    if isinstance(e, KeyboardInterrupt):
                        raise
                    failures.append(f"{op.label} [{mode.value}]: {str(e)[:1500]}")
    finally:
        app.state.socred.checks.stop()
        app.state.socred.platform.engine.dispose()
    assert not failures, "\n\n".join(failures)
