"""`blocknas scheduler` in a real subprocess: notices a target change, stores the new front once, logs the
re-search to MLflow, survives the database dropping its connections, and exits cleanly on SIGTERM."""

from __future__ import annotations

import ipaddress
import json
import signal
import time

import pytest
from mlflow.tracking import MlflowClient
from sqlalchemy import create_engine, text

from blocknas.orchestrator.deploy.fronts import LIBRARY
from blocknas.orchestrator.storage import PerformanceStore
from tests.conftest import kill_session, listening_sockets, session_pids, start_cli, wait_for
from tests.orchestrator.test_switching import library

pytestmark = pytest.mark.slow


def _fronts(store: PerformanceStore) -> list:
    from sqlalchemy import select

    from blocknas.orchestrator.storage._models import ParetoFrontRow

    with store.engine.connect() as c:
        return list(c.execute(select(ParetoFrontRow.target_version).where(ParetoFrontRow.target == "edge")))


def test_scheduler_resolves_each_new_version_once_and_stops_on_sigterm(home, store_url):
    lib = home / "edge.json"
    lib.write_text(json.dumps(library(6, 4, seed=3)))
    store = PerformanceStore(store_url)
    # Its connections are named, so that only they are cut below (other tests may share the server).
    named = (
        f"{store_url}{'&' if '?' in store_url else '?'}application_name=blocknas-scheduler-test"
        if store_url.startswith("postgresql")
        else store_url
    )
    proc = start_cli(
        home, "scheduler", f"storage.url='{named}'", "scheduler.poll_seconds=0.5", f"+scheduler.watch.edge={lib}"
    )
    try:
        first = wait_for(lambda: store.latest_front(LIBRARY, "edge"), 120, "the first front", proc)
        if store_url.startswith("postgresql"):  # a database restart, as the scheduler sees it
            admin = create_engine(store_url)
            with admin.begin() as c:
                cut = c.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = 'blocknas-scheduler-test'"
                    )
                ).scalar()
            assert cut >= 1, "the scheduler's connections were cut"
            admin.dispose()
        lib.write_text(json.dumps(library(6, 4, seed=4)))  # a new version of the target
        second = wait_for(
            lambda: (f := store.latest_front(LIBRARY, "edge")) and f.target_version != first.target_version and f,
            120,
            "the new version's front",
            proc,
        )
        time.sleep(2.0)  # several more checks: nothing is solved again
        sockets = listening_sockets(session_pids(proc.pid))
        assert all(ipaddress.ip_address(address).is_loopback for address, _, _ in sockets), sockets
        assert sorted(v for (v,) in _fronts(store)) == sorted([first.target_version, second.target_version])
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        kill_session(proc.pid)
    assert proc.returncode == 0, err[-2000:]
    assert "SIGTERM received: stopping" in out and "stopped after 2 re-searches" in out
    client = MlflowClient(f"sqlite:///{home}/.blocknas/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name(f"{LIBRARY}-targets").experiment_id])
    assert sorted(r.data.tags["blocknas.target_version"] for r in runs) == sorted(
        [first.target_version, second.target_version]
    )


def test_a_bad_schedule_is_refused_before_starting(home):
    from tests.conftest import run_cli

    result = run_cli(home, "scheduler", "scheduler.cron='every day'")
    assert result.returncode == 2 and "is not a crontab expression" in result.stderr
