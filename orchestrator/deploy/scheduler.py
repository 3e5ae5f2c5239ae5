"""``blocknas scheduler``: re-solve each hardware target's front whenever the target changes, and on cron.

Two APScheduler jobs, neither ever training anything:
- every ``scheduler.poll_seconds``: register watched files whose content changed (a new target version),
  then bring every registered target's front up to date with the stored block table;
- on ``scheduler.cron`` (crontab syntax, optional): the same check, e.g. to pick up blocks measured since.

A front is solved only when no front is stored for the same (block table, target version, budgets), so
the same inputs are never solved twice, even across scheduler restarts. Each re-search is logged as an
MLflow run. A failing check (the database restarting, a target that does not cover the space) is logged
and retried at the next tick; one target failing never stops the others' re-solves. SIGTERM or SIGINT
stops the scheduler cleanly.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from blocknas.orchestrator import tracking
from blocknas.orchestrator.deploy.fronts import TargetMismatchError, prepare, solve_target
from blocknas.orchestrator.pipeline.solve_stage import MissingScoresError
from blocknas.orchestrator.settings import RunSettings, SchedulerSettings
from blocknas.orchestrator.storage import PerformanceStore, RegisteredTarget, StorageError
from blocknas.orchestrator.targets import registry
from blocknas.orchestrator.targets.files import TargetFileError

log = logging.getLogger("blocknas.scheduler")


class TargetScheduler:
    """The checks the jobs run; usable without the scheduler loop (``check_once``)."""

    def __init__(self, settings: RunSettings, schedule: SchedulerSettings):
        self.settings, self.schedule = settings, schedule
        self.store = PerformanceStore(settings.storage_url)
        self._seen_files: dict[str, str] = {}
        self.researches = 0

    def _watched(self) -> None:
        for name, path in (self.schedule.watch or {}).items():
            try:
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            except OSError as exc:
                log.warning("watched file of %s unreadable (%s); keeping its registered version", name, exc.strerror)
                continue
            if self._seen_files.get(name) == digest:
                continue
            exists = any(e.name == name for e in self.store.registered_targets())
            try:
                result = registry.register(self.store, name, path, update=exists)
            except (TargetFileError, registry.TargetRegistryError) as exc:
                log.error("%s: not registered, the old version stays: %s", name, exc)
            else:
                if result["changed"]:
                    log.info("%s: file changed, version %s registered", name, result["version"])
            self._seen_files[name] = digest

    def check_once(self) -> int:
        """Register changed watched files, then re-solve every target whose front is not current."""
        self._watched()
        solved = 0
        for entry in self.store.registered_targets():
            try:
                started = time.perf_counter()
                base, ready = prepare(self.store, entry, self.settings)
                result = solve_target(self.store, base, ready, self.settings.solver.max_points)
            except (TargetMismatchError, MissingScoresError, registry.TargetRegistryError) as exc:
                log.error("%s: %s", entry.name, exc)
                continue
            except StorageError:
                raise  # the store itself: nothing else can be checked either; the tick retries
            except Exception:  # noqa: BLE001 - one target's failure never stops the others' re-solves
                log.exception("%s: re-solving version %s failed; the other targets go on", entry.name, entry.version)
                continue
            if result.solved:
                seconds = time.perf_counter() - started
                solved += 1
                self._log_research(entry, result.front, seconds)
                log.info(
                    "%s: front of version %s re-solved (%d points, %.3f s)",
                    entry.name,
                    entry.version,
                    len(result.front.points),
                    seconds,
                )
        self.researches += solved
        return solved

    def _log_research(self, entry: RegisteredTarget, front, seconds: float) -> None:
        try:
            uri, name = self.settings.tracking.uri, f"{front.experiment}-targets"
            experiment = tracking.prepare_experiment(uri, name, self.settings.tracking.artifact_location)
            run = tracking.start_run(
                uri,
                experiment,
                f"research-{entry.name}",
                tags={
                    "blocknas.kind": "research",
                    "blocknas.target": entry.name,
                    "blocknas.target_version": entry.version,
                    "blocknas.table_hash": front.table_hash,
                },
                params={"target": entry.name, "target_version": entry.version, "metric": front.metric},
            )
            tracking.finish_run(uri, run, {"front_points": len(front.points), "solve_seconds": seconds})
        except Exception as exc:  # noqa: BLE001
            log.warning("MLflow logging of the re-search of %s failed: %s", entry.name, exc)

    def tick(self) -> None:
        """One job run: never raises, so one failing check (a database restart) does not stop the service."""
        try:
            self.check_once()
        except StorageError as exc:
            log.error("performance table unavailable (%s); retrying at the next check", exc)
        except Exception:  # noqa: BLE001
            log.exception("check failed; retrying at the next check")


def serve(settings: RunSettings, schedule: SchedulerSettings) -> int:
    """Run until SIGTERM or SIGINT; returns the number of re-searches made."""
    worker = TargetScheduler(settings, schedule)
    scheduler = BlockingScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(
        worker.tick, "interval", seconds=schedule.poll_seconds, id="poll", next_run_time=datetime.now(UTC)
    )
    if schedule.cron:
        scheduler.add_job(worker.tick, CronTrigger.from_crontab(schedule.cron, timezone="UTC"), id="cron")

    def stop(signum, _frame) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "scheduler started: every %.1f s%s, %d watched files",
        schedule.poll_seconds,
        f" and on cron {schedule.cron!r}" if schedule.cron else "",
        len(schedule.watch or {}),
    )
    scheduler.start()  # blocks until shutdown
    log.info("scheduler stopped after %d re-searches", worker.researches)
    return worker.researches
