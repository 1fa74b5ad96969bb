"""Small helpers shared by tests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
TEST_CATALOG = FIXTURES / "test_catalog.yaml"

PERSON = "11010519491231002X"  # valid resident number, region 110105
PERSON2 = "360426199101010071"
ORG = "91330100799655058B"  # valid USCC, region 330100
ORG_SH = "91310114MA1GTPB26F"  # valid USCC, region 310114 (Shanghai)


def rows(ops: Iterable[Mapping[str, Any]]) -> list[tuple[int, Mapping[str, Any]]]:
    return [(i + 1, op) for i, op in enumerate(ops)]


def write_jsonl(path: Path, ops: Iterable[Mapping[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(op, ensure_ascii=False) + "\n" for op in ops), encoding="utf-8")
    return path


def submit(
    record_id: str,
    subject_id: str = PERSON,
    category: str = "TRAFFIC_HONKING",
    occurred_on: str = "2026-03-01",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "record_id": record_id,
        "subject_id": subject_id,
        "subject_name": "张三",
        "category": category,
        "occurred_on": occurred_on,
        **extra,
    }
