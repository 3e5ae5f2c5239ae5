"""Leases on block jobs: which driver owns a job, its last heartbeat, and the worker's process id.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("block_scores") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(64)))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("pid", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("block_scores") as batch:
        for column in ("pid", "heartbeat_at", "lease_owner"):
            batch.drop_column(column)
