"""Fronts and best-within-budget answers stay exact whatever the magnitude of the costs: tables whose block
costs spread over 1e-6 to 1e300 (a device without an operator reports a sentinel cost), against an
enumeration that shares no code with the solvers (exactly rounded sums, plain comparisons)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from blocknas.solvers import BlockTable, InfeasibleBudgetError, best_within_budgets, pareto_front

REL = 1e-9  # costs (and accuracies) this close, relative to themselves, are the same value


def wide_table(seed: int) -> BlockTable:
    rng = np.random.default_rng(seed)
    slots, choices = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    exponents = rng.uniform(-6, 300, (slots, choices))
    tame = rng.random((slots, choices)) < 0.6  # most blocks are ordinary, a few huge or tiny
    exponents[tame] = rng.uniform(-1, 1, tame.sum())
    return BlockTable(
        slots=tuple(f"s{i}" for i in range(slots)),
        choices=tuple(tuple(f"b{j}" for j in range(choices)) for _ in range(slots)),
        accuracy=tuple(rng.uniform(0, 1, choices) for _ in range(slots)),
        costs={
            "lat": tuple(10.0 ** exponents[i] for i in range(slots)),
            "none": tuple(np.zeros(choices) for _ in range(slots)),
        },
    )


def networks(table: BlockTable) -> list[tuple[float, float, tuple[int, ...]]]:
    """Every network: (cost, accuracy, selection), each sum exactly rounded (math.fsum)."""
    import itertools

    out = []
    for selection in itertools.product(*(range(len(c)) for c in table.choices)):
        cost = math.fsum(float(table.costs["lat"][i][j]) for i, j in enumerate(selection))
        accuracy = math.fsum(float(table.accuracy[i][j]) for i, j in enumerate(selection))
        out.append((cost, accuracy, selection))
    return out


def cheaper(a: float, b: float) -> bool:
    return a < b - REL * max(abs(a), abs(b))


def better(a: float, b: float) -> bool:
    return a > b + REL * max(abs(a), abs(b), 1.0)


def exact_front(table: BlockTable) -> list[tuple[float, float]]:
    points = sorted(networks(table), key=lambda n: (n[0], -n[1]))
    front, best = [], -math.inf
    for cost, accuracy, _ in points:
        if accuracy > best:
            front.append((cost, accuracy))
            best = accuracy
    return front


def assert_same_front(found: list, table: BlockTable) -> None:
    everything = networks(table)
    for point in found:  # no network clearly better than a point returned
        assert not any(
            (cheaper(c, point.cost) and not better(point.predicted_accuracy, a))
            or (better(a, point.predicted_accuracy) and not cheaper(point.cost, c))
            for c, a, _ in everything
        ), point
    for cost, accuracy in exact_front(table):  # every point of the front returned, up to rounding
        assert any(not cheaper(cost, p.cost) and not better(accuracy, p.predicted_accuracy) for p in found), (
            cost,
            accuracy,
            [(p.cost, p.predicted_accuracy) for p in found],
        )


@pytest.mark.parametrize("seed", range(40))
def test_fronts_are_exact_with_costs_from_1e_minus_6_to_1e300(seed):
    table = wide_table(seed)
    assert_same_front(pareto_front(table, "lat"), table)  # merged per slot


@pytest.mark.parametrize("seed", range(8))
def test_mip_sweeps_are_exact_with_costs_from_1e_minus_6_to_1e300(seed):
    table = wide_table(seed)
    # a budget on another metric makes it the epsilon-constraint sweep of MIPs, not the merge
    assert_same_front(pareto_front(table, "lat", budgets={"none": 1.0}), table)


@pytest.mark.parametrize("seed", range(20))
def test_best_within_a_budget_is_exact_with_costs_from_1e_minus_6_to_1e300(seed):
    table = wide_table(seed)
    everything = networks(table)
    pick = random.Random(seed)
    for cost, _, _ in pick.sample(everything, min(5, len(everything))):
        budget = cost * pick.choice((1.0, 1.5, 1e3))
        best = max(a for c, a, _ in everything if c <= budget)
        found = best_within_budgets(table, {"lat": budget})
        assert found.cost <= budget * (1 + REL)
        assert not better(best, found.predicted_accuracy), (budget, best, found)
    cheapest = min(c for c, _, _ in everything)
    with pytest.raises(InfeasibleBudgetError):
        best_within_budgets(table, {"lat": cheapest * (1 - 1e-6)})


def test_a_sentinel_cost_leaves_the_other_networks_on_the_front():
    """The probe's case: s1's mbconv costs 1e12 on a device that lacks the operator."""
    table = BlockTable(
        slots=("s0", "s1"),
        choices=(("skip", "conv_k3", "sep_k3"), ("conv_k3", "sep_k3", "mbconv_k3_e2")),
        accuracy=(np.array([0.1, 0.5, 0.3]), np.array([0.6, 0.4, 0.8])),
        costs={"lat": (np.array([0.1, 0.5, 0.3]), np.array([0.6, 0.4, 0.8]))},
        cost_offsets={"lat": 1.0},
    )

    def flat(front) -> list[float]:
        return [value for p in front for value in (p.cost, p.predicted_accuracy)]

    assert flat(pareto_front(table, "lat")) == pytest.approx([1.5, 0.5, 1.7, 0.7, 1.9, 0.9, 2.1, 1.1, 2.3, 1.3])
    for sentinel in (1e8, 1e12, 1e16, 1e20, 1e300):
        costs = (table.costs["lat"][0], np.array([0.6, 0.4, sentinel]))
        broken = BlockTable(table.slots, table.choices, table.accuracy, costs={"lat": costs}, cost_offsets={"lat": 1.0})
        assert flat(pareto_front(broken, "lat")) == pytest.approx(
            [1.5, 0.5, 1.7, 0.7, 1.9, 0.9, 2.1, 1.1, sentinel + 1.5, 1.3]
        )
        best = best_within_budgets(broken, {"lat": 1.95})  # mbconv is out: conv+sep or sep+conv, 1.9
        assert (best.cost, best.predicted_accuracy) == pytest.approx((1.9, 0.9)) and "mbconv_k3_e2" not in best.blocks
    assert best_within_budgets(table, {"lat": 1.95}).blocks == ("skip", "mbconv_k3_e2")  # 1.9


@pytest.mark.parametrize("seed", range(6))
def test_solution_pools_are_exact_with_costs_from_1e_minus_6_to_1e300(seed):
    from blocknas.solvers import solution_pool

    table = wide_table(seed)
    everything = networks(table)
    budget = sorted(c for c, _, _ in everything)[len(everything) // 2]
    within = sorted((a for c, a, _ in everything if c <= budget), reverse=True)
    pool = solution_pool(table, 3, {"lat": budget})
    assert len(pool) == min(3, len(within))
    for point, accuracy in zip(pool, within, strict=False):
        assert point.cost <= budget * (1 + REL) and not better(accuracy, point.predicted_accuracy)
