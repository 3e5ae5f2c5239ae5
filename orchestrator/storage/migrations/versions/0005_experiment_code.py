"""The code of a user's extensions each experiment config last ran with, so a run can say that the code, not
the settings, changed (``blocknas.orchestrator.code_fingerprint``).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("search_experiments") as batch:
        batch.add_column(sa.Column("code", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("search_experiments") as batch:
        batch.drop_column("code")
