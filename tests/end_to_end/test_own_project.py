"""A user's own project end to end: its space, blocks, data loader and scorer (examples/digits_project), and a
third-party scorer pip-installed into a temporary location and found through the entry-point group."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from blocknas.orchestrator.storage import PerformanceStore
from tests.conftest import FLAT_SPACE, summary_of

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[2] / "examples" / "digits_project"


def _cli(cwd: Path, home: Path, *args: str, pythonpath: str = "", imports: bool = False) -> subprocess.CompletedProcess:
    """``blocknas *args`` in ``cwd``; ``imports``: Python lists every module it imports on stderr."""
    env = {**os.environ, "BLOCKNAS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    if imports:
        env["PYTHONPROFILEIMPORTTIME"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "blocknas.orchestrator.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_example_project_runs_end_to_end(tmp_path):
    shown = _cli(PROJECT, tmp_path, "config", "show", "--config-dir", "conf", "experiment=digits")
    assert shown.returncode == 0, shown.stderr
    assert "factory: digits_nas.space:make_space" in shown.stdout and "# valid; config_hash" in shown.stdout
    result = _cli(
        PROJECT, tmp_path, "run", "--config-dir", "conf", "experiment=digits", "cluster.num_cpus=2", "--no-progress"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = summary_of(result)
    # 3 slots x 4 of the project's blocks, one context network: 1 + 3 * 3 trainings measure 12 blocks.
    assert (summary["blocks_total"], summary["blocks_trained"], summary["evaluations"]) == (12, 12, 10)
    for target in ("flops", "params", "local_cpu"):
        points = summary["targets"][target]["pareto"]
        assert points and all(
            b.split(":")[1] in {"skip", "conv", "se", "bottleneck"} for p in points for b in p["blocks"]
        )
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


def _install(files: dict[str, str], source: Path, site: Path) -> None:
    """A plugin package of ``files`` pip-installed into the folder ``site`` (put on PYTHONPATH to use it)."""
    source.mkdir()
    for name, text in files.items():
        (source / name).write_text(textwrap.dedent(text))
    command = ["pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation", "--target"]
    installed = subprocess.run(
        [sys.executable, "-m", *command, str(site), str(source)], capture_output=True, text=True, timeout=300
    )
    assert installed.returncode == 0, installed.stderr


def test_a_scorer_installed_as_a_plugin_is_found_by_its_entry_point(tmp_path):
    source, site, home = tmp_path / "plugin", tmp_path / "site", tmp_path / "home"
    _install(PLUGIN, source, site)
    listed = _cli(PROJECT, home, "plugins", pythonpath=str(site))
    assert "probe" in listed.stdout.split("scorers", 1)[1].splitlines()[0]
    wrong = _cli(
        PROJECT,
        home,
        "run",
        "--config-dir",
        "conf",
        "experiment=digits",
        "scorer=swap_in",
        "scorer.kind=probe",
        pythonpath=str(site),
    )
    assert wrong.returncode == 2 and "unknown config key 'scorer.batch_size'" in wrong.stderr  # typed settings
    result = _cli(
        PROJECT,
        home,
        "run",
        "--config-dir",
        "conf",
        "experiment=digits",
        "~scorer",
        "+scorer.kind=probe",
        "+scorer.steps=20",
        "space.options.slots=2",
        "--no-progress",
        pythonpath=str(site),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = summary_of(result)
    assert (summary["blocks_total"], summary["blocks_trained"]) == (8, 8)
    scores = PerformanceStore(summary["store"]).block_scores(experiment="digits_blocks")
    assert all(s.status == "done" for s in scores) and len({s.accuracy for s in scores}) > 2


SIZE_SCORER = """\
OFFSET = {offset}


def size_score(model, data, settings, device):
    \"\"\"No training: an accuracy from the network's size, and the offset this file's version sets.\"\"\"
    return {{"accuracy": OFFSET + sum(p.numel() for p in model.parameters()) % 40}}
"""


def _shown_front(project: Path, home: Path, config: tuple[str, ...]) -> tuple[list[float], bool]:
    """``fronts show local_cpu --json``: the front's predicted accuracies, and whether torch was imported."""
    shown = _cli(project, home, "fronts", "show", "local_cpu", *config, "--json", imports=True)
    assert shown.returncode == 0, shown.stderr[-3000:]
    imported_torch = re.search(r"\|\s+torch$", shown.stderr, re.MULTILINE) is not None
    return [p["predicted_accuracy"] for p in json.loads(shown.stdout)["points"]], imported_torch


def test_a_changed_scorer_re_measures_every_block_and_no_answer_reads_the_old_results(tmp_path):
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    scorer = project / "my_scoring.py"
    scorer.write_text(SIZE_SCORER.format(offset=50))
    config = ("experiment=smoke", "~scorer", "+scorer.kind=my_scoring:size_score")
    args = ("run", *config, "--no-progress")

    first = _cli(project, home, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert summary_of(first)["blocks_trained"] == 6 and "code changed" not in first.stdout
    same = _cli(project, home, *args)
    assert same.returncode == 0 and summary_of(same)["blocks_trained"] == 0, same.stdout[-2000:]
    # The first read builds the space (torch) and saves the experiment's read snapshot; the next reads it.
    front, imported_torch = _shown_front(project, home, config)
    assert imported_torch and list((home / ".blocknas" / "reads").glob("smoke-*.json"))
    assert _shown_front(project, home, config) == (front, False)

    scorer.write_text(SIZE_SCORER.format(offset=30))  # the code changed; no setting did
    stale = _cli(project, home, "fronts", "show", "local_cpu", *config)  # the snapshot is not this code's
    assert stale.returncode == 1 and "run" in stale.stderr, stale.stderr[-2000:]
    changed = _cli(project, home, *args)
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert summary_of(changed)["blocks_trained"] == 6
    assert "6 already done" not in changed.stdout
    assert "code changed (my_scoring.py): 6 to measure" in changed.stdout, changed.stdout[:2000]
    scores = PerformanceStore(summary_of(changed)["store"]).block_scores(experiment="smoke")
    by_block: dict[str, list[float]] = {}
    for row in scores:  # both versions' results are kept, each under the hash of its own code
        by_block.setdefault(row.block, []).append(row.accuracy)
    assert len(by_block) == 6 and all(len(v) == 2 for v in by_block.values()), by_block
    assert all(max(v) - min(v) == pytest.approx(20) for v in by_block.values())  # each network, scored anew
    assert _shown_front(project, home, config)[0] == pytest.approx([a - 20 for a in front])


LOSS_SCORER = """\
def loss_score(model, data, settings, device):
    \"\"\"No training: a loss from the network's size (and an accuracy that is the same for every network).\"\"\"
    return {"accuracy": 50.0, "loss": 1.0 + sum(p.numel() for p in model.parameters()) % 7 / 10}
"""


def test_a_run_minimises_the_objective_its_scorer_names_and_every_answer_names_it(tmp_path):
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    (project / "my_loss.py").write_text(LOSS_SCORER)
    config = ("experiment=smoke", "~scorer", "+scorer.kind=my_loss:loss_score", "+scorer.direction=minimize")
    misspelt = _cli(project, home, "run", *config, "+scorer.objective=val_loss", "--no-progress")
    assert misspelt.returncode == 2, misspelt.stderr[-2000:]
    assert (
        "hold a finite number under 'val_loss'" in misspelt.stderr and "(its keys: accuracy, loss)" in misspelt.stderr
    )

    result = _cli(project, home, "run", *config, "+scorer.objective=loss", "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = summary_of(result)
    scores = PerformanceStore(summary["store"]).block_scores(experiment="smoke", status="done")
    assert len(scores) == 6 and all(s.accuracy == pytest.approx(-s.loss) for s in scores)  # stored: minus loss
    front = summary["targets"]["params"]["pareto"]
    answers = [p["answer"]["objective"] for p in front]
    assert {(a["name"], a["direction"]) for a in answers} == {("loss", "minimize")}
    assert [a["predicted"] for a in answers] == pytest.approx([-p["predicted_accuracy"] for p in front])
    assert answers[-1]["predicted"] < answers[0]["predicted"]  # the most expensive point: the least loss
    shown = _cli(project, home, "blocks", *config, "+scorer.objective=loss")
    assert shown.returncode == 0 and shown.stdout.splitlines()[0].split()[4] == "loss", shown.stdout[:500]


# The project's modules moved into folders named like blocknas's own (its packages were top-level once).
COLLIDING = {"space.py": "workers", "blocks.py": "dashboards", "data.py": "orchestrator", "scoring.py": "solvers"}


def test_a_project_with_folders_named_like_blocknas_packages_runs(tmp_path):
    """A user's own ``workers/``, ``solvers/``, ``orchestrator/``, ``dashboards/`` and ``conf/`` are theirs:
    blocknas imports only as ``blocknas.*``, so the config's import paths reach the user's modules."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT / "conf", project / "conf")
    for module, folder in COLLIDING.items():
        (project / folder).mkdir()
        (project / folder / "__init__.py").write_text("")
        text = (PROJECT / "digits_nas" / module).read_text()
        for other, other_folder in COLLIDING.items():
            text = text.replace(f"digits_nas.{other[:-3]}", f"{other_folder}.{other[:-3]}")
        (project / folder / module).write_text(text)
    for config in (project / "conf").rglob("*.yaml"):
        text = config.read_text()
        for module, folder in COLLIDING.items():
            text = text.replace(f"digits_nas.{module[:-3]}", f"{folder}.{module[:-3]}")
        config.write_text(text)
    result = _cli(
        project,
        tmp_path / "home",
        "run",
        "--config-dir",
        "conf",
        "experiment=digits",
        "space.options.slots=2",
        "scorer.epochs=1",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = summary_of(result)
    assert (summary["blocks_total"], summary["blocks_trained"]) == (8, 8)
    runs = MlflowClient(summary["tracking_uri"]).search_runs(
        [MlflowClient(summary["tracking_uri"]).get_experiment_by_name("digits_blocks").experiment_id],
        "tags.`blocknas.block` != ''",
    )
    assert {r.data.params["scorer.kind"] for r in runs} == {"solvers.scoring:train_sgd"}


EXTENSIONS = {
    "pyproject.toml": """\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "blocknas-probe-extensions"
        version = "0.1"
        [project.entry-points."blocknas.search_methods"]
        greedy = "probe_extensions:greedy"
        [project.entry-points."blocknas.predictors"]
        halved = "probe_extensions:halved"
        [project.entry-points."blocknas.target_kinds"]
        energy_model = "probe_extensions:ENERGY_MODEL"
        [tool.setuptools]
        py-modules = ["probe_extensions"]
        """,
    "probe_extensions.py": """\
        from dataclasses import dataclass, replace

        from blocknas.orchestrator.predictors import LinearPrediction
        from blocknas.orchestrator.targets.kinds import TargetKind, TargetSpec
        from blocknas.workers.costs import CostTable, analytic_costs


        @dataclass(frozen=True)
        class GreedySettings:
            evaluations: int = 4


        def greedy(problem, settings, seed):
            \"\"\"Coordinate ascent from the cheapest allowed network, one slot's options per batch.\"\"\"
            best = problem.cheapest_allowed(next(iter(problem.budgets)))
            problem.evaluate([best])
            while problem.remaining > 0 and len(problem.accuracy) < settings.evaluations:
                before = len(problem.accuracy)
                for slot, options in enumerate(problem.sizes):
                    problem.evaluate([best[:slot] + (o,) + best[slot + 1:] for o in range(options)])
                    best = problem.pick
                if len(problem.accuracy) == before:
                    break


        greedy.Settings = GreedySettings


        def halved(space, table, measured):
            return LinearPrediction(replace(table, accuracy=tuple(a * 0.5 for a in table.accuracy)))


        @dataclass(frozen=True)
        class EnergySettings:
            kind: str
            metric: str = "energy_mj"
            millijoules_per_mac: float = 1e-6


        def _spec(name, s):
            return TargetSpec(name, s.kind, s.metric, options=(("millijoules_per_mac", s.millijoules_per_mac),))


        def _costs(settings, plan, target):
            flops, scale = analytic_costs(settings.space, "flops"), dict(target.options)["millijoules_per_mac"]
            return CostTable("energy_mj", flops.fixed * scale, {k: v * scale for k, v in flops.blocks.items()}), None


        ENERGY_MODEL = TargetKind(EnergySettings, _spec, _costs)
        """,
}


def test_a_search_method_a_predictor_and_a_target_kind_from_entry_points_alone(tmp_path, monkeypatch):
    """A package installed into a temporary location extends blocknas by entry points alone: `plugins` lists
    each extension, and `blocknas run` searches with its method, predicts with its predictor and costs with
    its target kind."""
    from blocknas.orchestrator.config import load_settings
    from blocknas.orchestrator.experiments import experiment_table

    source, site, home = tmp_path / "plugin", tmp_path / "site", tmp_path / "home"
    _install(EXTENSIONS, source, site)
    listed = _cli(tmp_path, home, "plugins", pythonpath=str(site)).stdout
    for kind, name in (("search methods", "greedy"), ("predictors", "halved"), ("target kinds", "energy_model")):
        line = next(line for line in listed.splitlines() if line.startswith(kind))
        assert name in line, listed
    energy = ("+targets.energy.kind=energy_model", "+targets.energy.millijoules_per_mac=2e-6", "scorer.steps=30")
    searched = _cli(
        tmp_path,
        home,
        "run",
        "experiment=smoke",
        "search.method=greedy",
        "+search.evaluations=4",
        "+solver.budgets.flops=1e9",
        *energy,
        "--no-progress",
        pythonpath=str(site),
    )
    assert searched.returncode == 0, searched.stderr[-3000:]
    search = summary_of(searched)["search"]
    assert search["method"] == "greedy" and search["evaluations"] == search["verified_now"] == 4
    assert search["pick"]["costs"]["energy"] == pytest.approx(search["pick"]["costs"]["flops"] * 2e-6)

    solved = _cli(
        tmp_path,
        home,
        "run",
        "experiment=smoke",
        "solver.predictor=halved",
        *energy,
        "--no-progress",
        pythonpath=str(site),
    )
    assert solved.returncode == 0, solved.stderr[-3000:]
    summary = summary_of(solved)
    monkeypatch.setenv("BLOCKNAS_HOME", str(home))
    monkeypatch.syspath_prepend(str(site))  # the entry points of the installed extensions, read here too
    table = experiment_table(load_settings(["experiment=smoke", *energy]))
    points = summary["targets"]["energy"]["pareto"]
    assert points and summary["targets"]["energy"]["metric"] == "energy_mj"
    for point in points:
        picks = [slot.index(b.split(":", 1)[1]) for slot, b in zip(table.choices, point["blocks"], strict=True)]
        halved = table.accuracy_offset + 0.5 * sum(table.accuracy[i][j] for i, j in enumerate(picks))
        assert point["predicted_accuracy"] == pytest.approx(halved, abs=1e-6)
        assert point["costs"]["energy"] == pytest.approx(point["costs"]["flops"] * 2e-6)


def test_a_flat_csv_data_set_runs_end_to_end(tmp_path):
    """Tabular data: a CSV of 6 feature columns and a label, data.shape [6], a space of linear blocks."""
    import numpy as np

    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    (project / "flat_space.py").write_text(FLAT_SPACE.format(features=6))
    rng = np.random.default_rng(0)
    features = rng.normal(size=(600, 6))
    labels = (features[:, 0] > 0).astype(int) + (features[:, 1] > 1).astype(int)  # learnable: 3 classes
    rows = [",".join(f"{v:.4f}" for v in f) + f",{y}" for f, y in zip(features, labels, strict=True)]
    (project / "table.csv").write_text("a,b,c,d,e,f,label\n" + "\n".join(rows) + "\n")
    result = _cli(
        project,
        home,
        "run",
        "experiment=smoke",
        "~space",
        "+space.kind=torch",
        "+space.factory=flat_space:make_space",
        "data=csv",
        "data.path=table.csv",
        "data.shape=[6]",
        "scorer.train_size=400",
        "scorer.val_size=200",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = summary_of(result)
    assert (summary["blocks_total"], summary["blocks_trained"]) == (4, 4)
    scores = PerformanceStore(summary["store"]).block_scores(experiment="smoke")
    assert all(s.status == "done" and 100 / 3 < s.accuracy <= 100 for s in scores)  # better than chance
