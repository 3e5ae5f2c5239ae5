"""Exact Pareto fronts (predicted accuracy vs. one cost) by an epsilon-constraint sweep of MILPs.

Each step maximises accuracy under ``cost <= cap``, then minimises cost at that accuracy (so the point is
non-dominated, not just optimal), then tightens the cap just below the point's cost. Every
non-dominated point is found exactly once; the sweep ends when the cap becomes infeasible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers import Highs

from solvers.additive_mip import create_model, selection_of
from solvers.merge_front import merge_front
from solvers.pruning import prune_dominated
from solvers.table import BlockTable

SOLVER_NAME = "appsi_highs"
# Relative to each objective's range (the model is scaled to about [0, 1]): points closer than this in
# cost or in accuracy are treated as the same point. It must stay well above the feasibility tolerances
# set below, or a cap tightened by STEP would still admit the previous point.
STEP = 1e-6
_FEASIBILITY_TOLERANCE = 1e-9


class InfeasibleBudgetError(ValueError):
    """No network satisfies the budgets; the message names the smallest feasible cost."""


@dataclass(frozen=True)
class ParetoPoint:
    blocks: tuple[str, ...]
    predicted_accuracy: float
    cost: float
    costs: dict[str, float]  # every cost metric of the table, for reports


def _solver():
    # The persistent appsi interface (registered as SOLVER_NAME) re-uses the model between the sweep's
    # solves instead of rewriting it each time.
    solver = Highs()
    if not solver.available():
        raise RuntimeError(f"the MIP solver {SOLVER_NAME!r} is not available: pip install highspy")
    solver.config.mip_gap = 0.0
    solver.config.load_solution = False
    solver.highs_options = {
        "mip_abs_gap": 0.0,
        "mip_rel_gap": 0.0,
        "primal_feasibility_tolerance": _FEASIBILITY_TOLERANCE,
        "mip_feasibility_tolerance": _FEASIBILITY_TOLERANCE,
        "threads": 1,
        "random_seed": 0,
    }
    return solver


def _solve(solver, model) -> bool:
    results = solver.solve(model)
    if results.termination_condition == TerminationCondition.optimal:
        results.solution_loader.load_vars()
        return True
    if results.termination_condition in (TerminationCondition.infeasible,):
        return False
    raise RuntimeError(f"HiGHS stopped with {results.termination_condition}; the model may be malformed")


def _point(table: BlockTable, model, metric: str) -> ParetoPoint:
    return _point_of(table, selection_of(model, table), metric)


def _point_of(table: BlockTable, selection: tuple[int, ...], metric: str) -> ParetoPoint:
    return ParetoPoint(
        blocks=tuple(table.choices[i][j] for i, j in enumerate(selection)),
        predicted_accuracy=table.predict_accuracy(selection),
        cost=table.predict_cost(metric, selection),
        costs={name: table.predict_cost(name, selection) for name in table.costs},
    )


def _check_budgets(table: BlockTable, budgets: dict[str, float]) -> None:
    for name, limit in budgets.items():
        if name not in table.costs:
            raise ValueError(f"budget for unknown target {name!r}; the table has {sorted(table.costs)}")
        smallest = table.min_cost(name)
        if limit < smallest:
            raise InfeasibleBudgetError(
                f"budget {name} <= {limit:g} is infeasible: the smallest feasible {name} cost is {smallest:g}"
            )


def _lexicographic_step(solver, model) -> bool:
    """Max accuracy under the current cost cap, then min cost at that accuracy."""
    model.max_accuracy.activate()
    model.min_cost.deactivate()
    model.accuracy_floor_value = -1.0
    if not _solve(solver, model):
        return False
    model.accuracy_floor_value = pyo.value(model.max_accuracy.expr) - STEP
    model.max_accuracy.deactivate()
    model.min_cost.activate()
    if not _solve(solver, model):
        raise RuntimeError("lexicographic cost step infeasible at an accuracy just found; numerical trouble")
    return True


def pareto_front(
    table: BlockTable, metric: str, budgets: dict[str, float] | None = None, max_points: int = 10_000
) -> list[ParetoPoint]:
    """Every non-dominated (cost, predicted accuracy) network, sorted by cost, within ``budgets``."""
    budgets = dict(budgets or {})
    _check_budgets(table, budgets)
    if metric not in table.costs:
        raise ValueError(f"unknown cost {metric!r}; the table has {sorted(table.costs)}")
    table = prune_dominated(table, sorted({metric, *budgets}))
    merged = None if budgets else merge_front(table, metric)
    if merged is not None:  # exact and complete without a MIP; the sweep's truncation keeps the top
        return [_point_of(table, selection, metric) for selection, _, _ in merged[-max_points:]]
    model = create_model(table, metric, budgets)
    solver = _solver()
    points: list[ParetoPoint] = []
    while len(points) < max_points and _lexicographic_step(solver, model):
        points.append(_point(table, model, metric))
        model.cost_cap_value = pyo.value(model.min_cost.expr) - STEP
    if not points:
        raise InfeasibleBudgetError(_joint_infeasibility_message(table, budgets))
    return sorted(points, key=lambda p: p.cost)


def spread_front(table: BlockTable, metric: str, budgets: dict[str, float] | None = None,
                 points: int = 20) -> list[ParetoPoint]:
    """Up to ``points`` exact Pareto points spread evenly over the front's cost range, sorted by cost.

    For fronts too large to list whole (block libraries): the caps of the epsilon-constraint steps are
    spaced evenly from the most accurate network's cost down to the cheapest feasible one, and each step
    is lexicographic, so every point returned is non-dominated. Budgets are respected as in ``pareto_front``.
    """
    budgets = dict(budgets or {})
    _check_budgets(table, budgets)
    table = prune_dominated(table, sorted({metric, *budgets}))
    model = create_model(table, metric, budgets)
    solver = _solver()
    if not _lexicographic_step(solver, model):
        raise InfeasibleBudgetError(_joint_infeasibility_message(table, budgets))
    found = {(p := _point(table, model, metric)).blocks: p}
    top = pyo.value(model.min_cost.expr)
    model.accuracy_floor_value = -1.0  # the cheapest feasible network bounds the range from below
    _solve(solver, model)
    bottom = pyo.value(model.min_cost.expr)
    for cap in np.linspace(top, bottom, max(points, 2))[1:]:
        model.cost_cap_value = float(cap) + STEP
        if _lexicographic_step(solver, model):
            point = _point(table, model, metric)
            found.setdefault(point.blocks, point)
    return sorted(found.values(), key=lambda p: p.cost)


def best_within_budgets(table: BlockTable, budgets: dict[str, float]) -> ParetoPoint:
    """The network of highest predicted accuracy within every budget (cheapest first among ties)."""
    _check_budgets(table, budgets)
    metric = next(iter(budgets), None) or next(iter(table.costs))
    table = prune_dominated(table, sorted({metric, *budgets}))
    model = create_model(table, metric, budgets)
    if not _lexicographic_step(_solver(), model):
        raise InfeasibleBudgetError(_joint_infeasibility_message(table, budgets))
    return _point(table, model, metric)


def _joint_infeasibility_message(table: BlockTable, budgets: dict[str, float]) -> str:
    limits = ", ".join(f"{n} <= {v:g} (smallest alone: {table.min_cost(n):g})" for n, v in budgets.items())
    return f"no network satisfies all budgets together: {limits}; relax at least one"
