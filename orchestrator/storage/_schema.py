"""Schema versions of the performance store, managed by the Alembic migrations shipped in the package.

A new, empty store is created at the newest revision. A store at an older revision is refused (so no
code ever writes rows the schema does not fit) until ``blocknas db upgrade`` migrates it; one written by a
newer blocknas is refused too.
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from importlib import resources

from filelock import FileLock
from sqlalchemy import Engine, inspect, text

from blocknas.orchestrator.storage._models import Base

_SCRIPTS = "blocknas.orchestrator.storage:migrations"
# Not Alembic's default `alembic_version`: MLflow's tracking store keeps its own revision there, and the
# two may share one database.
VERSION_TABLE = "blocknas_schema_version"
_PG_LOCK = 7_310_201  # advisory lock id: one migrating process at a time per database


class SchemaError(RuntimeError):
    """The store's schema revision is not the one this blocknas needs; the message says what to run."""


def _config(connection=None):
    from alembic.config import Config  # Alembic only where a migration runs: opening a store stays light

    config = Config()
    config.set_main_option("script_location", _SCRIPTS)
    config.attributes["connection"] = connection
    return config


def _context(connection):
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})


def known_revisions() -> list[str]:
    """The shipped migrations, oldest first: ``versions/NNNN_name.py`` is revision ``NNNN``, each revising the
    one before it (a linear chain; tests/orchestrator/test_schema.py checks this against Alembic's own view)."""
    names = (f.name for f in (resources.files("blocknas.orchestrator.storage.migrations") / "versions").iterdir())
    return sorted(m.group(1) for m in map(re.compile(r"^(\d{4})_\w+\.py$").match, names) if m)


def head_revision() -> str:
    return known_revisions()[-1]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return _read_revision(connection)


def _read_revision(connection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


_UNVERSIONED = (
    "the store has blocknas tables but no schema revision (it was written before migrations existed); "
    "export what you need and point storage.url at a new database"
)


def _has_tables(bind) -> bool:
    return bool(set(inspect(bind).get_table_names()) & set(Base.metadata.tables))


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate to ``revision``; returns (before, after). Safe to call from several processes at once."""
    database = engine.url.database
    on_file = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
    with FileLock(f"{database}.lock") if on_file else nullcontext(), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK})
        from alembic import command

        before = _context(connection).get_current_revision()
        if before is None and _has_tables(connection):
            raise SchemaError(_UNVERSIONED)
        command.upgrade(_config(connection), revision)
        after = _context(connection).get_current_revision()
    return before, after


def ensure_current(engine: Engine, shown_url: str) -> None:
    """Create a new store at head; refuse one at any other revision with the command that fixes it."""
    head = head_revision()
    revision = current_revision(engine)
    if revision is None:  # new (or unversioned: refused inside, under the lock)
        try:
            upgrade(engine)  # under a lock: a second process finds the store at head and does nothing
        except SchemaError as exc:
            raise SchemaError(f"{shown_url}: {exc}") from exc
        return
    if revision == head:
        return
    if revision in known_revisions():
        raise SchemaError(
            f"the performance table at {shown_url} has schema revision {revision}, this blocknas needs {head}: "
            f"run `blocknas db upgrade storage.url=...` with the same storage.url (back the database up first)"
        )
    raise SchemaError(
        f"the performance table at {shown_url} has schema revision {revision!r}, which this blocknas does not "
        f"know (needs {head}): it was written by a newer blocknas; upgrade blocknas"
    )
