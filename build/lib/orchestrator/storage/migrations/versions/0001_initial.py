"""The performance store as first released: experiments, block scores and costs, fronts, network results.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "search_experiments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("config_yaml", sa.Text(), nullable=False),
        _when("created_at", nullable=False),
        sa.UniqueConstraint("name", "config_hash"),
    )
    op.create_table(
        "block_scores",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("experiment", sa.String(200), nullable=False),
        sa.Column("space", sa.String(200), nullable=False),
        sa.Column("scorer_hash", sa.String(64), nullable=False),
        sa.Column("slot_index", sa.Integer(), nullable=False),
        sa.Column("slot", sa.String(100), nullable=False),
        sa.Column("block", sa.String(200), nullable=False),
        sa.Column("choice_index", sa.Integer(), nullable=False),
        sa.Column("network_hash", sa.String(64), nullable=False),
        sa.Column("context_index", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float()),
        sa.Column("loss", sa.Float()),
        sa.Column("train_loss", sa.Float()),
        sa.Column("train_seconds", sa.Float()),
        sa.Column("params", sa.Integer()),
        sa.Column("flops", sa.Integer()),
        sa.Column("node", sa.String(100)),
        sa.Column("host", sa.String(200)),
        sa.Column("device", sa.String(50)),
        sa.Column("mlflow_run_id", sa.String(64)),
        sa.Column("error", sa.Text()),
        _when("started_at"),
        _when("finished_at"),
    )
    for column in ("experiment", "scorer_hash", "status"):
        op.create_index(f"ix_block_scores_{column}", "block_scores", [column])
    op.create_table(
        "block_costs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("space_hash", sa.String(64), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("target_version", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(50), nullable=False),
        sa.Column("slot_index", sa.Integer(), nullable=False),
        sa.Column("choice", sa.String(200), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("measured_on", sa.String(200)),
        _when("created_at", nullable=False),
        sa.UniqueConstraint("space_hash", "target", "target_version", "slot_index", "choice"),
    )
    op.create_table(
        "pareto_fronts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("experiment", sa.String(200), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("target_version", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(50), nullable=False),
        sa.Column("table_hash", sa.String(64), nullable=False),
        sa.Column("budgets_hash", sa.String(64), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        _when("computed_at", nullable=False),
        sa.UniqueConstraint("experiment", "target", "target_version", "table_hash", "budgets_hash"),
    )
    op.create_table(
        "network_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("experiment", sa.String(200), nullable=False),
        sa.Column("scorer_hash", sa.String(64), nullable=False),
        sa.Column("network_key", sa.String(500), nullable=False),
        sa.Column("choices", sa.JSON(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=False),
        sa.Column("predicted_accuracy", sa.Float()),
        sa.Column("costs", sa.JSON(), nullable=False),
        sa.Column("predicted_costs", sa.JSON(), nullable=False),
        sa.Column("refine_round", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("node", sa.String(100)),
        sa.Column("device", sa.String(50)),
        sa.Column("mlflow_run_id", sa.String(64)),
        _when("created_at", nullable=False),
        sa.UniqueConstraint("scorer_hash", "network_key"),
    )


def downgrade() -> None:
    for table in ("network_results", "pareto_fronts", "block_costs", "block_scores", "search_experiments"):
        op.drop_table(table)
