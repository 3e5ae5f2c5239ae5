"""A real multi-node Ray cluster on this machine (`ray start --head` plus a second `ray start --address`
node, separate processes with distinct node ids), a real `mlflow server` backed by PostgreSQL, and the
job submitted both as `blocknas run cluster.address=...` and through `ray job submit`."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from sqlalchemy import create_engine, text

from blocknas.orchestrator.storage import PerformanceStore
from blocknas.workers.machine import LABEL_ENV
from tests.conftest import POSTGRES_ENV, run_cli, stop_session

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / "ray"), *args], capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, f"ray {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


def _wait_for_dashboard(url: str, temp_dir: str, seconds: float = 180.0) -> None:
    """`ray start` returns before the dashboard (the job server) listens; on a busy machine that takes a while."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/version", timeout=5).close()
            return
        except urllib.error.HTTPError:  # it answers (token auth may refuse the request): it is up
            return
        except OSError:
            if time.monotonic() > deadline:
                logs = sorted(Path(temp_dir).glob("session_latest/logs/dashboard.*"))
                tail = logs[-1].read_text(errors="replace")[-2000:] if logs else "no dashboard log"
                pytest.fail(f"the Ray dashboard at {url} did not answer within {seconds:.0f} s:\n{tail}")
            time.sleep(1.0)


@pytest.fixture(scope="module")
def ray_cluster():
    """A head node and a worker node, each with 1 CPU and a custom resource naming it; token auth on."""
    # Workers at the tests' own priority (Ray's default nice 15 starves them on a busy CI machine).
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_worker_niceness": "0"}
    temp_dir = tempfile.mkdtemp(prefix="bnray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port, dashboard = _free_port(), _free_port()
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats", "--object-store-memory=200000000"]
    try:
        # Each node names itself (BLOCKNAS_MACHINE_LABEL): what a measured target's version and label hold.
        _ray(
            "start",
            "--head",
            f"--port={port}",
            '--resources={"head_node": 1}',
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            f"--temp-dir={temp_dir}",
            *common,
            env={**env, LABEL_ENV: "head-rig"},
        )
        _ray(
            "start",
            f"--address=127.0.0.1:{port}",
            '--resources={"worker_node": 1}',
            *common,
            env={**env, LABEL_ENV: "worker-rig"},
        )
        _wait_for_dashboard(f"http://127.0.0.1:{dashboard}", temp_dir)
        yield {"address": f"127.0.0.1:{port}", "dashboard": f"http://127.0.0.1:{dashboard}", "env": env}
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True, env=env, timeout=120)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def cluster_env(ray_cluster, monkeypatch):
    """The driver's environment: the cluster's auth token, as every client of the cluster needs it; the
    driver's machine has a label of its own, which no measurement must carry (the nodes time, not it)."""
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
        monkeypatch.setenv(key, ray_cluster["env"][key])
    monkeypatch.setenv(LABEL_ENV, "driver-box")
    return ray_cluster


def _node_ids(env: dict, address: str) -> set[str]:
    code = f"import ray; ray.init(address='{address}'); print(*[n['NodeID'] for n in ray.nodes() if n['Alive']])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    return set(out.stdout.split())


def test_blocks_run_on_more_than_one_node_of_an_existing_cluster(cluster_env, home, monkeypatch):
    nodes = _node_ids(cluster_env["env"], cluster_env["address"])
    assert len(nodes) == 2, "two separate Ray node processes"
    result = run_cli(
        home,
        "run",
        "experiment=smoke",
        f"cluster.address={cluster_env['address']}",
        "resources.cpus_per_block=1",
        "--no-progress",
        subprocess_=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scores = PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db").block_scores()
    assert len(scores) == 6 and all(s.status == "done" and s.attempts == 1 for s in scores)
    used = {s.node for s in scores}
    assert used <= nodes and len(used) == 2, f"blocks ran on {used}, cluster nodes {nodes}"
    assert all(s.device == "cpu" and s.host and s.pid for s in scores)
    _measured_by_a_node(home, ["experiment=smoke", f"cluster.address={cluster_env['address']}"], monkeypatch)


def _measured_by_a_node(home: Path, overrides: list[str], monkeypatch) -> None:
    """The measured target's costs carry the label and, in their version, the fingerprint of the node that
    timed them (the same node for both), never the driver's."""
    from blocknas.orchestrator.config import load_settings
    from blocknas.orchestrator.hashing import content_hash
    from blocknas.orchestrator.pipeline.cost_stage import space_hash_of
    from blocknas.workers.machine import machine_fingerprint

    monkeypatch.setenv("BLOCKNAS_HOME", str(home))
    settings = load_settings(overrides)
    spec = next(t for t in settings.targets if t.kind == "measured")
    with PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db").engine.connect() as connection:
        rows = set(
            connection.execute(
                text("SELECT target_version, measured_on FROM block_costs WHERE target = :t"), {"t": spec.name}
            ).all()
        )
    assert rows, "the measured target's costs are stored"
    for version, label in rows:
        node = label.split(" ", 1)[0]
        assert node in ("head-rig", "worker-rig"), f"measured on {label!r}, not by a cluster node"
        monkeypatch.setenv(LABEL_ENV, node)
        expected = content_hash(
            {
                "space": space_hash_of(settings.space_definition),
                "definition": spec.definition(),
                "machine": machine_fingerprint(),
            }
        )
        assert version == expected, f"the version of the costs timed on {node} is not {node}'s fingerprint"


@pytest.fixture(scope="module")
def postgres_database():
    """A fresh PostgreSQL database of its own (the MLflow server's backend store needs a whole one)."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set; .ci/run sets it to the local PostgreSQL server")
    name = f"blocknas_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no PostgreSQL server reachable at {base}: {exc}")
    yield base.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def mlflow_server(postgres_database, tmp_path_factory):
    """A real `mlflow server` on localhost whose backend store is PostgreSQL."""
    port = _free_port()
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    server = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            postgres_database,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--artifacts-destination",
            artifacts.as_uri(),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"mlflow server did not start: {server.stderr.read()[-3000:]}")
        time.sleep(0.5)
    yield uri
    stop_session(server)  # SIGTERM, then SIGKILL what a busy machine has not stopped in time


def test_ray_job_submit_with_postgresql_storage_and_an_mlflow_server(
    cluster_env, postgres_database, mlflow_server, tmp_path
):
    storage = f"{postgres_database}?options=-csearch_path%3Dpublic"
    entry = [
        sys.executable,
        "-m",
        "blocknas.orchestrator.cli",
        "run",
        "experiment=smoke",
        "scorer.steps=60",
        "cluster.address=auto",
        f"storage.url='{storage}'",
        f"tracking.uri={mlflow_server}",
        "--no-progress",
    ]
    env_json = json.dumps({"env_vars": {"BLOCKNAS_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}})
    submit = [str(BIN / "ray"), "job", "submit", "--address", cluster_env["dashboard"], "--runtime-env-json", env_json]
    deadline = time.monotonic() + 180
    while True:
        result = subprocess.run(
            [*submit, "--", *entry], capture_output=True, text=True, env=cluster_env["env"], timeout=600
        )
        # The job server answers before its agents register (slowly on a busy machine); Ray says to retry.
        if "No available agent to submit job" not in result.stdout + result.stderr or time.monotonic() > deadline:
            break
        time.sleep(2.0)
    assert result.returncode == 0 and "succeeded" in result.stdout + result.stderr, result.stdout[-3000:]
    [summary_line] = [line for line in result.stdout.splitlines() if line.startswith("summary: ")]
    summary = json.loads(Path(summary_line.removeprefix("summary: ")).read_text())
    assert summary["store"].startswith("postgresql") and summary["tracking_uri"] == mlflow_server

    scores = PerformanceStore(storage).block_scores()
    assert len(scores) == 6 and all(s.status == "done" for s in scores)
    assert len({s.node for s in scores}) >= 1
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("smoke")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    blocks = {r.data.tags.get("blocknas.job_hash"): r for r in runs if "blocknas.job_hash" in r.data.tags}
    assert set(blocks) == {s.job_hash for s in scores}
    assert all(r.info.status == "FINISHED" and r.data.tags["blocknas.node"] for r in blocks.values())
    parent = client.get_run(summary["mlflow_run_id"])
    assert parent.info.status == "FINISHED"
    assert any(a.path == "summary.json" for a in client.list_artifacts(parent.info.run_id))
