"""`blocknas run experiment=smoke` twice through real Ray, the real table, MLflow and HiGHS."""

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from blocknas.orchestrator.config import load_settings
from blocknas.orchestrator.experiments import open_run
from blocknas.orchestrator.storage import PerformanceStore
from blocknas.solvers import brute_force_front
from tests.conftest import kill_session, listening_sockets, run_cli, session_pids, start_cli, summary_of, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    first = run_cli(home, "run", "experiment=smoke", "cluster.num_cpus=2")
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_cli(home, "run", "experiment=smoke", "cluster.num_cpus=2")
    assert second.returncode == 0, second.stderr[-3000:]
    return home, first, second


def test_first_run_trains_every_block_and_writes_the_summary(smoke_runs):
    home, first, _ = smoke_runs
    summary = summary_of(first)
    assert summary["experiment"] == "smoke"
    assert (summary["blocks_total"], summary["blocks_trained"], summary["blocks_cached"]) == (6, 6, 0)
    assert summary["store"] == f"sqlite:///{home}/.blocknas/perf.db"
    assert summary["tracking_uri"] == f"sqlite:///{home}/.blocknas/mlflow.db"
    assert set(summary["targets"]) == {"flops", "params", "local_cpu"}
    for target in summary["targets"].values():
        costs = [p["cost"] for p in target["pareto"]]
        accs = [p["predicted_accuracy"] for p in target["pareto"]]
        assert costs == sorted(costs) and accs == sorted(accs) and len(costs) >= 1
        assert all(len(p["blocks"]) == 2 and p["blocks"][0].startswith("s0:") for p in target["pareto"])
    out = home / "outputs" / "smoke"
    for name in ("flops", "params", "local_cpu"):
        assert list(out.glob(f"run-*/pareto_{name}.json")) and list(out.glob(f"run-*/pareto_{name}.png"))
    assert "mlflow ui --backend-store-uri" in first.stdout


def test_second_run_trains_nothing_and_gives_identical_fronts(smoke_runs):
    _, first, second = smoke_runs
    a, b = summary_of(first), summary_of(second)
    assert (b["blocks_trained"], b["blocks_cached"]) == (0, 6)
    assert a["targets"] == b["targets"] and a["table_hash"] == b["table_hash"]
    # The same table, targets, budgets, predictor and cap: the stored fronts are used, not solved again.
    assert a["fronts_reused"] == [] and sorted(b["fronts_reused"]) == ["flops", "local_cpu", "params"]
    assert "blocks:" not in second.stderr  # no progress bar: no Ray task was started
    # The same fronts drawn: the second run's figures are the first's files, linked, not drawn and stored again.
    assert a["figures_digest"] == b["figures_digest"]
    for name in ("figures.html", "pareto_params.png", "pareto_params.json"):
        one, other = Path(a["output_dir"]) / name, Path(b["output_dir"]) / name
        assert one.stat().st_ino == other.stat().st_ino and one.stat().st_nlink >= 2, name


def test_fronts_show_and_run_share_one_front_per_inputs(smoke_runs):
    home, first, _ = smoke_runs
    run_front = summary_of(first)["targets"]["params"]
    shown = run_cli(home, "fronts", "show", "params", "experiment=smoke", "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    front = json.loads(shown.stdout)  # one of the experiment's own targets: the front the run stored
    assert not front["solved_now"] and front["target_version"] == run_front["version"]
    assert front["points"] == run_front["pareto"]
    # The other way round: new inputs (a FLOPs budget) solved by `fronts show` are what `solve` then reuses.
    budget = f"solver.budgets.flops={sorted(p['costs']['flops'] for p in run_front['pareto'])[0]:.0f}"
    shown = run_cli(home, "fronts", "show", "params", "experiment=smoke", budget, "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    front = json.loads(shown.stdout)
    assert front["solved_now"] and len(front["points"]) <= len(run_front["pareto"])
    solved = run_cli(home, "solve", "experiment=smoke", budget)
    assert solved.returncode == 0, solved.stderr[-2000:]
    summary = summary_of(solved)
    assert summary["fronts_reused"] == ["params"] and summary["targets"]["params"]["pareto"] == front["points"]
    # One answer schema: `solve`'s best is, object for object, the front's most accurate point within the budget
    assert summary["best"]["answer"] == front["points"][-1]["answer"]
    answer = front["points"][-1]["answer"]
    assert answer["schema"] == "blocknas.answer/1" and list(answer["choices"]) == ["s0", "s1"]
    assert answer["objective"] | {"predicted": None} == {
        "name": "accuracy",
        "unit": "%",
        "direction": "maximize",
        "predicted": None,
    }
    assert answer["costs"]["flops"]["unit"] == "MACs" and answer["costs"]["local_cpu"]["unit"] == "ms"
    assert front["cap"] == {"points": len(front["points"]), "max_points": 2000, "capped": False}
    unknown = run_cli(home, "fronts", "show", "parms", "experiment=smoke")
    assert unknown.returncode == 2 and "own targets (flops, params, local_cpu)" in unknown.stderr


def test_fronts_are_exact_for_the_stored_table(smoke_runs):
    home, first, _ = smoke_runs
    from blocknas.orchestrator.pipeline.cost_stage import load_costs
    from blocknas.orchestrator.pipeline.solve_stage import build_block_table, measured_networks

    settings = load_settings(["experiment=smoke", f"paths.root={home}"])
    run = open_run(settings)
    table = build_block_table(
        settings.space,
        run.plan,
        measured_networks(settings.space, run.plan, run.store.block_scores()),
        load_costs(run),
    )
    for name, target in summary_of(first)["targets"].items():
        expected = brute_force_front(table, name)
        got = [(p["cost"], p["predicted_accuracy"]) for p in target["pareto"]]
        assert len(got) == len(expected)
        np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-9, atol=1e-6)


def test_table_holds_each_block_once_with_where_it_ran(smoke_runs):
    home, *_ = smoke_runs
    listing = run_cli(home, "blocks", "--json", "--experiment", "smoke")
    assert listing.returncode == 0, listing.stderr
    blocks = json.loads(listing.stdout)
    assert len(blocks) == 6 and len({b["block"] for b in blocks}) == 6
    for block in blocks:
        assert block["status"] == "done" and block["attempts"] == 1 and block["node"]
        assert 0 <= block["accuracy"] <= 100 and block["train_seconds"] > 0 and block["flops"] > 0
    base = [b for b in blocks if b["block"] in ("s0:skip", "s1:conv_k3")]
    assert all(b["accuracy_delta"] == 0 for b in base)
    failed = run_cli(home, "blocks", "--status", "failed", "experiment=smoke")  # the composed config's
    assert failed.returncode == 0 and "0 block results" in failed.stdout, failed.stderr
    assert json.loads(run_cli(home, "blocks", "--json", "experiment=smoke").stdout) == blocks
    assert len(json.loads(run_cli(home, "blocks", "--json", "--all").stdout)) == 6
    typo = run_cli(home, "blocks", "--experiment", "smok")
    assert typo.returncode == 2 and "no experiment named 'smok'" in typo.stderr and "'smoke'" in typo.stderr
    from sqlalchemy import text

    from blocknas.workers.machine import machine_fingerprint

    with PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db").engine.connect() as connection:
        labels = set(
            connection.execute(text("SELECT measured_on FROM block_costs WHERE target = 'local_cpu'")).scalars()
        )
    machine = machine_fingerprint()  # the Ray worker that timed them runs on this machine here
    assert labels == {f"{machine['host']}: {machine['cpu']}, torch {machine['torch']}"}


def test_mlflow_has_one_parent_per_run_and_one_nested_run_per_block(smoke_runs):
    home, first, second = smoke_runs
    client = MlflowClient(f"sqlite:///{home}/.blocknas/mlflow.db")
    experiment = client.get_experiment_by_name("smoke")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("blocknas.kind") == "run"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    assert len(children) == 6 and {c.data.tags["mlflow.parentRunId"] for c in children} == {
        summary_of(first)["mlflow_run_id"]
    }
    child = children[0]
    assert {"slot", "block", "scorer.steps", "scorer.seed"} <= set(child.data.params)
    assert {"accuracy", "loss", "train_seconds", "params", "flops"} <= set(child.data.metrics)
    assert child.data.tags["blocknas.experiment"] == "smoke"
    artifacts = {a.path for a in client.list_artifacts(summary_of(second)["mlflow_run_id"])}
    assert {"pareto_local_cpu.json", "pareto_local_cpu.png", "summary.json"} <= artifacts


def test_block_runs_carry_their_value_costs_context_and_training_curve(smoke_runs):
    home, first, second = smoke_runs
    summary = summary_of(first)
    client = MlflowClient(f"sqlite:///{home}/.blocknas/mlflow.db")
    experiment = client.get_experiment_by_name("smoke")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on runs
    parent = summary["mlflow_run_id"]
    flat = _block_view(client, experiment, first)
    assert len(flat) == 6 and all(r.data.tags["blocknas.kind"] == "block" for r in flat)
    # the second run measured nothing: its view lists the same block runs, the table it solved
    assert {r.info.run_id for r in _block_view(client, experiment, second)} == {r.info.run_id for r in flat}
    store = PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db")
    scores = {s.mlflow_run_id: s for s in store.block_scores(experiment="smoke")}
    context = next(s for s in scores.values() if s.block == "s0:" + summary["context_networks"][0][0])
    settings = load_settings(["experiment=smoke"])
    for run in flat:
        metrics, score = run.data.metrics, scores[run.info.run_id]
        assert metrics["delta_vs_context"] == pytest.approx(score.accuracy - context.accuracy, abs=1e-3)
        assert metrics["value"] == pytest.approx(metrics["delta_vs_context"], abs=1e-3)  # one context network
        assert "delta_vs_base" in metrics
        slot = settings.space.slots[score.slot_index]
        assert metrics["cost.params"] == pytest.approx(  # the block's own parameters, not its network's
            summary_block_cost(settings, score.slot_index, slot.choices[score.choice_index])
        )
        assert {"cost.flops", "cost.local_cpu"} <= set(metrics)
        curve = client.get_metric_history(run.info.run_id, "curve/train_loss")
        assert len(curve) >= 10 and [m.step for m in curve] == sorted(m.step for m in curve)
        accuracy = client.get_metric_history(run.info.run_id, "curve/val_accuracy")
        assert len(accuracy) >= 2 and accuracy[-1].value == pytest.approx(score.accuracy)
        assert run.data.tags["blocknas.context_network"] == " ".join(summary["context_networks"][0])
        assert parent in run.data.tags["mlflow.note.content"]
    artifacts = {a.path for a in client.list_artifacts(parent)}
    assert {"config.yaml", "block_table.json", "figures.html"} <= artifacts
    table = json.loads(Path(client.download_artifacts(parent, "block_table.json")).read_text())
    assert len(table["data"]) == 6 and "value" in table["columns"] and "cost.local_cpu" in table["columns"]
    # the second run measured nothing: its parent has the table, no block run got its values twice
    assert all(len(client.get_metric_history(r.info.run_id, "value")) == 1 for r in flat)


def _block_view(client, experiment, run) -> list:
    """The runs of the saved MLflow view a run prints (its link opens the runs table in model-training mode,
    on the view): checked for the value, delta and cost columns, sorted by value."""
    url = summary_of(run)["mlflow_block_view"]
    assert f"then open {url}" in run.stdout
    query = parse_qs(urlsplit(url).fragment.partition("?")[2])
    assert query["workflowType"] == ["machine_learning"]
    view = json.loads(experiment.tags[f"mlflow.sharedViewState.{query['viewStateShareKey'][0]}"])
    assert view["orderByKey"] == "metrics.`value`" and view["orderByAsc"] is False
    assert {
        "metrics.`value`",
        "metrics.`delta_vs_context`",
        "metrics.`cost.flops`",
        "metrics.`cost.params`",
        "metrics.`cost.local_cpu`",
    } <= set(view["selectedColumns"])
    return client.search_runs([experiment.experiment_id], view["searchFilter"])


def summary_block_cost(settings, slot_index: int, choice: str) -> float:
    from blocknas.workers.costs import analytic_costs

    return analytic_costs(settings.space, "params").blocks[(slot_index, choice)]


def test_figures_html_holds_every_front_point_with_its_architecture(smoke_runs):
    _, first, _ = smoke_runs
    summary = summary_of(first)
    page = (Path(summary["output_dir"]) / "figures.html").read_text()
    assert "plotly.js v" in page and 'src="http' not in page  # self-contained: plotly.js inlined, opens offline
    for name, target in summary["targets"].items():
        for point in target["pareto"]:
            assert json.dumps(" ".join(point["blocks"])) in page, (name, point["blocks"])
            assert f"{name}: {point['cost']:.6g}" in page  # its costs in the hover text


def test_solve_with_budgets_returns_the_best_within_them(smoke_runs):
    home, first, _ = smoke_runs
    front = summary_of(first)["targets"]["params"]["pareto"]
    budget = front[0]["cost"]
    result = run_cli(home, "solve", "experiment=smoke", f"solver.budgets.params={budget}")
    assert result.returncode == 0, result.stderr
    summary = summary_of(result)
    assert summary["best"]["costs"]["params"] <= budget
    assert summary["best"]["predicted_accuracy"] == pytest.approx(front[0]["predicted_accuracy"])
    assert summary["blocks_trained"] == 0


def test_infeasible_budget_is_a_clear_error_and_changes_nothing(smoke_runs):
    home, first, _ = smoke_runs
    db = home / ".blocknas" / "perf.db"
    before = PerformanceStore(f"sqlite:///{db}").block_scores()
    smallest = summary_of(first)["targets"]["params"]["pareto"][0]["cost"]
    client = MlflowClient(tracking_uri=f"sqlite:///{home}/.blocknas/mlflow.db")
    runs_before = len(client.search_runs([client.get_experiment_by_name("smoke").experiment_id]))
    result = run_cli(home, "solve", "experiment=smoke", f"solver.budgets.params={smallest - 1}")
    assert result.returncode == 2
    assert f"smallest feasible params cost is {smallest:g}" in result.stderr
    assert PerformanceStore(f"sqlite:///{db}").block_scores() == before
    # no FAILED MLflow run is left behind for a refused budget
    assert len(client.search_runs([client.get_experiment_by_name("smoke").experiment_id])) == runs_before


def test_solve_without_measured_blocks_says_to_run_first(tmp_path):
    result = run_cli(tmp_path, "solve", "experiment=smoke")
    assert result.returncode == 1
    assert "run `blocknas run`" in result.stderr


def _write_block_csv(path, costs: dict) -> None:
    path.write_text(
        "slot,block,metric,value\nfixed,,latency_ms,0.25\n"
        + "".join(f"{s},{b},latency_ms,{v}\n" for s, blocks in costs.items() for b, v in blocks.items())
    )


def test_a_registered_target_is_solved_on_the_stored_block_table_without_training(smoke_runs, tmp_path):
    home, first, _ = smoke_runs
    costs = {
        "s0": {"skip": 0.0, "conv_k3": 0.4, "sep_k3": 0.2},
        "s1": {"conv_k3": 0.9, "sep_k3": 0.3, "mbconv_k3_e2": 0.5},
    }
    path = tmp_path / "phone.csv"
    _write_block_csv(path, costs)
    assert run_cli(home, "targets", "add", "phone", "--file", str(path)).returncode == 0
    shown = run_cli(home, "fronts", "show", "phone", "experiment=smoke", "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    front = json.loads(shown.stdout)
    assert front["experiment"] == "smoke" and front["solved_now"]
    assert "measured" not in shown.stdout and "blocks" not in shown.stderr  # no training, no Ray

    from blocknas.orchestrator.deploy.fronts import experiment_accuracy, with_target
    from blocknas.orchestrator.targets.registry import find

    settings = load_settings(["experiment=smoke", f"paths.root={home}"])
    store = PerformanceStore(settings.storage_url)
    table = with_target(experiment_accuracy(open_run(settings, store)), find(store, "phone"))
    expected = brute_force_front(table, "latency_ms")
    assert [(round(p["cost"], 9), round(p["predicted_accuracy"], 6)) for p in front["points"]] == [
        (round(c, 9), round(a, 6)) for c, a in expected
    ]
    del costs["s1"]["mbconv_k3_e2"]  # a version that no longer covers the space is refused, not guessed
    _write_block_csv(path, costs)
    assert run_cli(home, "targets", "update", "phone", "--file", str(path)).returncode == 0
    partial = run_cli(home, "fronts", "show", "phone", "experiment=smoke")
    assert partial.returncode == 2 and "no latency_ms for 1 block: s1:mbconv_k3_e2" in partial.stderr


def _add_yaml_target_and_show(home, path, name: str, yaml_text: str) -> dict:
    """Register ``name`` from a YAML file and print its front for the smoke experiment (JSON)."""
    path.write_text(yaml_text)
    assert run_cli(home, "targets", "add", name, "--file", str(path)).returncode == 0
    shown = run_cli(home, "fronts", "show", name, "experiment=smoke", "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    return json.loads(shown.stdout)


def test_an_analytic_registered_target_gives_the_runs_own_front(smoke_runs, tmp_path):
    home, first, _ = smoke_runs
    front = _add_yaml_target_and_show(home, tmp_path / "macs.yaml", "macs", "kind: analytic\nmetrics: [flops]\n")
    expected = summary_of(first)["targets"]["flops"]["pareto"]
    assert [(p["cost"], p["blocks"]) for p in front["points"]] == [(p["cost"], p["blocks"]) for p in expected]
    refused = run_cli(
        home, "switch", "macs", "--budget", "1e9", "--measured", "2", "--predicted", "1", "experiment=smoke"
    )
    assert refused.returncode == 2 and "nothing to rescale" in refused.stderr


def test_a_measured_registered_target_is_timed_once_then_solved_from_the_store(smoke_runs, tmp_path):
    home, _, _ = smoke_runs
    front = _add_yaml_target_and_show(
        home, tmp_path / "here.yaml", "here", "kind: measured\nwarmup: 2\nrepeats: 5\nthreads: 1\n"
    )
    assert front["solved_now"] and front["metric"] == "latency_ms" and front["points"]
    again = json.loads(run_cli(home, "fronts", "show", "here", "experiment=smoke", "--json").stdout)
    assert not again["solved_now"] and again["points"] == front["points"]  # timings stored, not re-measured


def test_a_tracking_server_that_is_down_is_a_warning_not_a_failure(smoke_runs):
    home, first, _ = smoke_runs
    down = "tracking.uri=http://127.0.0.1:9"  # the discard port: nothing listens
    for command in ("run", "solve"):
        result = run_cli(home, command, "experiment=smoke", "cluster.num_cpus=2", down)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "MLflow tracking is off for this run" in result.stderr and "Traceback" not in result.stderr
        summary = summary_of(result)
        assert summary["mlflow_run_id"] is None
        assert summary["targets"]["params"] == summary_of(first)["targets"]["params"]


def _start_training(home, *overrides: str):
    """A real `blocknas run` of the smoke experiment in its own session, returned once its blocks train."""
    import os
    import subprocess
    import sys
    import time

    env = {**os.environ, "BLOCKNAS_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    log = home / "stderr.txt"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "blocknas.orchestrator.cli",
                "run",
                "experiment=smoke",
                "cluster.num_cpus=2",
                *overrides,
            ],
            cwd=home,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    deadline = time.monotonic() + 300
    while "blocks:" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)  # until blocks train: the parent run is open, Ray's workers are up
    return proc, log


def test_a_run_listens_on_localhost_only_and_sigterm_stops_it_like_ctrl_c(tmp_path):
    import ipaddress
    import signal

    proc, log = _start_training(tmp_path, "scorer.steps=2000")
    try:
        sockets = listening_sockets(session_pids(proc.pid))
        print("listening:", *sockets, sep="\n  ")
        commands = {command for _, _, command in sockets}
        assert {"gcs_server", "raylet"} <= commands, sockets  # the local Ray instance is seen
        assert all(ipaddress.ip_address(address).is_loopback for address, _, _ in sockets), sockets
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/.blocknas/mlflow.db")
        wait_for(
            lambda: client.search_runs(
                [client.get_experiment_by_name("smoke").experiment_id],
                "tags.`blocknas.kind` = 'block' and attributes.status = 'RUNNING'",
            ),
            300,
            "a block run in flight",
            proc,
        )
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    finally:
        kill_session(proc.pid)
    err = log.read_text()
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id], "tags.`blocknas.kind` = 'run'")
    assert [r.info.status for r in runs] == ["KILLED"]
    blocks = client.search_runs(
        [client.get_experiment_by_name("smoke").experiment_id], "tags.`blocknas.kind` = 'block'"
    )
    # the block runs in flight are closed with the run, not left RUNNING until the next run
    assert blocks and "RUNNING" not in {r.info.status for r in blocks}, [r.info.status for r in blocks]
    assert "KILLED" in {r.info.status for r in blocks}


def test_sigterm_while_ray_starts_stops_the_run_like_ctrl_c(tmp_path):
    """Ray's own SIGTERM handler, in place while ``ray.init`` runs, used to exit 15 with the MLflow run open."""
    import signal

    proc = start_cli(tmp_path, "run", "experiment=smoke", "--no-progress")
    try:
        wait_for(
            lambda: any(_command(pid) == "gcs_server" for pid in session_pids(proc.pid)),
            300,
            "the local Ray instance to start",
            proc,
            interval=0.02,
        )
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
    finally:
        kill_session(proc.pid)
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/.blocknas/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])
    assert runs and {r.info.status for r in runs} == {"KILLED"}


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def test_a_store_deleted_mid_run_fails_the_run_and_says_so(tmp_path):
    """It used to exit 0, "measured 6 blocks", with a summary of a table that no longer existed."""
    import time

    proc, log = _start_training(tmp_path, "scorer.steps=600")
    try:
        time.sleep(3)  # some results are written, through connections the driver and workers hold open
        for file in (tmp_path / ".blocknas").glob("perf.db*"):
            file.unlink()
        proc.wait(timeout=300)
    finally:
        kill_session(proc.pid)
    err = log.read_text()
    assert proc.returncode == 1, err[-3000:]
    assert "perf.db was deleted, emptied or replaced while blocknas was using it" in err
    assert "Traceback" not in err
    assert not list(tmp_path.glob("outputs/**/summary.json"))
