"""What a search reports while it runs, behind one observer with named hooks: the run's start and end, each
block's start, completion or error (in the Ray worker that measured it), and the solved fronts.

``MlflowObserver`` records them in MLflow (a parent run per ``run``/``solve``, a nested run per block);
``NoObserver`` records nothing, and is what a run gets when MLflow does not answer (the results are in the
performance table either way). Tracking is best effort: no hook ever fails a run or loses a result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from blocknas.orchestrator import tracking

if TYPE_CHECKING:
    from blocknas.orchestrator.planning import BlockJob
    from blocknas.workers.records import NetworkJob, NetworkResult

log = logging.getLogger(__name__)


class Observer(Protocol):
    experiment_id: str | None  # MLflow's ids, for the links a summary prints (None: not recorded)
    run_id: str | None

    def run_start(self, kind: str, tags: dict, params: dict) -> Observer:
        """A ``run`` or ``solve`` starts: returns the observer that records it (``NoObserver`` if it cannot)."""
        ...

    def block_start(self, block: BlockJob, job: NetworkJob, node: str, attempt: int) -> str | None:
        """A block's measurement starts (in its Ray worker): the id of its record, or None."""
        ...

    def block_complete(self, record: str | None, result: NetworkResult) -> None: ...

    def block_error(self, record: str | None, error: str) -> None: ...

    def front(self, files: list[Path], metrics: dict) -> None:
        """The fronts were solved: their files (JSON, PNG, figures, summary) and numbers."""
        ...

    def run_end(self, status: str, reason: str | None = None) -> None:
        """FINISHED, FAILED or KILLED (then the blocks in flight are closed too, with ``reason``)."""
        ...


@dataclass(frozen=True)
class NoObserver:
    """Records nothing."""

    experiment_id: str | None = None
    run_id: str | None = None

    def run_start(self, kind: str, tags: dict, params: dict) -> Observer:
        return self

    def block_start(self, block, job, node: str, attempt: int) -> str | None:
        return None

    def block_complete(self, record: str | None, result) -> None:
        pass

    def block_error(self, record: str | None, error: str) -> None:
        pass

    def front(self, files: list[Path], metrics: dict) -> None:
        pass

    def run_end(self, status: str, reason: str | None = None) -> None:
        pass


@dataclass(frozen=True)
class MlflowObserver:
    """MLflow at ``uri``: experiment ``experiment``, its parent run ``run_id`` once started. Frozen and small:
    it travels to the Ray workers, which record their blocks as nested runs."""

    uri: str
    experiment: str
    artifact_location: str = ""
    experiment_id: str | None = None
    run_id: str | None = None
    scorer_params: tuple[tuple[str, object], ...] = ()  # each block run's params besides its own

    def run_start(self, kind: str, tags: dict, params: dict) -> Observer:
        experiment_id, run_id = tracking.open_parent_run(
            self.uri,
            self.experiment,
            self.artifact_location,
            run_name=f"{kind}-{datetime.now():%Y%m%d-%H%M%S}",
            tags={"blocknas.experiment": self.experiment, "blocknas.kind": kind, **tags},
            params=params,
        )
        if run_id is None:  # MLflow did not answer (open_parent_run warned): the run goes on unrecorded
            return NoObserver()
        return MlflowObserver(
            self.uri, self.experiment, self.artifact_location, experiment_id, run_id, self.scorer_params
        )

    def block_start(self, block: BlockJob, job: NetworkJob, node: str, attempt: int) -> str | None:
        try:
            return tracking.start_run(
                self.uri,
                self.experiment_id,
                run_name=block.block_key,
                tags={
                    "blocknas.kind": "block",
                    "blocknas.search": self.run_id or "",
                    "blocknas.experiment": self.experiment,
                    "blocknas.block": block.block_key,
                    "blocknas.job_hash": block.job_hash,
                    "blocknas.network_hash": block.network_hash,
                    "blocknas.node": node,
                    "blocknas.attempt": attempt,
                },
                params={
                    "slot": block.slot,
                    "slot_index": block.slot_index,
                    "block": block.block_key,
                    "choice": block.choice,
                    "context_index": block.context_index,
                    "network": ",".join(job.choices),
                    **dict(self.scorer_params),
                },
                parent_run_id=self.run_id,
            )
        except Exception as exc:  # noqa: BLE001 - a tracking failure never loses a block result
            log.warning("MLflow logging failed for %s: %s", block.block_key, exc)
            return None

    def block_complete(self, record: str | None, result: NetworkResult) -> None:
        metrics = {k: v for k, v in result_metrics(result).items() if v is not None and k != "device"}
        self._finish_block(record, metrics, "FINISHED", {"blocknas.device": result.device}, result.curve)

    def block_error(self, record: str | None, error: str) -> None:
        self._finish_block(record, {}, "FAILED", {"blocknas.error": error or ""}, None)

    def _finish_block(self, record: str | None, metrics: dict, status: str, tags: dict, curve: dict | None) -> None:
        if record is None:
            return
        try:
            if curve:
                tracking.log_curve(self.uri, record, curve)
            tracking.finish_run(self.uri, record, metrics, status, tags)
        except Exception as exc:  # noqa: BLE001
            log.warning("MLflow logging failed for run %s: %s", record, exc)

    def front(self, files: list[Path], metrics: dict) -> None:
        tracking.best_effort("log the fronts", tracking.log_artifacts, self.uri, self.run_id, files)
        tracking.best_effort("log the front numbers", tracking.log_metrics, self.uri, self.run_id, metrics)

    def run_end(self, status: str, reason: str | None = None) -> None:
        if status == "KILLED":
            tracking.best_effort(
                "close the block runs in flight",
                tracking.close_children,
                self.uri,
                self.experiment_id,
                self.run_id,
                "KILLED",
                reason or "the run was stopped",
            )
        tracking.best_effort("close the run", tracking.finish_run, self.uri, self.run_id, status=status)


def result_metrics(result: NetworkResult) -> dict:
    """What a measurement reports, as the table and the block runs record it."""
    return {
        "accuracy": result.accuracy,
        "loss": result.loss,
        "train_loss": result.train_loss,
        "train_seconds": result.train_seconds,
        "params": result.params,
        "flops": result.flops,
        "device": result.device,
    }
