"""Faults injected into real processes: a worker or the driver killed with SIGKILL mid-run, database
errors during writes, two drivers at once. Nothing that finished is lost or recorded twice."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from sqlalchemy import text

from blocknas.orchestrator.storage import PerformanceStore, StorageError
from tests.conftest import kill_session, postgres_schema, run_cli, start_cli, summary_of, wait_for

pytestmark = pytest.mark.slow
SLOW_SMOKE = ("experiment=smoke", "scorer.steps=500", "--no-progress")  # ~3 s per network: time to strike


def _scores(url: str):
    try:
        return PerformanceStore(url, create=False).block_scores()
    except StorageError:  # not created yet
        return []


def _mlflow_runs(home: Path, job_hash: str):
    client = MlflowClient(f"sqlite:///{home}/.blocknas/mlflow.db")
    experiment = client.get_experiment_by_name("smoke")
    return client.search_runs([experiment.experiment_id], f"tags.`blocknas.job_hash` = '{job_hash}'")


def _finish(proc: subprocess.Popen, timeout: int = 600) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill_session(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_a_worker_killed_mid_block_is_retried_and_recorded_once(home):
    url = f"sqlite:///{home}/.blocknas/perf.db"
    proc = start_cli(home, "run", *SLOW_SMOKE)
    victim = wait_for(
        lambda: next((s for s in _scores(url) if s.status == "running" and s.mlflow_run_id), None),
        180,
        "a block to start training (its row running, its MLflow run open)",
        proc,
    )
    os.kill(victim.pid, signal.SIGKILL)
    result = _finish(proc)
    assert result.returncode == 0, result.stderr[-3000:]

    scores = _scores(url)
    assert len(scores) == len({s.job_hash for s in scores}) == 6
    assert all(s.status == "done" and s.accuracy is not None for s in scores)
    for s in scores:
        assert s.attempts == (2 if s.network_hash == victim.network_hash else 1), s
    runs = _mlflow_runs(home, victim.job_hash)
    by_attempt = {r.data.tags["blocknas.attempt"]: r for r in runs}
    assert sorted(by_attempt) == ["1", "2"]
    assert by_attempt["1"].info.status == "FAILED"
    assert "attempt 1 lost: its worker process died" in by_attempt["1"].data.tags["blocknas.error"]
    assert by_attempt["2"].info.status == "FINISHED" and "accuracy" in by_attempt["2"].data.metrics


def test_a_killed_driver_is_resumed_by_the_next_run_which_trains_only_the_rest(home):
    url = f"sqlite:///{home}/.blocknas/perf.db"
    args = (*SLOW_SMOKE, "cluster.lease_seconds=4")
    first = start_cli(home, "run", *args)
    wait_for(lambda: any(s.status == "done" for s in _scores(url)), 240, "the first block to finish", first)
    kill_session(first.pid)  # the driver and the Ray instance it started, all at once
    first.communicate(timeout=60)
    before = {s.job_hash: s for s in _scores(url)}
    done_before = {h for h, s in before.items() if s.status == "done"}
    assert 0 < len(done_before) < 6
    assert any(s.status in ("queued", "running") for s in before.values()), "the dead driver left leases behind"

    second = run_cli(home, "run", *args, subprocess_=True)
    assert second.returncode == 0, second.stderr[-3000:]
    summary = summary_of(second)
    assert summary["blocks_trained"] == 6 - len(done_before)
    after = {s.job_hash: s for s in _scores(url)}
    assert all(s.status == "done" for s in after.values()), "nothing stays queued or running"
    for h in done_before:  # finished blocks are neither lost nor measured again
        assert (after[h].finished_at, after[h].accuracy, after[h].attempts) == (
            before[h].finished_at,
            before[h].accuracy,
            before[h].attempts,
        )
    client = MlflowClient(f"sqlite:///{home}/.blocknas/mlflow.db")
    for s in after.values():  # every block run holds its table value once, those of the killed driver too
        assert len(client.get_metric_history(s.mlflow_run_id, "value")) == 1, s.block
    experiment = client.get_experiment_by_name("smoke").experiment_id
    parents = client.search_runs([experiment], "tags.`blocknas.kind` = 'run'", order_by=["attributes.start_time"])
    assert [r.info.status for r in parents] == ["FAILED", "FINISHED"]  # the dead driver's, closed by the next
    assert "died before closing it" in parents[0].data.tags["blocknas.error"]
    assert "RUNNING" not in {r.info.status for r in client.search_runs([experiment])}


def test_two_drivers_started_at_once_train_no_block_twice(home):
    url = f"sqlite:///{home}/.blocknas/perf.db"
    args = ("experiment=smoke", "scorer.steps=300", "--no-progress", "cluster.num_cpus=1")
    drivers = [start_cli(home, "run", *args) for _ in range(2)]
    results = [_finish(d) for d in drivers]
    for r in results:
        assert r.returncode == 0, r.stderr[-3000:]
    scores = _scores(url)
    assert len(scores) == 6 and all(s.status == "done" and s.attempts == 1 for s in scores)
    summaries = [summary_of(r) for r in results]
    assert sum(s["blocks_trained"] for s in summaries) == 6
    for s in summaries:  # what the driver did not train, it found done or waited for another driver to measure
        assert (
            s["blocks_trained"] + s["blocks_cached"] + s["blocks_by_other_drivers"] == 6
            and s["blocks_by_other_drivers"] >= 0
        )
    assert summaries[0]["table_hash"] == summaries[1]["table_hash"], "both solved on the same block table"
    for s in scores:
        assert [r.info.status for r in _mlflow_runs(home, s.job_hash)] == ["FINISHED"]


def test_transient_database_errors_are_retried_and_a_permanent_one_fails_only_its_blocks(home):
    """Real PostgreSQL errors raised on demand by triggers: a serialization failure on the first two
    result writes (transient), and an exception on every write of one network's results (permanent)."""
    base = os.environ.get("BLOCKNAS_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("BLOCKNAS_TEST_POSTGRES_URL is not set; .ci/run sets it to the local PostgreSQL server")
    with postgres_schema(base) as (schema, admin):
        url = f"{base}?options=-csearch_path%3D{schema}"
        PerformanceStore(url)
        with admin.begin() as c:
            c.execute(text(f'SET search_path TO "{schema}"'))
            c.execute(text("CREATE SEQUENCE injected"))  # nextval() survives the rollback of its transaction
            c.execute(
                text("""
                CREATE FUNCTION inject() RETURNS trigger AS $$
                BEGIN
                  IF NEW.status = 'done' AND OLD.status <> 'done' THEN
                    IF NEW.slot_index = 1 AND NEW.choice_index = 2 THEN
                      RAISE EXCEPTION 'injected permanent failure';
                    END IF;
                    IF nextval('injected') <= 2 THEN
                      RAISE EXCEPTION 'injected transient failure' USING ERRCODE = 'serialization_failure';
                    END IF;
                  END IF;
                  RETURN NEW;
                END $$ LANGUAGE plpgsql""")
            )
            c.execute(
                text("CREATE TRIGGER inject BEFORE UPDATE ON block_scores FOR EACH ROW EXECUTE FUNCTION inject()")
            )
        result = run_cli(home, "run", "experiment=smoke", "--no-progress", f"storage.url='{url}'", subprocess_=True)
        assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
        assert "blocks failed" in result.stderr and "--status failed" in result.stderr

        scores = PerformanceStore(url).block_scores()
        failed = [s for s in scores if s.status == "failed"]
        assert failed and len({s.network_hash for s in failed}) == 1, "only the poisoned network's blocks fail"
        assert any(s.slot_index == 1 and s.choice_index == 2 for s in failed)
        for s in failed:
            assert "could not be stored" in s.error and "injected permanent failure" in s.error
        done = [s for s in scores if s.status == "done"]
        assert len(done) + len(failed) == 6 and all(s.attempts == 1 for s in done)
        with admin.connect() as c:  # two transient failures, then (at least) one successful write per done block
            assert c.execute(text(f'SELECT last_value FROM "{schema}".injected')).scalar() >= 2 + len(done)


class _HungServer:
    """A server on 127.0.0.1 that accepts connections and never answers; ``health=True``: it answers
    ``GET /health`` (as an MLflow server does) and hangs on everything else."""

    def __init__(self, health: bool):
        import socket
        import threading

        self.health, self.sockets, self.stop = health, [], threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.sockets.append(conn)
            if self.health:
                conn.settimeout(5)
                try:
                    if conn.recv(4096).startswith(b"GET /health"):
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")
                        conn.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for s in [self.listener, *self.sockets]:
            s.close()


@pytest.mark.parametrize("health", [False, True], ids=["hangs-on-connect", "hangs-after-health"])
def test_a_hung_tracking_server_turns_tracking_off_and_the_run_goes_on(home, health):
    import time

    server = _HungServer(health)
    try:
        started = time.monotonic()
        result = run_cli(
            home,
            "run",
            "experiment=smoke",
            "--no-progress",
            f"tracking.uri=http://127.0.0.1:{server.port}",
            subprocess_=True,
            timeout=900,
        )
        seconds = time.monotonic() - started
    finally:
        server.close()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tracking is off" in result.stderr and "Traceback" not in result.stderr, result.stderr[-3000:]
    summary = summary_of(result)
    assert summary["blocks_trained"] == 6 and summary["mlflow_run_id"] is None
    assert seconds < 300, seconds  # MLflow's own retries of a hung server: 8 x 120 s per call


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MB tmpfs: a real disk that fills up (mounting needs root; the test skips, saying so, without)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({done.stderr.strip()}); run as root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_the_run_cleanly_with_no_truncated_file(home, full_disk):
    result = run_cli(
        home, "run", "experiment=smoke", "--no-progress", f"paths.output_dir={full_disk}", subprocess_=True
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "no space left on the device" in result.stderr and "Traceback" not in result.stderr, result.stderr
    written = [p for p in full_disk.rglob("*") if p.is_file()]
    assert not [p for p in written if ".tmp" in p.name], written  # no temporary file left behind
    for page in (p for p in written if p.suffix == ".html"):
        assert page.read_text().rstrip().endswith("</html>"), page  # whole, or not there at all
    scores = _scores(f"sqlite:///{home}/.blocknas/perf.db")
    assert len(scores) == 6 and all(s.status == "done" for s in scores)  # the blocks are kept
    client = MlflowClient(f"sqlite:///{home}/.blocknas/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id], "tags.`blocknas.kind` = 'run'")
    assert [r.info.status for r in runs] == ["FAILED"]
