"""Public read layer: the subject search index and two read indexes on records.

SQLite: ``subject_search`` + FTS5 trigram ``subjects_fts``, kept by triggers (store/search.py).
PostgreSQL: ``pg_trgm`` GIN and ``text_pattern_ops`` indexes on ``subjects.name``.
Both: ``records(occurred_on)`` for announcements (newest first) and ``records(first_seq)`` for
the live scoreboard (newest arrivals).

Revision ID: 0003_search
Revises: 0002_api
"""

from alembic import op

from socred.store import search

revision = "0003_search"
down_revision = "0002_api"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_records_occurred_on", "records", ["occurred_on"])
    op.create_index("ix_records_first_seq", "records", ["first_seq"])
    search.install(op.get_bind())


def downgrade() -> None:
    search.uninstall(op.get_bind())
    op.drop_index("ix_records_first_seq", "records")
    op.drop_index("ix_records_occurred_on", "records")
