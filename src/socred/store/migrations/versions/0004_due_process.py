"""Due process: objections and appeals, credit repair applications, notices (the outbox).

Revision ID: 0004_due_process
Revises: 0003_search
"""

from alembic import op

from socred.store import schema_due

revision = "0004_due_process"
down_revision = "0003_search"
branch_labels = None
depends_on = None

TABLES = ("objections", "repairs", "notices", "notice_lists", "due_state")


def upgrade() -> None:
    bind = op.get_bind()
    schema_due.metadata.create_all(bind, tables=[schema_due.metadata.tables[n] for n in TABLES])


def downgrade() -> None:
    bind = op.get_bind()
    schema_due.metadata.drop_all(bind, tables=[schema_due.metadata.tables[n] for n in TABLES])
