"""The merge front and dominance pruning give exactly the brute-force front and the MIP's answers."""

import numpy as np
import pytest

from solvers import BlockTable, best_within_budgets, brute_force_front, pareto_front
from solvers.merge_front import merge_front
from solvers.pruning import prune_dominated


def random_table(seed: int, slots: int = 4, choices: int = 5) -> BlockTable:
    rng = np.random.default_rng(seed)
    return BlockTable(
        slots=tuple(f"s{i}" for i in range(slots)),
        choices=tuple(tuple(f"b{j}" for j in range(choices)) for _ in range(slots)),
        accuracy=tuple(rng.normal(0, 1, choices).round(3) for _ in range(slots)),
        accuracy_offset=50.0,
        costs={"lat": tuple(rng.uniform(0, 2, choices).round(3) for _ in range(slots)),
               "mem": tuple(rng.uniform(0, 5, choices).round(2) for _ in range(slots))},
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
    table = BlockTable(slots=("s0",), choices=(("a", "b", "c", "d"),),
                       accuracy=(np.array([1.0, 0.5, 1.0, 2.0]),),
                       costs={"lat": (np.array([1.0, 2.0, 1.0, 3.0]),)})
    pruned = prune_dominated(table, ["lat"])
    assert pruned.choices == (("a", "d"),)  # b is worse than a; c is a's twin
    assert prune_dominated(table, []).choices == (("d",),)  # accuracy alone: only the best survives
