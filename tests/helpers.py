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


# ---------------------------------------------------------------- tampering, as an operator behind socred's back


def tamper_ledger(
    url: str,
    seq: int,
    *,
    edit: Any = None,
    delete: bool = False,
    rehash: bool = False,
) -> None:
    """Change the stored ledger directly in the database, the way an insider with SQL access could.

    ``edit`` maps entry ``seq``'s stored text (the canonical JSON its hash covers) to a new text;
    ``delete`` removes the entry from its block; ``rehash`` then recomputes every hash from ``seq`` on
    and moves the recorded head, so that the chain alone verifies again. The append-only triggers
    are switched off for the change (as such an insider would), and on again afterwards on PostgreSQL.
    """
    import hashlib

    import pyarrow as pa
    import sqlalchemy as sa

    from socred.store.db import normalise_url

    engine = sa.create_engine(normalise_url(url))
    codec = pa.Codec("zstd", compression_level=3)
    try:
        with engine.begin() as c:
            pg = c.dialect.name == "postgresql"
            if pg:
                c.execute(sa.text("ALTER TABLE ledger_blocks DISABLE TRIGGER USER"))
            else:
                c.execute(sa.text("DROP TRIGGER IF EXISTS ledger_blocks_no_update"))
                c.execute(sa.text("DROP TRIGGER IF EXISTS ledger_blocks_no_delete"))
            rows = c.execute(
                sa.text(
                    "SELECT first_seq, last_seq, raw_size, entries, hashes FROM ledger_blocks ORDER BY first_seq"
                )
            ).all()
            blocks = []
            for first, last, size, data, hashes in rows:
                lines = codec.decompress(bytes(data), decompressed_size=int(size), asbytes=True).split(b"\n")
                digests = [bytes(hashes)[32 * i : 32 * i + 32] for i in range(len(lines))]
                blocks.append([int(first), int(last), lines, digests])
            prev = bytes(32)
            changed: set[int] = set()
            for b in blocks:
                first = b[0]
                if first <= seq <= b[1]:
                    i = seq - first
                    if delete:
                        del b[2][i]
                        del b[3][i]
                        b[1] -= 1
                    elif edit is not None:
                        b[2][i] = edit(b[2][i].decode("utf-8")).encode("utf-8")
                    changed.add(first)
                if rehash:
                    for i, line in enumerate(b[2]):
                        if first + i >= seq:
                            b[3][i] = hashlib.sha256(prev + line).digest()
                            changed.add(first)
                        prev = b[3][i]
            for b in blocks:
                if b[0] not in changed:
                    continue
                raw = b"\n".join(b[2])
                c.execute(
                    sa.text(
                        "UPDATE ledger_blocks SET last_seq = :last, raw_size = :size, entries = :data, hashes = :h "
                        "WHERE first_seq = :first"
                    ),
                    {
                        "last": b[1],
                        "size": len(raw),
                        "data": codec.compress(raw, asbytes=True),
                        "h": b"".join(b[3]),
                        "first": b[0],
                    },
                )
            if rehash:
                c.execute(sa.text("UPDATE ledger_head SET hash = :h"), {"h": prev.hex()})
            if pg:
                c.execute(sa.text("ALTER TABLE ledger_blocks ENABLE TRIGGER USER"))
    finally:
        engine.dispose()
