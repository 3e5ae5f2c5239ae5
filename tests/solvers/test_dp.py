"""LayerNAS's bucket DP: exact against brute force when a bucket is one unit of integer costs, always within
the budget, and refusing what it cannot model."""

from __future__ import annotations

import numpy as np
import pytest

from blocknas.solvers import BlockTable, InfeasibleBudgetError, best_within_budgets, enumerate_networks
from blocknas.solvers.dp import dp_best_within_budget
from blocknas.solvers.structure import ConnectivityRule


def integer_table(seed: int, slots: int = 4, choices: int = 5) -> BlockTable:
    rng = np.random.default_rng(seed)
    return BlockTable(
        slots=tuple(f"s{i}" for i in range(slots)),
        choices=tuple(tuple(f"b{j}" for j in range(choices)) for _ in range(slots)),
        accuracy=tuple(rng.normal(0, 1, choices).round(3) for _ in range(slots)),
        accuracy_offset=50.0,
        # signed costs, as substitution gives them, and an offset: the DP shifts each slot to start at 0
        costs={"latency_ms": tuple(rng.integers(-3, 10, choices).astype(float) for _ in range(slots))},
        cost_offsets={"latency_ms": 7.0},
    )


def brute_best(table: BlockTable, budget: float, metric: str = "latency_ms") -> float:
    _, accuracy, costs = enumerate_networks(table, [metric])
    return float(accuracy[costs[metric] <= budget + 1e-9].max())


@pytest.mark.parametrize("seed", range(12))
def test_the_dp_equals_brute_force_when_a_bucket_is_one_unit_of_integer_cost(seed):
    table = integer_table(seed)
    floor = table.cost_offsets["latency_ms"] + sum(c.min() for c in table.costs["latency_ms"])
    for extra in (0, 3, 9, 17, 40):
        budget = floor + extra
        point = dp_best_within_budget(table, "latency_ms", budget, buckets=max(extra, 1))
        assert point.predicted_accuracy == pytest.approx(brute_best(table, budget), abs=1e-9)
        assert point.costs["latency_ms"] <= budget + 1e-9


@pytest.mark.parametrize("buckets", [1, 3, 10, 100])
def test_coarse_buckets_never_break_the_budget_and_never_beat_the_optimum(buckets):
    rng = np.random.default_rng(buckets)
    table = BlockTable(
        slots=("a", "b", "c"),
        choices=(("x", "y", "z"),) * 3,
        accuracy=tuple(rng.normal(0, 1, 3) for _ in range(3)),
        costs={"m": tuple(rng.uniform(0, 5, 3) for _ in range(3))},
    )
    for budget in np.linspace(sum(c.min() for c in table.costs["m"]), 15, 9):
        point = dp_best_within_budget(table, "m", float(budget), buckets)
        assert point.costs["m"] <= budget + 1e-9
        assert point.predicted_accuracy <= best_within_budgets(table, {"m": float(budget)}).predicted_accuracy + 1e-9


def test_what_the_dp_cannot_model_or_satisfy_is_refused():
    table = integer_table(0)
    floor = table.cost_offsets["latency_ms"] + sum(c.min() for c in table.costs["latency_ms"])
    with pytest.raises(InfeasibleBudgetError, match="cheapest network costs"):
        dp_best_within_budget(table, "latency_ms", floor - 1)
    with pytest.raises(KeyError, match="no cost metric 'energy'"):
        dp_best_within_budget(table, "energy", 10)
    ruled = BlockTable(
        table.slots, table.choices, table.accuracy, costs=table.costs, rules=(ConnectivityRule(((0, 1),), "b0"),)
    )
    with pytest.raises(ValueError, match="without structural rules"):
        dp_best_within_budget(ruled, "latency_ms", 100)


@pytest.mark.parametrize("seed", range(6))
def test_costs_on_a_decimal_grid_are_solved_exactly_even_at_a_budget_one_network_costs_exactly(seed):
    rng = np.random.default_rng(seed)
    table = BlockTable(
        slots=("a", "b", "c", "d"),
        choices=(("w", "x", "y", "z"),) * 4,
        accuracy=tuple(rng.normal(0, 1, 4) for _ in range(4)),
        costs={"ms": tuple(rng.integers(0, 5000, 4) / 1000 for _ in range(4))},
    )  # 0.001 ms grid
    selections, _, costs = enumerate_networks(table, ["ms"])
    for budget in rng.choice(costs["ms"], 5):  # exactly what some network costs: rounding up would lose it
        exact = dp_best_within_budget(table, "ms", float(budget))
        rounded = dp_best_within_budget(table, "ms", float(budget), buckets=7, max_grid_buckets=0)
        assert exact.predicted_accuracy == pytest.approx(brute_best(table, float(budget), "ms"), abs=1e-12)
        assert rounded.predicted_accuracy <= exact.predicted_accuracy + 1e-12 and rounded.costs["ms"] <= budget + 1e-9
