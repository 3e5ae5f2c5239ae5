"""Solution pools against brute force: the K best networks, diverse pools, exclusions, budgets, rules."""

import numpy as np
import pytest

import blocknas.solvers.pareto as pareto
from blocknas.solvers import BlockTable, enumerate_networks
from blocknas.solvers.pools import solution_pool
from blocknas.solvers.structure import ConnectivityRule
from blocknas.workers.spaces.nb201 import PATHS


def random_table(seed: int, slots: int = 4, n: int = 4, rules=()) -> BlockTable:
    rng = np.random.default_rng(seed)
    names = tuple(["none"] + [f"b{j}" for j in range(1, n)])
    return BlockTable(
        slots=tuple(f"s{i}" for i in range(slots)),
        choices=(names,) * slots,
        accuracy=tuple(rng.normal(size=n) for _ in range(slots)),
        accuracy_offset=70.0,
        costs={"lat": tuple(rng.uniform(0, 3, n) for _ in range(slots))},
        cost_offsets={"lat": 1.0},
        rules=rules,
    )


def greedy_pool(table, k, budget, min_distance, exclude=()):
    """Brute force: sort every feasible network by accuracy, accept those far enough from the accepted."""
    selections, accuracy, costs = enumerate_networks(table, ["lat"])
    order = [
        s
        for s in np.argsort(-accuracy)
        if costs["lat"][s] <= budget and tuple(selections[s]) not in {tuple(e) for e in exclude}
    ]
    accepted = []
    for s in order:
        if all((selections[s] != selections[a]).sum() >= min_distance for a in accepted):
            accepted.append(s)
        if len(accepted) == k:
            break
    return [float(accuracy[s]) for s in accepted], [tuple(selections[s]) for s in accepted]


@pytest.mark.parametrize("cores", [False, True])  # True: as a block library is solved, on Lagrangian cores
@pytest.mark.parametrize("seed,min_distance", [(0, 1), (1, 1), (2, 2), (3, 3)])
def test_pool_equals_brute_force_top_k_and_greedy_diverse_pool(seed, min_distance, cores, monkeypatch):
    if cores:
        monkeypatch.setattr(pareto, "CORE_MIN_CANDIDATES", 0)
    table = random_table(seed)
    _, _, costs = enumerate_networks(table, ["lat"])
    budget = float(np.quantile(costs["lat"], 0.6))
    pool = solution_pool(table, 8, {"lat": budget}, min_distance=min_distance)
    expected, selections = greedy_pool(table, 8, budget, min_distance)
    np.testing.assert_allclose([p.predicted_accuracy for p in pool], expected, atol=1e-9)
    assert [table.index_of(p.blocks) for p in pool] == selections
    assert all(p.costs["lat"] <= budget + 1e-9 for p in pool)


def test_pool_skips_excluded_networks_and_respects_connectivity():
    table = random_table(4, slots=6, n=5, rules=(ConnectivityRule(PATHS, "none"),))
    first = solution_pool(table, 5)
    excluded = [table.index_of(p.blocks) for p in first[:3]]
    pool = solution_pool(table, 5, exclude=excluded)
    expected, _ = greedy_pool(table, 5, np.inf, 1, exclude=excluded)
    np.testing.assert_allclose([p.predicted_accuracy for p in pool], expected, atol=1e-9)
    assert not {table.index_of(p.blocks) for p in pool} & set(excluded)
    valid = table.rules[0].valid_mask(table.choices, np.array([table.index_of(p.blocks) for p in pool]))
    assert valid.all()


def test_pool_stops_when_the_space_is_exhausted_and_rejects_bad_arguments():
    table = random_table(5, slots=2, n=2)
    assert len(solution_pool(table, 10)) == 4
    with pytest.raises(ValueError, match="min_distance"):
        solution_pool(table, 2, min_distance=3)
    with pytest.raises(ValueError, match="pool size"):
        solution_pool(table, 0)
