"""Federation: upstream nodes, downstream keys, replication provenance, national lists.

Revision ID: 0006_federation
Revises: 0005_list_actions
"""

from alembic import op

from socred.store import schema_fed

revision = "0006_federation"
down_revision = "0005_list_actions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema_fed.metadata.create_all(op.get_bind())


def downgrade() -> None:
    schema_fed.metadata.drop_all(op.get_bind())
