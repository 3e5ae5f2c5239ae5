"""Structural rules and the FLOPs-aware (linear-fractional) objective, against brute force on the full
6 x 5 NAS-Bench-201-shaped space (15,625 cells)."""

import itertools

import numpy as np
import pytest

from blocknas.solvers import BlockTable, best_within_budgets, brute_force_front, enumerate_networks, pareto_front
from blocknas.solvers.fractional import FractionalAccuracy, best_fractional, fractional_front
from blocknas.solvers.structure import ConnectivityRule
from blocknas.workers.spaces.nb201 import PATHS

NB201_CONNECTIVITY = ConnectivityRule(PATHS, "none")

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), the NB201 string order


def reachable(code: tuple[int, ...]) -> bool:
    """Output node 3 reachable from input 0 through non-none edges, by graph search."""
    seen = {0}
    for _ in range(3):
        seen |= {to for (to, src), op in zip(EDGES, code, strict=True) if src in seen and op != 0}
    return 3 in seen


def nb201_table(seed: int) -> tuple[BlockTable, FractionalAccuracy]:
    rng = np.random.default_rng(seed)
    flops = tuple(np.array([0.0, 0.0, rng.uniform(1, 3), rng.uniform(5, 9), 0.1]) for _ in range(6))
    table = BlockTable(
        slots=tuple(f"{a}<-{b}" for a, b in EDGES),
        choices=(OPS,) * 6,
        accuracy=tuple(rng.normal(size=5) for _ in range(6)),
        accuracy_offset=80.0,
        costs={"flops": flops, "latency": tuple(rng.uniform(0, 3, 5) for _ in range(6))},
        cost_offsets={"flops": 2.0, "latency": 1.0},
        rules=(NB201_CONNECTIVITY,),
    )
    return table, FractionalAccuracy(90.0, tuple(rng.normal(0, 5, 5) for _ in range(6)), flops, 2.0)


def test_connectivity_rule_matches_graph_search_on_all_15625_cells():
    codes = np.array(list(itertools.product(range(5), repeat=6)))
    mask = NB201_CONNECTIVITY.valid_mask((OPS,) * 6, codes)
    expected = np.array([reachable(tuple(c)) for c in codes])
    assert (mask == expected).all()
    assert 0 < (~mask).sum() < len(codes)


@pytest.mark.parametrize("seed", range(3))
def test_linear_front_with_connectivity_equals_brute_force_on_full_space(seed):
    table, _ = nb201_table(seed)
    front = pareto_front(table, "latency")
    expected = brute_force_front(table, "latency")
    np.testing.assert_allclose([(p.cost, p.predicted_accuracy) for p in front], expected, atol=1e-9)
    assert all(reachable(table.index_of(p.blocks)) for p in front)


def test_solver_never_picks_a_broken_cell_even_when_it_predicts_best():
    table, _ = nb201_table(0)
    accuracy = tuple(np.array([10.0, 0, 0, 0, 0]) for _ in range(6))  # "none" everywhere looks best
    rigged = BlockTable(table.slots, table.choices, accuracy, costs=table.costs, rules=table.rules)
    best = best_within_budgets(rigged, {})
    # the direct edge 3<-0 alone connects the cell: five "none" edges is the most a valid cell has
    assert reachable(rigged.index_of(best.blocks)) and best.blocks.count("none") == 5


@pytest.mark.parametrize("seed,quantile", [(0, 0.2), (1, 0.5), (2, 1.0)])
def test_fractional_objective_is_exact_against_brute_force_on_full_space(seed, quantile):
    table, accuracy = nb201_table(seed)
    selections, _, costs = enumerate_networks(table, ["latency"])
    budget = {"latency": float(np.quantile(costs["latency"], quantile))}
    feasible = costs["latency"] <= budget["latency"]
    point, milps = best_fractional(table, accuracy, budget)
    assert point.predicted_accuracy == pytest.approx(accuracy.predict_all(selections)[feasible].max(), abs=1e-9)
    assert point.costs["latency"] <= budget["latency"] + 1e-9
    assert 2 <= milps <= 20


def fractional_brute_front(table, accuracy, metric):
    selections, _, costs = enumerate_networks(table, [metric])
    predicted, cost = accuracy.predict_all(selections), costs[metric]
    front, best = [], -np.inf
    for k in np.lexsort((-predicted, cost)):
        if predicted[k] > best + 1e-9:
            front.append((float(cost[k]), float(predicted[k])))
            best = predicted[k]
    return front


@pytest.mark.parametrize("seed", range(2))
def test_fractional_pareto_front_equals_brute_force_on_full_space(seed):
    table, accuracy = nb201_table(seed)
    front = fractional_front(table, accuracy, "latency")
    expected = fractional_brute_front(table, accuracy, "latency")
    np.testing.assert_allclose([(p.cost, p.predicted_accuracy) for p in front], expected, atol=1e-7)
    assert all(reachable(table.index_of(p.blocks)) for p in front)
