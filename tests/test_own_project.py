"""A user's own project end to end: its space, blocks, data loader and scorer (examples/digits_project), and a
third-party scorer pip-installed into a temporary location and found through the entry-point group."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.storage import PerformanceStore
from tests.conftest import summary_of

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[1] / "examples" / "digits_project"


def _cli(cwd: Path, home: Path, *args: str, pythonpath: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "BLOCKNAS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_the_example_project_runs_end_to_end(tmp_path):
    shown = _cli(PROJECT, tmp_path, "config", "show", "--config-dir", "conf", "experiment=digits")
    assert shown.returncode == 0, shown.stderr
    assert "factory: digits_nas.space:make_space" in shown.stdout and "# valid; config_hash" in shown.stdout
    result = _cli(PROJECT, tmp_path, "run", "--config-dir", "conf", "experiment=digits", "cluster.num_cpus=2",
                  "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = summary_of(result)
    # 3 slots x 4 of the project's blocks, one context network: 1 + 3 * 3 trainings measure 12 blocks.
    assert (summary["blocks_total"], summary["blocks_trained"], summary["evaluations"]) == (12, 12, 10)
    for target in ("flops", "params", "local_cpu"):
        points = summary["targets"][target]["pareto"]
        assert points and all(b.split(":")[1] in {"skip", "conv", "se", "bottleneck"}
                              for p in points for b in p["blocks"])
    scores = PerformanceStore(summary["store"]).block_scores(experiment="digits_blocks")
    assert len(scores) == 12 and all(s.status == "done" and 10 <= s.accuracy <= 100 for s in scores)
    assert len({s.accuracy for s in scores}) > 3  # the project's scorer really trained different networks
    client = MlflowClient(summary["tracking_uri"])
    experiment = client.get_experiment_by_name("digits_blocks")
    runs = client.search_runs([experiment.experiment_id], "tags.`blocknas.block` != ''")
    assert len(runs) == 12 and {r.data.params["scorer.kind"] for r in runs} == {"digits_nas.scoring:train_sgd"}
    again = _cli(PROJECT, tmp_path, "run", "--config-dir", "conf", "experiment=digits", "--no-progress")
    assert again.returncode == 0 and summary_of(again)["blocks_trained"] == 0


PLUGIN = {
    "pyproject.toml": """\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "blocknas-probe-scorer"
        version = "0.1"
        [project.entry-points."blocknas.scorers"]
        probe = "probe_scorer:probe"
        [tool.setuptools]
        py-modules = ["probe_scorer"]
        """,
    "probe_scorer.py": """\
        from dataclasses import dataclass

        import torch
        import torch.nn.functional as F


        @dataclass(frozen=True)
        class Settings:
            steps: int = 30
            seed: int = 0


        def probe(model, data, settings, device):
            split = data.split(1000, 500, settings.seed)
            optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
            for step in range(settings.steps):
                batch = slice(32 * step % 960, 32 * step % 960 + 32)
                loss = F.cross_entropy(model(split.train_x[batch]), split.train_y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                accuracy = (model(split.val_x).argmax(1) == split.val_y).float().mean().item() * 100
            return {"accuracy": accuracy, "probe_marker": 1}


        probe.Settings = Settings
        """,
}


def test_a_scorer_installed_as_a_plugin_is_found_by_its_entry_point(tmp_path):
    source, site, home = tmp_path / "plugin", tmp_path / "site", tmp_path / "home"
    source.mkdir()
    for name, text in PLUGIN.items():
        (source / name).write_text(textwrap.dedent(text))
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                                "--no-build-isolation", "--target", str(site), str(source)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    listed = _cli(PROJECT, home, "plugins", pythonpath=str(site))
    assert "probe" in listed.stdout.split("scorers", 1)[1].splitlines()[0]
    wrong = _cli(PROJECT, home, "run", "--config-dir", "conf", "experiment=digits", "scorer=swap_in",
                 "scorer.kind=probe", pythonpath=str(site))
    assert wrong.returncode == 2 and "unknown config key 'scorer.batch_size'" in wrong.stderr  # typed settings
    result = _cli(PROJECT, home, "run", "--config-dir", "conf", "experiment=digits", "~scorer", "+scorer.kind=probe",
                  "+scorer.steps=20", "space.options.slots=2", "--no-progress", pythonpath=str(site))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = summary_of(result)
    assert (summary["blocks_total"], summary["blocks_trained"]) == (8, 8)
    scores = PerformanceStore(summary["store"]).block_scores(experiment="digits_blocks")
    assert all(s.status == "done" for s in scores) and len({s.accuracy for s in scores}) > 2
