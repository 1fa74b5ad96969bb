"""The ledger, its head, records, subjects, providers and catalogs.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PG_IMMUTABLE = """
CREATE OR REPLACE FUNCTION socred_ledger_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'the socred ledger is append-only: % is refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_no_update_delete BEFORE UPDATE OR DELETE ON ledger
  FOR EACH ROW EXECUTE FUNCTION socred_ledger_append_only();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger
  FOR EACH STATEMENT EXECUTE FUNCTION socred_ledger_append_only();
"""

SQLITE_IMMUTABLE = [
    "CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger "
    "BEGIN SELECT RAISE(ABORT, 'the socred ledger is append-only: UPDATE is refused'); END",
    "CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger "
    "BEGIN SELECT RAISE(ABORT, 'the socred ledger is append-only: DELETE is refused'); END",
]


def upgrade() -> None:
    op.create_table(
        "ledger",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.execute("INSERT INTO ledger_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')")
    op.create_table(
        "records",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("record_id", sa.String(128), primary_key=True),
        sa.Column("subject_id", sa.String(18), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject_region", sa.String(6), nullable=False),
        sa.Column("subject_name", sa.String(200), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("occurred_on", sa.Date, nullable=False),
        sa.Column("case_number", sa.String(128)),
        sa.Column("summary", sa.Text),
        sa.Column("region", sa.String(6)),
        sa.Column("attributes", sa.Text),
        sa.Column("retracted", sa.Boolean, nullable=False),
        sa.Column("retract_reason", sa.Text),
        sa.Column("repaired_on", sa.Date),
        sa.Column("repair_reason", sa.Text),
        sa.Column("submit_body", sa.Text, nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_records_subject", "records", ["subject_id"])
    op.create_index("ix_records_last_seq", "records", ["last_seq"])
    op.create_table(
        "subjects",
        sa.Column("subject_id", sa.String(18), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("region", sa.String(6), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_subjects_name", "subjects", ["name"])
    op.create_table(
        "providers",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("revoked_at", sa.String(32)),
    )
    op.create_table(
        "catalogs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("effective_from", sa.Date, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("loaded_at", sa.String(32), nullable=False),
        sa.Column("ledger_seq", sa.BigInteger, nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(PG_IMMUTABLE)
    elif bind.dialect.name == "sqlite":
        for stmt in SQLITE_IMMUTABLE:
            op.execute(stmt)


def downgrade() -> None:
    for name in ("catalogs", "providers", "subjects", "records", "ledger_head", "ledger"):
        op.drop_table(name)
