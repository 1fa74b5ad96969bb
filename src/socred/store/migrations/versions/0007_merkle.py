"""The ledger's Merkle tree: cached roots of complete subtrees (store/merkle_store.py).

Revision ID: 0007_merkle
Revises: 0006_federation
"""

from alembic import op

from socred.store import merkle_store

revision = "0007_merkle"
down_revision = "0006_federation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    merkle_store.metadata.create_all(op.get_bind())


def downgrade() -> None:
    merkle_store.metadata.drop_all(op.get_bind())
