"""The MIP's Pareto fronts must be exactly brute-force enumeration's, on random tables."""

import numpy as np
import pyomo.environ as pyo
import pytest

from blocknas.solvers import (
    BlockTable,
    InfeasibleBudgetError,
    best_within_budgets,
    brute_force_front,
    enumerate_networks,
    pareto_front,
)
from blocknas.solvers.highs import SOLVER_NAME


def random_table(rng, m: int, n: int, integer_costs: bool = False) -> BlockTable:
    def cost():
        values = rng.integers(0, 20, size=n) if integer_costs else rng.uniform(0, 10, size=n)
        return values.astype(float)

    return BlockTable(
        slots=tuple(f"s{i}" for i in range(m)),
        choices=tuple(tuple(f"b{j}" for j in range(n)) for _ in range(m)),
        accuracy=tuple(rng.normal(0, 1, size=n) for _ in range(m)),
        accuracy_offset=90.0,
        costs={"latency": tuple(cost() for _ in range(m)), "params": tuple(cost() for _ in range(m))},
        cost_offsets={"latency": 2.5, "params": 100.0},
    )


def as_points(front):
    return [(p.cost, p.predicted_accuracy) for p in front]


def assert_same_front(mip, brute):
    assert len(mip) == len(brute), (mip, brute)
    np.testing.assert_allclose(np.array(mip), np.array(brute), rtol=0, atol=1e-9)


def test_solver_is_available_by_the_name_ci_pins():
    assert pyo.SolverFactory(SOLVER_NAME).available()


@pytest.mark.parametrize("seed", range(12))
def test_front_equals_brute_force_on_random_tables(seed):
    rng = np.random.default_rng(seed)
    table = random_table(rng, m=int(rng.integers(2, 6)), n=int(rng.integers(2, 6)), integer_costs=seed % 3 == 0)
    for metric in ("latency", "params"):
        assert_same_front(as_points(pareto_front(table, metric)), brute_force_front(table, metric))


@pytest.mark.parametrize("seed", range(4))
def test_front_under_a_budget_on_another_target_equals_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    table = random_table(rng, m=4, n=4)
    _, _, costs = enumerate_networks(table, ["params"])
    budget = {"params": float(np.quantile(costs["params"], 0.4))}
    front = pareto_front(table, "latency", budget)
    assert_same_front(as_points(front), brute_force_front(table, "latency", budget))
    assert all(p.costs["params"] <= budget["params"] + 1e-9 for p in front)


def test_every_point_is_a_real_network_with_its_predictions():
    table = random_table(np.random.default_rng(7), 3, 4)
    for point in pareto_front(table, "latency"):
        selection = table.index_of(point.blocks)
        assert point.predicted_accuracy == pytest.approx(table.predict_accuracy(selection))
        assert point.cost == pytest.approx(table.predict_cost("latency", selection))


def test_best_within_budgets_is_the_brute_force_optimum():
    table = random_table(np.random.default_rng(3), 4, 5)
    _, accuracy, costs = enumerate_networks(table, ["latency", "params"])
    budgets = {"latency": float(np.median(costs["latency"])), "params": float(np.median(costs["params"]))}
    feasible = (costs["latency"] <= budgets["latency"]) & (costs["params"] <= budgets["params"])
    best = best_within_budgets(table, budgets)
    assert best.predicted_accuracy == pytest.approx(accuracy[feasible].max())


def test_infeasible_budget_names_the_smallest_feasible_cost():
    table = random_table(np.random.default_rng(1), 3, 3)
    smallest = table.min_cost("latency")
    with pytest.raises(InfeasibleBudgetError, match=f"smallest feasible latency cost is {smallest:g}"):
        pareto_front(table, "params", {"latency": smallest - 0.01})
    assert best_within_budgets(table, {"latency": smallest}).costs["latency"] == pytest.approx(smallest)


def test_jointly_infeasible_budgets_are_reported_as_such():
    table = BlockTable(
        slots=("a",),
        choices=(("x", "y"),),
        accuracy=(np.array([0.0, 1.0]),),
        costs={"c1": (np.array([0.0, 10.0]),), "c2": (np.array([10.0, 0.0]),)},
    )
    with pytest.raises(InfeasibleBudgetError, match="all budgets together"):
        best_within_budgets(table, {"c1": 5.0, "c2": 5.0})


def test_table_rejects_missing_costs():
    with pytest.raises(ValueError, match="non-finite"):
        BlockTable(
            slots=("a",),
            choices=(("x", "y"),),
            accuracy=(np.array([0.0, 1.0]),),
            costs={"c": (np.array([1.0, np.nan]),)},
        )


def test_tables_with_a_slot_per_llm_sub_block_count_and_enumerate_exactly():
    # 60 slots (30 layers x attention and FFN): the network count overflows int64, numpy's meshgrid
    # stops at 32 dimensions
    wide = BlockTable(
        slots=tuple(f"s{i}" for i in range(60)),
        choices=(("a", "b", "c", "d"),) * 60,
        accuracy=(np.zeros(4),) * 60,
        accuracy_offset=0.0,
        costs={"c": (np.arange(4.0),) * 60},
    )
    assert wide.num_networks == 4**60
    narrow = BlockTable(
        slots=tuple(f"s{i}" for i in range(40)),
        choices=(("a",),) * 38 + (("a", "b"), ("a", "b", "c")),
        accuracy=(np.zeros(1),) * 38 + (np.array([0.0, 1.0]), np.array([0.0, 2.0, 3.0])),
        accuracy_offset=0.0,
        costs={"c": (np.zeros(1),) * 38 + (np.arange(2.0), np.arange(3.0))},
    )
    selections, accuracy, costs = enumerate_networks(narrow, ["c"])
    assert selections.shape == (6, 40) and sorted(accuracy.tolist()) == [0.0, 1.0, 2.0, 3.0, 3.0, 4.0]
    assert costs["c"].tolist() == (selections[:, 38] + selections[:, 39]).tolist()
