"""Exact Pareto fronts (predicted accuracy vs. one cost) by an epsilon-constraint sweep of MILPs.

Each step maximises accuracy under ``cost <= cap``, then minimises cost at that accuracy (so the point is
non-dominated, not just optimal), then tightens the cap just below the point's cost. Every
non-dominated point is found exactly once; the sweep ends when the cap becomes infeasible.

The steps run on one persistent Pyomo model of the whole table, or, for large rule-free tables (block
libraries), on ``blocknas.solvers.lagrangian_core``: the same exact steps, each solving only a small core.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from blocknas.solvers.formulations.additive_mip import NO_CAP, STEP, create_model, solve_exactly
from blocknas.solvers.highs import new_solver
from blocknas.solvers.lagrangian_core import CoreSolver
from blocknas.solvers.merge_front import COST_TIE, merge_front
from blocknas.solvers.points import InfeasibleBudgetError, ParetoPoint
from blocknas.solvers.pruning import prune_dominated, within_caps
from blocknas.solvers.table import BlockTable

# A sweep re-builds its model on the candidates that still fit once the cap has fallen this far below the
# model's cost scale: the STEP between points is relative to that scale (costs spanning 1e-6 to 1e300).
RESCALE = 1e3

# Tables without structural rules and with at least this many candidates (all slots together) are solved
# by cores: below it one whole-table model is as fast (tens of milliseconds per step).
CORE_MIN_CANDIDATES = 1000


def _point_of(table: BlockTable, selection: tuple[int, ...], metric: str) -> ParetoPoint:
    return ParetoPoint(
        blocks=tuple(table.choices[i][j] for i, j in enumerate(selection)),
        predicted_accuracy=table.predict_accuracy(selection),
        cost=table.predict_cost(metric, selection),
        costs={name: table.predict_cost(name, selection) for name in table.costs},
    )


def check_budgets(table: BlockTable, budgets: dict[str, float]) -> None:
    """Refuse a budget below its target's smallest feasible cost (InfeasibleBudgetError names it)."""
    for name, limit in budgets.items():
        if name not in table.costs:
            raise ValueError(f"budget for unknown target {name!r}; the table has {sorted(table.costs)}")
        smallest = table.min_cost(name)
        if limit < smallest:
            raise InfeasibleBudgetError(
                f"budget {name} <= {limit:g} is infeasible: the smallest feasible {name} cost is {smallest:g}"
            )


def _lexicographic_step(solver, model, table: BlockTable) -> tuple[int, ...] | None:
    """Max accuracy under the current cost cap, then min cost among the networks that tie with it."""
    model.max_accuracy.activate()
    model.min_cost.deactivate()
    model.accuracy_floor_value = model.no_floor
    best = solve_exactly(solver, model, table)
    if best is None:
        return None
    model.accuracy_floor_value = model.accuracy_term.tie_floor(model.accuracy_term.of_selection(best))
    model.max_accuracy.deactivate()
    model.min_cost.activate()
    cheapest = solve_exactly(solver, model, table)
    model.accuracy_floor_value = model.no_floor
    if cheapest is None or model.cost_term.of_selection(cheapest) > model.cost_term.of_selection(best):
        return best  # the tie could not be met more cheaply in exact arithmetic
    return cheapest


class _ModelSweep:
    """Lexicographic steps on one persistent model of the whole table (any table, rules included)."""

    def __init__(self, table: BlockTable, metric: str, budgets: dict[str, float]) -> None:
        self.table, self.model, self.solver = table, create_model(table, metric, budgets), new_solver()
        self.cost_term = self.model.cost_term

    def scaled_cost(self, selection: tuple[int, ...]) -> float:
        return self.cost_term.of_selection(selection)

    def step(self, cost_cap: float = math.inf) -> tuple[int, ...] | None:
        self.model.cost_cap_value = cost_cap if math.isfinite(cost_cap) else NO_CAP
        return _lexicographic_step(self.solver, self.model, self.table)

    def cheapest(self) -> tuple[int, ...] | None:
        model = self.model
        model.cost_cap_value, model.accuracy_floor_value = NO_CAP, model.no_floor
        model.max_accuracy.deactivate()
        model.min_cost.activate()
        return solve_exactly(self.solver, model, self.table)


def uses_cores(table: BlockTable) -> bool:
    """Whether the table's MIPs are solved by Lagrangian cores (large and rule-free: a block library)."""
    return not table.rules and sum(len(c) for c in table.choices) >= CORE_MIN_CANDIDATES


def _sweep(table: BlockTable, metric: str, budgets: dict[str, float]) -> _ModelSweep | CoreSolver:
    if uses_cores(table):
        return CoreSolver(table, metric, budgets)
    return _ModelSweep(table, metric, budgets)


def pareto_front(
    table: BlockTable, metric: str, budgets: dict[str, float] | None = None, max_points: int = 10_000
) -> list[ParetoPoint]:
    """Every non-dominated (cost, predicted accuracy) network, sorted by cost, within ``budgets``."""
    budgets = dict(budgets or {})
    check_budgets(table, budgets)
    if metric not in table.costs:
        raise ValueError(f"unknown cost {metric!r}; the table has {sorted(table.costs)}")
    table = _fitting(prune_dominated(table, sorted({metric, *budgets})), budgets)
    merged = None if budgets else merge_front(table, metric)
    if merged is not None:  # exact and complete without a MIP; the sweep's truncation keeps the top
        return [_point_of(table, selection, metric) for selection, _, _ in merged[-max_points:]]
    sweep = _sweep(table, metric, budgets)
    points: list[ParetoPoint] = []
    cap = math.inf
    while len(points) < max_points and (selection := sweep.step(cap)) is not None:
        point = _point_of(sweep.table, selection, metric)
        if not points or points[-1].cost - point.cost > COST_TIE * max(abs(point.cost), abs(points[-1].cost)):
            points.append(point)  # else its cost ties the more accurate point before it (far below the scale)
        cap = sweep.scaled_cost(selection) - STEP
        if sweep.cost_term.scale > RESCALE * (point.cost - table.min_cost(metric)):
            narrowed = within_caps(table, {**budgets, metric: point.cost})
            if narrowed is not None and _size(narrowed) < _size(sweep.table):
                sweep = _sweep(narrowed, metric, budgets)
                # below the point by more than a tie (costs this close are one cost, as in the merge), which
                # also clears the rounding of ``to_scaled`` on costs far above the scale
                cap = sweep.cost_term.to_scaled(point.cost - COST_TIE * abs(point.cost)) - STEP
    if not points:
        raise InfeasibleBudgetError(_joint_infeasibility_message(table, budgets))
    return sorted(points, key=lambda p: p.cost)


def _size(table: BlockTable) -> int:
    return sum(len(names) for names in table.choices)


def _fitting(table: BlockTable, budgets: dict[str, float]) -> BlockTable:
    """``table`` without the candidates no network within ``budgets`` can use (see ``within_caps``)."""
    fitting = within_caps(table, budgets) if budgets else table
    if fitting is None:
        raise InfeasibleBudgetError(_joint_infeasibility_message(table, budgets))
    return fitting


def spread_front(
    table: BlockTable, metric: str, budgets: dict[str, float] | None = None, points: int = 20
) -> list[ParetoPoint]:
    """Up to ``points`` exact Pareto points spread evenly over the front's cost range, sorted by cost.

    For fronts too large to list whole (block libraries): the caps of the epsilon-constraint steps are
    spaced evenly from the most accurate network's cost down to the cheapest feasible one, and each step
    is lexicographic, so every point returned is non-dominated. Budgets are respected as in ``pareto_front``.
    """
    budgets = dict(budgets or {})
    check_budgets(table, budgets)
    table = _fitting(prune_dominated(table, sorted({metric, *budgets})), budgets)
    sweep = _sweep(table, metric, budgets)
    top = sweep.step()
    if top is None:
        raise InfeasibleBudgetError(_joint_infeasibility_message(table, budgets))
    found = {(p := _point_of(table, top, metric)).blocks: replace(p, optimal_up_to=math.inf)}
    bottom = sweep.cheapest()
    assert bottom is not None  # the most accurate network fits, so a cheapest one exists
    for cap in np.linspace(sweep.scaled_cost(top), sweep.scaled_cost(bottom), max(points, 2))[1:]:
        selection = sweep.step(float(cap) + STEP)
        if selection is not None:  # the most accurate network within cap, so the best for budgets up to it
            point = _point_of(table, selection, metric)
            up_to = sweep.cost_term.offset + sweep.cost_term.scale * float(cap)
            found.setdefault(point.blocks, replace(point, optimal_up_to=max(up_to, point.cost)))
    return sorted(found.values(), key=lambda p: p.cost)


def best_within_budgets(table: BlockTable, budgets: dict[str, float]) -> ParetoPoint:
    """The network of highest predicted accuracy within every budget (cheapest first among ties)."""
    check_budgets(table, budgets)
    metric = next(iter(budgets), None) or next(iter(table.costs))
    table = _fitting(prune_dominated(table, sorted({metric, *budgets})), budgets)
    selection = _sweep(table, metric, budgets).step()
    if selection is None:
        raise InfeasibleBudgetError(_joint_infeasibility_message(table, budgets))
    return _point_of(table, selection, metric)


def _joint_infeasibility_message(table: BlockTable, budgets: dict[str, float]) -> str:
    limits = ", ".join(f"{n} <= {v:g} (smallest alone: {table.min_cost(n):g})" for n, v in budgets.items())
    return f"no network satisfies all budgets together: {limits}; relax at least one"
