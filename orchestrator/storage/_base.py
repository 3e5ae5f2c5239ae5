"""``BaseStore``: what every performance-table backend promises (``PerformanceStore`` is the SQL one).

Contract (every backend, tested by ``tests/orchestrator/test_storage.py`` on SQLite and PostgreSQL):

- **Atomic.** Every method that writes is one transaction: it is committed whole or not at all. A lost
  connection, a deadlock or a serialization failure is retried with backoff; any other error raises
  ``StorageError`` and writes nothing.
- **Idempotent.** Block results are keyed by their job's content hash: a retry or a re-run upserts, never
  duplicates. A block that is ``done`` is never overwritten by a later attempt; costs are written once per
  (space, target version, block), and the first measurement stays; a target version is stored once.
- **Safe for concurrent writers.** Many processes (Ray workers on many nodes, several drivers) may write at
  once; ``claim`` gives each block to exactly one live driver.
- **Immutable answers.** Readers get frozen records (``BlockScore``, ``CostEntry``, ``StoredFront``,
  ``VerifiedNetwork``, ``RegisteredTarget``) or plain data built for the caller, never ORM rows: what a
  caller holds does not change under it.
- **Versioned schema.** A store at an older schema revision is refused with a message naming
  ``blocknas db upgrade``; one written by a newer blocknas is refused too.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from blocknas.orchestrator.storage._records import BlockScore, CostEntry, RegisteredTarget, StoredFront, VerifiedNetwork


class BaseStore(abc.ABC):
    # Experiments and block results ---------------------------------------------------------------------
    @abc.abstractmethod
    def record_experiment(self, name: str, config_hash: str, config_yaml: str) -> None:
        """Record (or refresh) a search campaign's config snapshot under its hash."""

    @abc.abstractmethod
    def done_job_hashes(self, job_hashes: Sequence[str]) -> set[str]:
        """Which of ``job_hashes`` are done: the blocks a run need not measure again."""

    @abc.abstractmethod
    def claim(self, rows: list[dict], owner: str, lease_seconds: float) -> set[str]:
        """Lease every block of ``rows`` not done and not held by a live driver to ``owner``; the hashes won."""

    @abc.abstractmethod
    def heartbeat(self, owner: str) -> int:
        """Renew ``owner``'s leases; how many it holds."""

    @abc.abstractmethod
    def release(self, owner: str, reason: str) -> int:
        """Give up ``owner``'s unfinished leases, marking those blocks failed with ``reason``; how many."""

    @abc.abstractmethod
    def mark_running(self, rows: list[dict], node: str | None, host: str | None, pid: int | None = None) -> None:
        """Start an attempt on each block (``attempts + 1``, where it runs); done blocks are untouched."""

    @abc.abstractmethod
    def record_result(self, job_hashes: list[str], metrics: dict) -> None:
        """Mark the blocks done with ``metrics`` (one network's result); a done block keeps its result."""

    @abc.abstractmethod
    def record_failure(self, job_hashes: list[str], error: str) -> None:
        """Mark the blocks failed with ``error``; a done block stays done."""

    @abc.abstractmethod
    def set_mlflow_run(self, job_hash: str, run_id: str) -> None:
        """Link a block to the MLflow run of its current attempt."""

    @abc.abstractmethod
    def block_scores(
        self, job_hashes: Sequence[str] | None = None, experiment: str | None = None, status: str | None = None
    ) -> list[BlockScore]:
        """Block results, filtered by hash, experiment and status, ordered by experiment and slot."""

    # Costs and fronts ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def costs(self, space_hash: str, target: str, target_version: str) -> list[CostEntry]:
        """The stored per-block costs of a target version on a space (empty if not measured)."""

    @abc.abstractmethod
    def record_costs(
        self,
        space_hash: str,
        target: str,
        target_version: str,
        metric: str,
        entries: list[CostEntry],
        measured_on: str | None,
    ) -> None:
        """Store per-block costs once; entries already stored keep their first value."""

    @abc.abstractmethod
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
        """Store the front of exactly these inputs (replacing an earlier one of the same inputs)."""

    @abc.abstractmethod
    def latest_front(self, experiment: str, target: str, target_version: str | None = None) -> StoredFront | None:
        """The most recently computed front of a target (of one version, when given)."""

    @abc.abstractmethod
    def find_front(
        self, experiment: str, target: str, target_version: str, table_hash: str, budgets_hash: str
    ) -> StoredFront | None:
        """The front stored for exactly these inputs, if any."""

    # Verified networks --------------------------------------------------------------------------------
    @abc.abstractmethod
    def record_network_result(self, values: dict) -> None:
        """Store one verified network; a second result for the same (scorer, network) is ignored."""

    @abc.abstractmethod
    def network_results(self, scorer_hash: str) -> list[VerifiedNetwork]:
        """Every verified network of a scorer, in the order they were stored."""

    # Hardware-target registry -------------------------------------------------------------------------
    @abc.abstractmethod
    def put_target(self, name: str, version: str, kind: str, definition: dict, exists: bool) -> str | None:
        """Make ``version`` the current one of ``name`` (add: must not exist; update: must); the previous."""

    @abc.abstractmethod
    def registered_targets(self) -> list[RegisteredTarget]:
        """Every registered target at its current version, ordered by name."""

    @abc.abstractmethod
    def current_target_version(self, name: str) -> str | None:
        """The registered version of ``name``, or None."""

    @abc.abstractmethod
    def remove_target(self, name: str) -> str:
        """Unregister ``name`` (its versions stay, for provenance); its last version."""
