"""The driver side of measuring blocks: leases, so that no two drivers train the same block.

A driver claims the blocks it is about to submit (``PerformanceStore.claim``) and renews its leases
from a background thread. Blocks leased by another live driver are waited for, not trained again; a
lease that is not renewed within ``cluster.lease_seconds`` (its driver was killed) is taken over. When
the driver stops, whatever it still holds is released as failed, so nothing stays queued or running.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from blocknas.orchestrator.distributed.tasks import TaskContext, TaskOutcome, block_row, run_block_jobs, start_ray
from blocknas.orchestrator.planning import Plan, pending_networks
from blocknas.orchestrator.settings import ClusterSettings
from blocknas.orchestrator.storage import PerformanceStore, StorageError

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews one driver's leases every ``lease_seconds / 4`` until closed; then releases what is left."""

    def __init__(self, store: PerformanceStore, lease_seconds: float):
        self.store = store
        self.lease_seconds = lease_seconds
        self.owner = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="blocknas-lease", daemon=True)

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_seconds / 4):
            try:
                self.store.heartbeat(self.owner)
            except StorageError as exc:  # the store retried already; keep trying, the lease may lapse
                log.warning("could not renew block leases: %s", exc)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        try:
            released = self.store.release(self.owner, f"abandoned: driver {self.owner} stopped before it finished")
            if released:
                log.warning("released %d unfinished blocks; the next `blocknas run` measures them", released)
        except StorageError as exc:
            log.warning("could not release block leases (they lapse after %.0f s): %s", self.lease_seconds, exc)


def measure_blocks(
    store: PerformanceStore,
    plan: Plan,
    ctx: TaskContext,
    cluster: ClusterSettings,
    lease: LeaseKeeper,
    show_progress: bool = True,
) -> list[TaskOutcome]:
    """Measure every block of ``plan`` not yet done, each at most once across all drivers.

    Each pass claims what is free, runs it on Ray, and waits for blocks other drivers hold. A block this
    driver attempted and that failed is not retried in the same run.
    """
    all_hashes = {b.job_hash for b in plan.blocks}
    outcomes: list[TaskOutcome] = []
    attempted: set[str] = set()
    said_waiting = False
    while True:
        done = store.done_job_hashes(list(all_hashes))
        open_blocks = [b for b in plan.blocks if b.job_hash not in done | attempted]
        if not open_blocks:
            return outcomes
        claimed = store.claim([block_row(b, ctx) for b in open_blocks], lease.owner, cluster.lease_seconds)
        if claimed:
            start_ray(cluster)
            pending = pending_networks(plan, all_hashes - claimed)
            outcomes += run_block_jobs(pending, plan.networks, ctx, cluster, show_progress)
            attempted |= claimed
            continue
        if not said_waiting:
            print(
                f"{len(open_blocks)} blocks are being measured by another driver; waiting for them (a driver "
                f"that stops renewing its lease for {cluster.lease_seconds:.0f} s is taken over)",
                flush=True,
            )
            said_waiting = True
        time.sleep(min(2.0, cluster.lease_seconds / 4))
