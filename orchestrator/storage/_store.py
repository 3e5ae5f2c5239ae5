"""``PerformanceStore``: the one way the orchestrator reads and writes the performance table.

Contract:
- every write is one transaction, committed or rolled back whole, through ``session()``;
- block results are keyed by their content hash: retries and re-runs upsert, never duplicate, and a
  row that is ``done`` is never overwritten by a later ``running`` or ``failed`` attempt;
- block costs are written once per (space, target version, block): the first measurement stays;
- readers get frozen records, never ORM rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.storage._models import (
    BlockCostRow,
    BlockScoreRow,
    ExperimentRow,
    NetworkResultRow,
    ParetoFrontRow,
)
from orchestrator.storage._records import BlockScore, CostEntry, StoredFront
from orchestrator.storage._schema import SchemaError, ensure_current

_SCORE_FIELDS = [c.name for c in BlockScoreRow.__table__.columns if c.name != "id"]


class StorageError(RuntimeError):
    """A read or write of the performance table failed; the message names the store and the cause."""


def public_url(url: str) -> str:
    """The store URL without user name or password, safe for logs and summaries."""
    parsed = make_url(url)
    # URL.set() treats None as "leave unchanged"; _replace really drops them.
    return parsed._replace(username=None, password=None).render_as_string(hide_password=False)


def _upsert(session: Session, table, values: dict, keys: list[str], update_values: dict, where=None) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise StorageError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")
    statement = insert(table).values(**values)
    if update_values:
        statement = statement.on_conflict_do_update(index_elements=keys, set_=update_values, where=where)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    session.execute(statement)


class PerformanceStore:
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
        return create_engine(url, pool_pre_ping=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise StorageError(f"performance table {public_url(self.url)}: {exc}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # experiments ------------------------------------------------------------------------------------
    def record_experiment(self, name: str, config_hash: str, config_yaml: str) -> None:
        with self.session() as s:
            _upsert(
                s,
                ExperimentRow.__table__,
                {"name": name, "config_hash": config_hash, "config_yaml": config_yaml, "created_at": _now()},
                ["name", "config_hash"],
                {},
            )

    # block scores -----------------------------------------------------------------------------------
    def done_job_hashes(self, job_hashes: Sequence[str]) -> set[str]:
        with self.session() as s:
            rows = s.scalars(
                select(BlockScoreRow.job_hash).where(
                    BlockScoreRow.job_hash.in_(list(job_hashes)), BlockScoreRow.status == "done"
                )
            )
            return set(rows)

    def mark_running(self, rows: list[dict], node: str | None, host: str | None) -> None:
        """Start an attempt on each block: status ``running``, ``attempts + 1`` (done rows untouched)."""
        table = BlockScoreRow.__table__
        now = _now()
        with self.session() as s:
            for row in rows:
                values = {**row, "status": "running", "attempts": 1, "node": node, "host": host, "started_at": now}
                _upsert(
                    s,
                    table,
                    values,
                    ["job_hash"],
                    {"status": "running", "attempts": table.c.attempts + 1, "node": node, "host": host,
                     "started_at": now, "error": None},
                    where=table.c.status != "done",
                )

    def record_result(self, job_hashes: list[str], metrics: dict) -> None:
        """Mark blocks ``done`` with their metrics, in one transaction."""
        table = BlockScoreRow.__table__
        with self.session() as s:
            s.execute(
                update(table)
                .where(table.c.job_hash.in_(job_hashes))
                .values(**metrics, status="done", error=None, finished_at=_now())
            )

    def record_failure(self, job_hashes: list[str], error: str) -> None:
        table = BlockScoreRow.__table__
        with self.session() as s:
            s.execute(
                update(table)
                .where(table.c.job_hash.in_(job_hashes), table.c.status != "done")
                .values(status="failed", error=error[-4000:], finished_at=_now())
            )

    def set_mlflow_run(self, job_hash: str, run_id: str) -> None:
        table = BlockScoreRow.__table__
        with self.session() as s:
            s.execute(update(table).where(table.c.job_hash == job_hash).values(mlflow_run_id=run_id))

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
        with self.session() as s:
            return [BlockScore(**{f: getattr(row, f) for f in _SCORE_FIELDS}) for row in s.scalars(query)]

    # block costs ------------------------------------------------------------------------------------
    def costs(self, space_hash: str, target: str, target_version: str) -> list[CostEntry]:
        with self.session() as s:
            rows = s.scalars(
                select(BlockCostRow).where(
                    BlockCostRow.space_hash == space_hash,
                    BlockCostRow.target == target,
                    BlockCostRow.target_version == target_version,
                )
            )
            return [CostEntry(r.slot_index, r.choice, r.value) for r in rows]

    def record_costs(
        self, space_hash: str, target: str, target_version: str, metric: str, entries: list[CostEntry],
        measured_on: str | None,
    ) -> None:
        with self.session() as s:
            for entry in entries:
                _upsert(
                    s,
                    BlockCostRow.__table__,
                    {"space_hash": space_hash, "target": target, "target_version": target_version,
                     "metric": metric, "slot_index": entry.slot_index, "choice": entry.choice,
                     "value": entry.value, "measured_on": measured_on, "created_at": _now()},
                    ["space_hash", "target", "target_version", "slot_index", "choice"],
                    {},
                )

    # Pareto fronts ----------------------------------------------------------------------------------
    def record_front(
        self, experiment: str, config_hash: str, target: str, target_version: str, metric: str,
        table_hash: str, budgets_hash: str, points: list[dict],
    ) -> None:
        now = _now()
        with self.session() as s:
            _upsert(
                s,
                ParetoFrontRow.__table__,
                {"experiment": experiment, "config_hash": config_hash, "target": target,
                 "target_version": target_version, "metric": metric, "table_hash": table_hash,
                 "budgets_hash": budgets_hash, "points": points, "computed_at": now},
                ["experiment", "target", "target_version", "table_hash", "budgets_hash"],
                {"points": points, "computed_at": now, "config_hash": config_hash},
            )

    def latest_front(self, experiment: str, target: str) -> StoredFront | None:
        with self.session() as s:
            row = s.scalars(
                select(ParetoFrontRow)
                .where(ParetoFrontRow.experiment == experiment, ParetoFrontRow.target == target)
                .order_by(ParetoFrontRow.computed_at.desc(), ParetoFrontRow.id.desc())
                .limit(1)
            ).first()
            if row is None:
                return None
            return StoredFront(row.experiment, row.target, row.target_version, row.metric, row.table_hash,
                               list(row.points), row.computed_at)


    # Verified networks (refine loop) -------------------------------------------------------------------
    def record_network_result(self, values: dict) -> None:
        """Insert one verified network; a second result for the same (scorer, network) is ignored."""
        with self.session() as s:
            _upsert(s, NetworkResultRow.__table__, {**values, "created_at": _now()},
                    ["scorer_hash", "network_key"], {})

    def network_results(self, scorer_hash: str) -> list[dict]:
        columns = [c.name for c in NetworkResultRow.__table__.columns if c.name not in ("id", "created_at")]
        with self.session() as s:
            rows = s.scalars(select(NetworkResultRow).where(NetworkResultRow.scorer_hash == scorer_hash)
                             .order_by(NetworkResultRow.id)).all()
            return [{c: getattr(r, c) for c in columns} for r in rows]


@lru_cache(maxsize=8)
def shared_store(url: str) -> PerformanceStore:
    """One store (engine and connection pool) per URL per process, for Ray worker processes.

    The driver opened (and schema-checked) the store before submitting any task, so workers do not.
    """
    return PerformanceStore(url, create=False)


def _now() -> datetime:
    return datetime.now(UTC)
