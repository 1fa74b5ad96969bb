"""Manual list actions by administrators, approved by a second administrator.

Revision ID: 0005_list_actions
Revises: 0004_due_process
"""

from alembic import op

from socred.store import schema_due

revision = "0005_list_actions"
down_revision = "0004_due_process"
branch_labels = None
depends_on = None

TABLES = ("list_actions",)


def upgrade() -> None:
    bind = op.get_bind()
    schema_due.metadata.create_all(bind, tables=[schema_due.metadata.tables[n] for n in TABLES])


def downgrade() -> None:
    bind = op.get_bind()
    schema_due.metadata.drop_all(bind, tables=[schema_due.metadata.tables[n] for n in TABLES])
