"""Core solves are exact: every step equals brute force and the whole-table model, and cores stay small."""

import numpy as np
import pytest

import blocknas.solvers.lagrangian_core as lagrangian_core
import blocknas.solvers.pareto as pareto
from blocknas.solvers import BlockTable, InfeasibleBudgetError, brute_force_front, enumerate_networks
from blocknas.solvers.lagrangian_core import CoreSolver


def library(seed: int, slots: int, variants: int, integer_latency: bool = False) -> BlockTable:
    """A block library as Puzzle measures one: cheaper variants lose more, three correlated costs."""
    rng = np.random.default_rng(seed)
    latency = rng.uniform(0.1, 2.0, (slots, variants))
    if integer_latency:  # many networks of equal latency: ties for the lexicographic cost step
        latency = np.round(latency * 4) + 1
    accuracy = -1.0 / (latency + 0.2) + rng.normal(0, 0.1, latency.shape)
    memory = 40 * latency + rng.uniform(0, 20, latency.shape)
    params = 1e6 * latency * rng.uniform(0.5, 1.5, latency.shape)
    return BlockTable(
        slots=tuple(f"layer{i}" for i in range(slots)),
        choices=tuple(tuple(f"v{j}" for j in range(variants)) for _ in range(slots)),
        accuracy=tuple(accuracy),
        accuracy_offset=80.0,
        costs={"latency": tuple(latency), "memory": tuple(memory), "params": tuple(params)},
        cost_offsets={"latency": 1.5, "memory": 100.0, "params": 0.0},
    )


def budgets_at(table: BlockTable, share: float) -> dict[str, float]:
    return {
        m: table.min_cost(m)
        + share * (table.cost_offsets[m] + sum(float(c.max()) for c in table.costs[m]) - table.min_cost(m))
        for m in ("memory", "params")
    }


def brute_step(table: BlockTable, budgets: dict[str, float], cap: float) -> tuple[float, float] | None:
    """(latency, accuracy) of the most accurate network with latency <= cap, cheapest among equals."""
    _, accuracy, costs = enumerate_networks(table, ["latency", *budgets])
    feasible = costs["latency"] <= cap + 1e-9
    for name, limit in budgets.items():
        feasible &= costs[name] <= limit
    if not feasible.any():
        return None
    best = accuracy[feasible].max()
    ties = feasible & (accuracy >= best - 1e-9)
    return float(costs["latency"][ties].min()), float(best)


def scaled_cap(solver: CoreSolver, latency: float) -> float:
    return solver.cost_term.to_scaled(latency)


@pytest.mark.parametrize("per_slot", [0, 1, 100])  # 0: every first core too small, so it is widened
@pytest.mark.parametrize("seed", range(4))
def test_every_step_is_the_brute_force_optimum(seed, per_slot, monkeypatch):
    monkeypatch.setattr(lagrangian_core, "CORE_PER_SLOT", per_slot)
    table = library(seed, slots=5, variants=6, integer_latency=seed % 2 == 1)
    budgets = budgets_at(table, 0.45)
    solver = CoreSolver(table, "latency", budgets)
    _, _, costs = enumerate_networks(table, ["latency"])
    for cap in np.quantile(costs["latency"], [0.0, 0.05, 0.3, 0.6, 1.0]):
        expected = brute_step(table, budgets, float(cap))
        selection = solver.step(scaled_cap(solver, float(cap)))
        if expected is None:
            assert selection is None
            continue
        got = (table.predict_cost("latency", selection), table.predict_accuracy(selection))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    cheapest = solver.cheapest()
    feasible = brute_step(table, budgets, float(costs["latency"].max()))
    assert feasible is not None and cheapest is not None
    for name, limit in budgets.items():
        assert table.predict_cost(name, cheapest) <= limit + 1e-9


@pytest.mark.parametrize("seed", range(3))
def test_fronts_by_cores_equal_brute_force(seed, monkeypatch):
    monkeypatch.setattr(pareto, "CORE_MIN_CANDIDATES", 0)
    table = library(10 + seed, slots=4, variants=7, integer_latency=seed == 1)
    budgets = budgets_at(table, 0.5)
    front = pareto.pareto_front(table, "latency", budgets)
    expected = brute_force_front(table, "latency", budgets)
    np.testing.assert_allclose([(p.cost, p.predicted_accuracy) for p in front], expected, rtol=0, atol=1e-9)


def test_cores_of_a_library_are_small_and_its_spread_front_equals_the_whole_table_model(monkeypatch):
    table = library(7, slots=30, variants=40)
    budgets = budgets_at(table, 0.5)
    sizes = []
    solve_core = CoreSolver._solve_core

    def recording(self, core, *args):
        sizes.append(len(core))
        return solve_core(self, core, *args)

    monkeypatch.setattr(CoreSolver, "_solve_core", recording)
    monkeypatch.setattr(pareto, "CORE_MIN_CANDIDATES", 0)
    by_cores = pareto.spread_front(table, "latency", budgets, 12)
    monkeypatch.setattr(pareto, "CORE_MIN_CANDIDATES", 10**9)
    by_model = pareto.spread_front(table, "latency", budgets, 12)
    assert len(by_cores) >= 8
    assert [p.blocks for p in by_cores] == [p.blocks for p in by_model]
    candidates = 30 * 40
    assert max(sizes) < 0.25 * candidates and np.mean(sizes) < 0.12 * candidates, sizes


@pytest.mark.parametrize("seed", range(4))
def test_the_tie_break_keeps_every_candidate_of_every_network_that_ties(seed):
    # accuracies on a coarse grid: many networks tie with the optimum, in different candidates
    table = library(20 + seed, slots=5, variants=6)
    table = BlockTable(
        table.slots,
        table.choices,
        tuple(np.round(a * 4) / 4 for a in table.accuracy),
        table.accuracy_offset,
        table.costs,
        table.cost_offsets,
    )
    budgets = budgets_at(table, 0.6)
    solver = CoreSolver(table, "latency", budgets)
    networks, accuracy, costs = enumerate_networks(table, ["latency", *budgets])
    flat = solver.starts + np.asarray(networks)
    kept_shares = []
    for cap in np.quantile(costs["latency"], [0.3, 0.6, 1.0]):
        feasible = costs["latency"] <= cap
        for name, limit in budgets.items():
            feasible &= costs[name] <= limit
        if not feasible.any():
            continue
        best = solver._minimise(False, scaled_cap(solver, float(cap)), -np.inf)
        floor = solver.accuracy_term.tie_floor(float(solver.accuracy[best].sum()))
        allowed = solver._in_ties(scaled_cap(solver, float(cap)), floor)
        ties = feasible & (accuracy >= accuracy[feasible].max() - 1e-9)
        assert allowed[flat[ties]].all()  # no network that ties is cut off
        kept_shares.append(allowed.mean())
        selection = solver.step(scaled_cap(solver, float(cap)))
        assert table.predict_cost("latency", selection) == pytest.approx(costs["latency"][ties].min(), abs=1e-9)
    assert kept_shares and min(kept_shares) < 1.0  # and it does leave candidates out


def test_jointly_infeasible_budgets_are_reported_by_the_core_path(monkeypatch):
    monkeypatch.setattr(pareto, "CORE_MIN_CANDIDATES", 0)
    table = library(3, slots=6, variants=5)
    budgets = {m: table.min_cost(m) * 1.0001 for m in ("memory", "params")}  # each alone feasible, not both
    _, _, costs = enumerate_networks(table, ["memory", "params"])
    assert not ((costs["memory"] <= budgets["memory"]) & (costs["params"] <= budgets["params"])).any()
    with pytest.raises(InfeasibleBudgetError, match="no network satisfies all budgets together"):
        pareto.spread_front(table, "latency", budgets, 5)
    with pytest.raises(InfeasibleBudgetError):
        pareto.best_within_budgets(table, {**budgets, "latency": 1e9})


def test_the_core_solver_refuses_tables_with_structural_rules():
    from blocknas.solvers.structure import ConnectivityRule

    table = library(0, slots=3, variants=2)
    ruled = BlockTable(
        table.slots,
        table.choices,
        table.accuracy,
        table.accuracy_offset,
        table.costs,
        table.cost_offsets,
        rules=(ConnectivityRule(paths=((0, 1),), inactive="v0"),),
    )
    with pytest.raises(ValueError, match="without structural rules"):
        CoreSolver(ruled, "latency", {})


@pytest.mark.parametrize("min_candidates", [0, 10**9])  # by cores, and by one whole-table model
def test_each_spread_point_is_the_best_network_for_every_budget_up_to_its_optimal_up_to(min_candidates, monkeypatch):
    monkeypatch.setattr(pareto, "CORE_MIN_CANDIDATES", min_candidates)
    table = library(21, slots=5, variants=6)
    budgets = budgets_at(table, 0.5)
    spread = pareto.spread_front(table, "latency", budgets, 6)
    assert spread[-1].optimal_up_to == np.inf and all(p.optimal_up_to >= p.cost for p in spread)
    rng = np.random.default_rng(0)
    covered = 0
    for point in spread[:-1]:
        for budget in rng.uniform(point.cost, point.optimal_up_to, 3):
            expected = brute_step(table, budgets, float(budget))
            assert point.predicted_accuracy == pytest.approx(expected[1], abs=1e-9)
            covered += 1
    assert covered >= 6
