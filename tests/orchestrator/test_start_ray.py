"""The embedded default starts a Ray instance of its own, whatever cluster the environment points at, and its
workers run at the driver's priority (Ray's default nice 15 starves a run on a busy machine)."""

import os
import subprocess
import sys

import pytest

SCRIPT = """
import ray
from blocknas.orchestrator.config import ClusterSettings
from blocknas.orchestrator.distributed.tasks import start_ray
start_ray(ClusterSettings(address=None, num_cpus=1, cpus_per_block=1, gpus_per_block=0, max_retries=0,
                          object_store_mb=80))
print("answer", ray.get(ray.remote(lambda: 6 * 7).remote()))
print("worker nice", ray.get(ray.remote(lambda: __import__("os").nice(0)).remote()))
ray.shutdown()
"""


@pytest.mark.slow  # starts a Ray instance and trains
def test_a_local_run_ignores_a_stale_cluster_address_and_its_workers_are_not_deprioritised(tmp_path):
    # what a `ray start` cluster that died without `ray stop` leaves behind: an address nothing answers at
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300, cwd=os.getcwd()
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "answer 42" in result.stdout
    assert f"worker nice {os.nice(0)}" in result.stdout  # the driver's niceness, not Ray's 15
