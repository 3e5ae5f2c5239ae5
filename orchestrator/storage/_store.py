"""``PerformanceStore``: the SQL backend (SQLite, PostgreSQL) of ``BaseStore``, whose docstring states the
contract: atomic and retried transactions, idempotent upserts keyed by content hashes, concurrent writers,
frozen records for readers, a versioned schema.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from blocknas.orchestrator.storage._base import BaseStore
from blocknas.orchestrator.storage._models import (
    BlockCostRow,
    BlockScoreRow,
    ExperimentRow,
    NetworkResultRow,
    ParetoFrontRow,
    RegisteredTargetRow,
    TargetVersionRow,
)
from blocknas.orchestrator.storage._records import BlockScore, CostEntry, RegisteredTarget, StoredFront, VerifiedNetwork
from blocknas.orchestrator.storage._schema import SchemaError, ensure_current

log = logging.getLogger(__name__)
T = TypeVar("T")
_SCORE_FIELDS = [c.name for c in BlockScoreRow.__table__.columns if c.name != "id"]


class StorageError(RuntimeError):
    """A read or write of the performance table failed; the message names the store and the cause."""


def public_url(url: str) -> str:
    """The store URL without user name or password, safe for logs and summaries."""
    parsed = make_url(url)
    # URL.set() treats None as "leave unchanged"; _replace really drops them.
    return parsed._replace(username=None, password=None).render_as_string(hide_password=False)


def _is_transient(exc: SQLAlchemyError) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    if exc.orig is not None and type(exc.orig).__module__.startswith("sqlite3"):
        return "locked" in str(exc.orig) or "busy" in str(exc.orig)  # not e.g. "no such table"
    return True


def _rollback_quietly(session: Session) -> None:
    try:
        session.rollback()
    except SQLAlchemyError:
        pass  # the connection is gone; the pool discards it


def _insert_for(session: Session):
    """The dialect's ``insert`` (the one with ON CONFLICT)."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite_insert
    if dialect == "postgresql":
        return postgresql_insert
    raise StorageError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")


def _upsert(session: Session, table, values: dict, keys: list[str], update_values: dict, where=None) -> None:
    statement = _insert_for(session)(table).values(**values)
    if update_values:
        statement = statement.on_conflict_do_update(index_elements=keys, set_=update_values, where=where)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    session.execute(statement)


class PerformanceStore(BaseStore):
    retries = 8  # transient errors: retried with exponential backoff from retry_delay, ~35 s in all
    retry_delay = 0.25

    def __init__(self, url: str, create: bool = True):
        self.url = url
        self.engine = self._make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if create:
            try:
                ensure_current(self.engine, public_url(url))
            except SchemaError as exc:
                raise StorageError(str(exc)) from exc
            except SQLAlchemyError as exc:
                raise StorageError(f"cannot open the performance table at {public_url(url)}: {exc}") from exc
        self._file = _sqlite_file(url)
        self._file_identity = _file_identity(self._file) if self._file else None

    def _check_file(self) -> None:
        """Fail at once, not after minutes of "database is locked" or with a silent new empty table, when
        the SQLite file this store opened was deleted, emptied or replaced under it."""
        if self._file is not None and (
            self._file_identity is None or _file_identity(self._file) != self._file_identity
        ):
            raise StorageError(
                f"performance table {public_url(self.url)}: the SQLite file {self._file} was deleted, emptied "
                "or replaced while blocknas was using it, so results written since are lost; restore it from "
                "a backup, or give a new storage.url (the next `blocknas run` measures what is missing)"
            )

    @staticmethod
    def _make_engine(url: str) -> Engine:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 60})

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_connection, _record):
                # WAL lets readers and one writer work at once; the busy timeout makes concurrent
                # writers from many Ray workers wait for the lock instead of failing.
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=60000")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

            return engine
        # No pre-ping (a round trip per transaction): a connection found dead is a transient error, retried.
        return create_engine(url)

    def _run(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one transaction; retry the whole transaction on a transient error.

        Transient: the connection was lost (server restarted, network cut) or the database was busy.
        Every write is an idempotent upsert or update, so a retried transaction records nothing twice.
        Anything else (a constraint, a bad value) fails at once with a StorageError naming the store.
        """
        delay = self.retry_delay
        for attempt in range(self.retries + 1):
            self._check_file()
            session = self._sessions()
            try:
                result = work(session)
                session.commit()
                return result
            except SQLAlchemyError as exc:
                _rollback_quietly(session)
                if attempt == self.retries or not _is_transient(exc):
                    tried = f" after {attempt + 1} attempts" if attempt else ""
                    raise StorageError(f"performance table {public_url(self.url)}{tried}: {exc}") from exc
                log.warning(
                    "performance table %s: transient error (%s); retry %d/%d in %.1f s",
                    public_url(self.url),
                    type(exc.orig or exc).__name__,
                    attempt + 1,
                    self.retries,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
            except BaseException:
                _rollback_quietly(session)
                raise
            finally:
                session.close()
        raise AssertionError("unreachable")

    # experiments ------------------------------------------------------------------------------------
    def record_experiment(self, name: str, config_hash: str, config_yaml: str, code: dict | None = None) -> None:
        """The config (once per name and hash) and the user code it runs with now (``code_fingerprint``)."""
        code_json = json.dumps(code or {}, sort_keys=True)

        def work(s: Session):
            _upsert(
                s,
                ExperimentRow.__table__,
                {
                    "name": name,
                    "config_hash": config_hash,
                    "config_yaml": config_yaml,
                    "created_at": _now(),
                    "code": code_json,
                },
                ["name", "config_hash"],
                {"code": code_json},
            )

        return self._run(work)

    def experiment_code(self, name: str, config_hash: str) -> dict | None:
        """The user code this config last ran with; None when it never ran (or ran before this was kept)."""

        def work(s: Session):
            return s.scalar(
                select(ExperimentRow.code).where(ExperimentRow.name == name, ExperimentRow.config_hash == config_hash)
            )

        stored = self._run(work)
        return json.loads(stored) if stored else None

    # block scores -----------------------------------------------------------------------------------
    def done_job_hashes(self, job_hashes: Sequence[str]) -> set[str]:
        def work(s: Session):
            rows = s.scalars(
                select(BlockScoreRow.job_hash).where(
                    BlockScoreRow.job_hash.in_(list(job_hashes)), BlockScoreRow.status == "done"
                )
            )
            return set(rows)

        return self._run(work)

    def claim(self, rows: list[dict], owner: str, lease_seconds: float) -> set[str]:
        """Take the lease on every block of ``rows`` that is not done and that no live driver holds.

        A lease is free when it has no owner, is ``owner``'s own, belongs to a failed block, or its heartbeat
        is older than ``lease_seconds`` (its driver died). Returns the job hashes ``owner`` now holds; the
        conditional upsert makes two drivers racing for one block end with exactly one owner.
        """
        table = BlockScoreRow.__table__
        now = _now()
        free = or_(
            table.c.lease_owner.is_(None),
            table.c.lease_owner == owner,
            table.c.status == "failed",
            table.c.heartbeat_at.is_(None),
            table.c.heartbeat_at < now - timedelta(seconds=lease_seconds),
        )
        lease = {"status": "queued", "lease_owner": owner, "heartbeat_at": now}
        params = [{"context_index": 0, **row, **lease, "attempts": 0} for row in rows]

        def work(s: Session):
            statement = _insert_for(s)(table)
            statement = statement.on_conflict_do_update(
                index_elements=["job_hash"],
                set_={**{k: statement.excluded[k] for k in lease}, "error": None},
                where=(table.c.status != "done") & free,
            )
            s.execute(statement, params)  # one statement for all rows (executemany)
            hashes = [r["job_hash"] for r in rows]
            return set(
                s.scalars(
                    select(table.c.job_hash).where(
                        table.c.job_hash.in_(hashes), table.c.lease_owner == owner, table.c.status != "done"
                    )
                )
            )

        return self._run(work)

    def heartbeat(self, owner: str) -> int:
        """Renew ``owner``'s leases on its queued and running blocks; returns how many it holds."""
        table = BlockScoreRow.__table__

        def work(s: Session):
            return s.execute(
                update(table)
                .where(table.c.lease_owner == owner, table.c.status.in_(("queued", "running")))
                .values(heartbeat_at=_now())
            ).rowcount

        return self._run(work)

    def release(self, owner: str, reason: str) -> int:
        """Give up ``owner``'s unfinished leases (its driver stops): they are marked failed with ``reason``."""
        table = BlockScoreRow.__table__

        def work(s: Session):
            return s.execute(
                update(table)
                .where(table.c.lease_owner == owner, table.c.status.in_(("queued", "running")))
                .values(status="failed", error=reason, lease_owner=None, finished_at=_now())
            ).rowcount

        return self._run(work)

    def mark_running(self, rows: list[dict], node: str | None, host: str | None, pid: int | None = None) -> None:
        """Start an attempt on each block: status ``running``, ``attempts + 1`` (done rows untouched)."""
        table = BlockScoreRow.__table__
        now = _now()
        started = {"status": "running", "node": node, "host": host, "pid": pid, "started_at": now, "heartbeat_at": now}

        params = [{"context_index": 0, **row, **started, "attempts": 1} for row in rows]

        def work(s: Session):
            # Values as bound parameters, not literals: one compiled statement, cached, for every call.
            statement = _insert_for(s)(table)
            statement = statement.on_conflict_do_update(
                index_elements=["job_hash"],
                set_={**{k: statement.excluded[k] for k in started}, "attempts": table.c.attempts + 1, "error": None},
                where=table.c.status != "done",
            )
            s.execute(statement, params)

        return self._run(work)

    def record_result(self, job_hashes: list[str], metrics: dict) -> None:
        """Mark blocks ``done`` with their metrics, in one transaction; a block already done keeps its result."""
        table = BlockScoreRow.__table__

        def work(s: Session):
            s.execute(
                update(table)
                .where(table.c.job_hash.in_(job_hashes), table.c.status != "done")
                .values(**metrics, status="done", error=None, finished_at=_now())
            )

        return self._run(work)

    def record_failure(self, job_hashes: list[str], error: str) -> None:
        table = BlockScoreRow.__table__

        def work(s: Session):
            s.execute(
                update(table)
                .where(table.c.job_hash.in_(job_hashes), table.c.status != "done")
                .values(status="failed", error=error[-4000:], finished_at=_now())
            )

        return self._run(work)

    def set_mlflow_run(self, job_hash: str, run_id: str) -> None:
        table = BlockScoreRow.__table__

        def work(s: Session):
            s.execute(update(table).where(table.c.job_hash == job_hash).values(mlflow_run_id=run_id))

        return self._run(work)

    def block_scores(
        self,
        job_hashes: Sequence[str] | None = None,
        experiment: str | None = None,
        status: str | None = None,
    ) -> list[BlockScore]:
        query = select(BlockScoreRow).order_by(BlockScoreRow.experiment, BlockScoreRow.slot_index, BlockScoreRow.id)
        if job_hashes is not None:
            query = query.where(BlockScoreRow.job_hash.in_(list(job_hashes)))
        if experiment is not None:
            query = query.where(BlockScoreRow.experiment == experiment)
        if status is not None:
            query = query.where(BlockScoreRow.status == status)

        def work(s: Session):
            return [BlockScore(**{f: getattr(row, f) for f in _SCORE_FIELDS}) for row in s.scalars(query)]

        return self._run(work)

    # block costs ------------------------------------------------------------------------------------
    def costs(self, space_hash: str, target: str, target_version: str) -> list[CostEntry]:
        def work(s: Session):
            rows = s.scalars(
                select(BlockCostRow).where(
                    BlockCostRow.space_hash == space_hash,
                    BlockCostRow.target == target,
                    BlockCostRow.target_version == target_version,
                )
            )
            return [CostEntry(r.slot_index, r.choice, r.value) for r in rows]

        return self._run(work)

    def record_costs(
        self,
        space_hash: str,
        target: str,
        target_version: str,
        metric: str,
        entries: list[CostEntry],
        measured_on: str | None,
    ) -> None:
        def work(s: Session):
            for entry in entries:
                _upsert(
                    s,
                    BlockCostRow.__table__,
                    {
                        "space_hash": space_hash,
                        "target": target,
                        "target_version": target_version,
                        "metric": metric,
                        "slot_index": entry.slot_index,
                        "choice": entry.choice,
                        "value": entry.value,
                        "measured_on": measured_on,
                        "created_at": _now(),
                    },
                    ["space_hash", "target", "target_version", "slot_index", "choice"],
                    {},
                )

        return self._run(work)

    # Pareto fronts ----------------------------------------------------------------------------------
    def record_front(
        self,
        experiment: str,
        config_hash: str,
        target: str,
        target_version: str,
        metric: str,
        table_hash: str,
        budgets_hash: str,
        points: list[dict],
    ) -> None:
        now = _now()

        def work(s: Session):
            _upsert(
                s,
                ParetoFrontRow.__table__,
                {
                    "experiment": experiment,
                    "config_hash": config_hash,
                    "target": target,
                    "target_version": target_version,
                    "metric": metric,
                    "table_hash": table_hash,
                    "budgets_hash": budgets_hash,
                    "points": points,
                    "computed_at": now,
                },
                ["experiment", "target", "target_version", "table_hash", "budgets_hash"],
                {"points": points, "computed_at": now, "config_hash": config_hash},
            )

        return self._run(work)

    def latest_front(self, experiment: str, target: str, target_version: str | None = None) -> StoredFront | None:
        """The most recently computed front of ``target`` (of ``target_version``, when given)."""
        query = select(ParetoFrontRow).where(ParetoFrontRow.experiment == experiment, ParetoFrontRow.target == target)
        if target_version is not None:
            query = query.where(ParetoFrontRow.target_version == target_version)
        return self._one_front(query)

    def find_front(
        self, experiment: str, target: str, target_version: str, table_hash: str, budgets_hash: str
    ) -> StoredFront | None:
        """The front stored for exactly these inputs, if any."""
        return self._one_front(
            select(ParetoFrontRow).where(
                ParetoFrontRow.experiment == experiment,
                ParetoFrontRow.target == target,
                ParetoFrontRow.target_version == target_version,
                ParetoFrontRow.table_hash == table_hash,
                ParetoFrontRow.budgets_hash == budgets_hash,
            )
        )

    def _one_front(self, query) -> StoredFront | None:
        def work(s: Session):
            row = s.scalars(
                query.order_by(ParetoFrontRow.computed_at.desc(), ParetoFrontRow.id.desc()).limit(1)
            ).first()
            if row is None:
                return None
            return StoredFront(
                row.experiment,
                row.target,
                row.target_version,
                row.metric,
                row.table_hash,
                list(row.points),
                row.computed_at,
            )

        return self._run(work)

    # Verified networks (refine loop) -------------------------------------------------------------------
    def record_network_result(self, values: dict) -> None:
        """Insert one verified network; a second result for the same (scorer, network) is ignored."""

        def work(s: Session):
            _upsert(s, NetworkResultRow.__table__, {**values, "created_at": _now()}, ["scorer_hash", "network_key"], {})

        return self._run(work)

    def network_results(self, scorer_hash: str) -> list[VerifiedNetwork]:
        columns = [f.name for f in fields(VerifiedNetwork)]

        def work(s: Session):
            rows = s.scalars(
                select(NetworkResultRow)
                .where(NetworkResultRow.scorer_hash == scorer_hash)
                .order_by(NetworkResultRow.id)
            ).all()
            return [VerifiedNetwork(**{c: getattr(r, c) for c in columns}) for r in rows]

        return self._run(work)

    def all_network_results(self, experiment: str | None = None) -> list[VerifiedNetwork]:
        """Every verified network (of ``experiment``, when given), oldest first: what the dashboard lists."""
        columns = [f.name for f in fields(VerifiedNetwork)]
        query = select(NetworkResultRow).order_by(NetworkResultRow.id)
        if experiment is not None:
            query = query.where(NetworkResultRow.experiment == experiment)

        def work(s: Session):
            return [VerifiedNetwork(**{c: getattr(r, c) for c in columns}) for r in s.scalars(query)]

        return self._run(work)

    # Read-only views (the dashboard) -----------------------------------------------------------------
    def experiments(self) -> list[dict]:
        """Every recorded (experiment, config) with when it was first recorded, newest first."""

        def work(s: Session):
            rows = s.scalars(select(ExperimentRow).order_by(ExperimentRow.created_at.desc(), ExperimentRow.id.desc()))
            return [
                {"name": r.name, "config_hash": r.config_hash, "config_yaml": r.config_yaml, "created_at": r.created_at}
                for r in rows
            ]

        return self._run(work)

    def target_versions(self) -> list[dict]:
        """Every stored version of every target (registered or not any more), oldest first."""

        def work(s: Session):
            rows = s.scalars(select(TargetVersionRow).order_by(TargetVersionRow.created_at, TargetVersionRow.id))
            return [
                {
                    "name": r.name,
                    "version": r.version,
                    "kind": r.kind,
                    "created_at": r.created_at,
                    "source": (r.definition or {}).get("source"),
                }
                for r in rows
            ]

        return self._run(work)

    def front_history(self, limit: int = 500) -> list[StoredFront]:
        """The latest ``limit`` fronts stored, newest first: each re-solve (run, solve, scheduler) once."""

        def work(s: Session):
            rows = s.scalars(
                select(ParetoFrontRow)
                .order_by(ParetoFrontRow.computed_at.desc(), ParetoFrontRow.id.desc())
                .limit(limit)
            )
            return [
                StoredFront(
                    r.experiment, r.target, r.target_version, r.metric, r.table_hash, list(r.points), r.computed_at
                )
                for r in rows
            ]

        return self._run(work)

    # Hardware-target registry -----------------------------------------------------------------------------
    def put_target(self, name: str, version: str, kind: str, definition: dict, exists: bool) -> str | None:
        """Make ``version`` (stored once) the current version of ``name``; returns the previous version.

        ``exists``: whether ``name`` must already be registered (update) or must not be (add); a violation
        raises ``LookupError`` and changes nothing.
        """

        def work(s: Session):
            current = s.scalars(select(RegisteredTargetRow).where(RegisteredTargetRow.name == name)).first()
            if exists and current is None:
                raise LookupError(f"no hardware target named {name!r}; `blocknas targets add {name} --file F` adds it")
            if not exists and current is not None:
                raise LookupError(
                    f"hardware target {name!r} exists (version {current.version}); "
                    f"`blocknas targets update {name} --file F` replaces it"
                )
            _upsert(
                s,
                TargetVersionRow.__table__,
                {"name": name, "version": version, "kind": kind, "definition": definition, "created_at": _now()},
                ["name", "version"],
                {},
            )
            previous = current.version if current else None
            if current is None:
                s.add(RegisteredTargetRow(name=name, version=version, updated_at=_now()))
            elif current.version != version:
                current.version, current.updated_at = version, _now()
            return previous

        return self._run(work)

    def registered_targets(self) -> list[RegisteredTarget]:
        """Every registered target at its current version, by name."""

        def work(s: Session):
            rows = s.execute(
                select(RegisteredTargetRow, TargetVersionRow)
                .join(
                    TargetVersionRow,
                    (TargetVersionRow.name == RegisteredTargetRow.name)
                    & (TargetVersionRow.version == RegisteredTargetRow.version),
                )
                .order_by(RegisteredTargetRow.name)
            )
            return [RegisteredTarget(r.name, r.version, v.kind, v.definition, r.updated_at) for r, v in rows]

        return self._run(work)

    def current_target_version(self, name: str) -> str | None:
        """The registered version of ``name`` (one small query: what a cached definition is checked by)."""

        def work(s: Session):
            return s.scalar(select(RegisteredTargetRow.version).where(RegisteredTargetRow.name == name))

        return self._run(work)

    def remove_target(self, name: str) -> str:
        """Unregister ``name`` (its versions stay, for the fronts computed from them); returns its version."""

        def work(s: Session):
            current = s.scalars(select(RegisteredTargetRow).where(RegisteredTargetRow.name == name)).first()
            if current is None:
                raise LookupError(f"no hardware target named {name!r}")
            s.delete(current)
            return current.version

        return self._run(work)


@lru_cache(maxsize=8)
def shared_store(url: str) -> PerformanceStore:
    """One store (engine and connection pool) per URL per process, for Ray worker processes.

    The driver opened (and schema-checked) the store before submitting any task, so workers do not.
    """
    return PerformanceStore(url, create=False)


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a non-empty file; None when it is gone or empty (SQLite writes a page at once)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino) if stat.st_size else None


def _now() -> datetime:
    return datetime.now(UTC)
