"""Receipts per request: one row per check or batch of checks, the answers stored compactly.

Before: one row per answer (a batch of 10,000 subjects was 10,000 rows of canonical JSON, written in
the request's transaction). After: one row per request with the identifiers (18 bytes each), one
uint16 per subject pointing into the distinct answers (canonical JSON, each without its subject),
and ``receipt_subjects`` listing the subjects of batches for their access logs (filled after the
answer; the not yet indexed batches are searched directly).

Existing receipts are carried over: a batch's rows ``<batch>.<n>`` become one batch receipt whose
answer ``n`` is the same; a single check keeps its id.

Revision ID: 0009_receipts
Revises: 0008_compact_storage
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009_receipts"
down_revision = "0008_compact_storage"
branch_labels = None
depends_on = None


def _canonical(v: Any) -> str:
    return json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def upgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    no_type: Any = sa.Integer if sqlite else sa.BigInteger
    op.create_table(
        "receipts_v2",
        sa.Column("no", no_type, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("party", sa.String(64), nullable=False),
        sa.Column("activity", sa.String(64), nullable=False),
        sa.Column("at", sa.Date, nullable=False),
        sa.Column("issued_at", sa.String(32), nullable=False),
        sa.Column("ledger_size", sa.BigInteger, nullable=False),
        sa.Column("ledger_head", sa.String(64), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("restricted", sa.Integer, nullable=False),
        sa.Column("subject_id", sa.String(18)),
        sa.Column("subjects", sa.LargeBinary, nullable=False),
        sa.Column("answers", sa.LargeBinary, nullable=False),
        sa.Column("classes", sa.Text, nullable=False),
    )
    kw = {"sqlite_with_rowid": False} if sqlite else {}
    op.create_table(
        "receipt_subjects",
        sa.Column("subject_id", sa.String(18), primary_key=True),
        sa.Column("receipt_no", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("pos", sa.Integer, nullable=False),
        **kw,
    )
    op.create_table(
        "receipt_index",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("receipt_no", sa.BigInteger, nullable=False),
    )
    new = sa.table(
        "receipts_v2",
        *(
            sa.column(c)
            for c in (
                "id",
                "party",
                "activity",
                "at",
                "issued_at",
                "ledger_size",
                "ledger_head",
                "n",
                "restricted",
                "subject_id",
                "subjects",
                "answers",
                "classes",
            )
        ),
    )
    old = conn.exec_driver_sql(
        "SELECT id, batch_id, party, subject_id, activity, at, decision, ledger_size, ledger_head, issued_at, "
        "result FROM receipts ORDER BY issued_at, id"
    ).all()
    groups: dict[str, list[Any]] = {}
    for r in old:
        groups.setdefault(r[1] or r[0], []).append(r)
    rows = []
    for rid, members in groups.items():
        batch = members[0][1] is not None
        if batch:
            members.sort(key=lambda r: int(str(r[0]).rsplit(".", 1)[1]))
        classes: list[str] = []
        index: list[int] = []
        for r in members:
            result = json.loads(r[10])
            result.pop("subject_id", None)
            text = _canonical(result)
            if text not in classes:
                classes.append(text)
            index.append(classes.index(text))
        first = members[0]
        rows.append(
            {
                "id": rid,
                "party": first[2],
                "activity": first[4],
                "at": first[5],
                "issued_at": first[9],
                "ledger_size": first[7],
                "ledger_head": first[8],
                "n": len(members),
                "restricted": sum(1 for r in members if r[6] == "restricted"),
                "subject_id": None if batch else first[3],
                "subjects": b"".join(str(r[3]).encode("ascii").ljust(18)[:18] for r in members),
                "answers": b"".join(i.to_bytes(2, "little") for i in index),
                "classes": "[" + ",".join(classes) + "]",
            }
        )
    if rows:
        conn.execute(sa.insert(new), rows)
    op.drop_index("ix_receipts_subject", table_name="receipts")
    op.drop_index("ix_receipts_party", table_name="receipts")
    op.drop_index("ix_receipts_batch", table_name="receipts")
    op.drop_table("receipts")
    op.rename_table("receipts_v2", "receipts")
    op.create_index("ix_receipts_subject", "receipts", ["subject_id", "issued_at", "id"])
    op.create_index("ix_receipts_party", "receipts", ["party", "issued_at"])
    # the carried batches are indexed now (the index then starts complete)
    subjects = []
    for no, blob, n, subject in conn.exec_driver_sql("SELECT no, subjects, n, subject_id FROM receipts"):
        if subject is not None:
            continue
        data = bytes(blob)
        for pos in range(int(n)):
            subjects.append(
                {
                    "subject_id": data[18 * pos : 18 * pos + 18].decode("ascii"),
                    "receipt_no": int(no),
                    "pos": pos + 1,
                }
            )
    if subjects:
        conn.execute(
            sa.insert(
                sa.table(
                    "receipt_subjects", sa.column("subject_id"), sa.column("receipt_no"), sa.column("pos")
                )
            ),
            subjects,
        )
    top = conn.exec_driver_sql("SELECT COALESCE(MAX(no), 0) FROM receipts").scalar()
    conn.execute(
        sa.insert(sa.table("receipt_index", sa.column("id"), sa.column("receipt_no"))),
        [{"id": 1, "receipt_no": top}],
    )


def downgrade() -> None:
    raise NotImplementedError("0009 is not reversible: restore from a backup taken before the upgrade")
