"""Alembic environment: runs on the connection ``blocknas.orchestrator.storage._schema`` hands over."""

from alembic import context

from blocknas.orchestrator.storage._models import Base
from blocknas.orchestrator.storage._schema import VERSION_TABLE

connection = context.config.attributes["connection"]
# Batch mode: SQLite cannot ALTER most things in place; Alembic copies the table instead.
context.configure(
    connection=connection, target_metadata=Base.metadata, render_as_batch=True, version_table=VERSION_TABLE
)
with context.begin_transaction():
    context.run_migrations()
