"""The HTTP API: relying parties, check receipts, the access log and the keystore.

Revision ID: 0002_api
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_api"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parties",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("activities", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("rotated_at", sa.String(32)),
        sa.Column("revoked_at", sa.String(32)),
    )
    op.create_table(
        "receipts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("batch_id", sa.String(40)),
        sa.Column("party", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(18), nullable=False),
        sa.Column("activity", sa.String(64), nullable=False),
        sa.Column("at", sa.Date, nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("catalog", sa.String(96), nullable=False),
        sa.Column("ledger_size", sa.BigInteger, nullable=False),
        sa.Column("ledger_head", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.String(32), nullable=False),
        sa.Column("result", sa.Text, nullable=False),
    )
    op.create_index("ix_receipts_subject", "receipts", ["subject_id", "issued_at", "id"])
    op.create_index("ix_receipts_party", "receipts", ["party", "issued_at"])
    op.create_index("ix_receipts_batch", "receipts", ["batch_id"])
    op.create_table(
        "access_log",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("subject_id", sa.String(18), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(500), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_access_log_subject", "access_log", ["subject_id", "at", "id"])
    op.create_table(
        "keystore",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    for name in ("keystore", "access_log", "receipts", "parties"):
        op.drop_table(name)
