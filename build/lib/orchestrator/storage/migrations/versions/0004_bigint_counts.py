"""Block scores' parameter and FLOPs counts as 64-bit integers (32 bits overflow at 2.1e9, about ResNet-50's MACs).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("block_scores") as batch:  # batch mode: SQLite rebuilds the table
        for column in ("params", "flops"):
            batch.alter_column(column, existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("block_scores") as batch:
        for column in ("params", "flops"):
            batch.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True)
