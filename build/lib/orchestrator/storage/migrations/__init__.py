"""Alembic migrations of the performance store; applied by ``blocknas db upgrade`` (see ``_schema``)."""
