"""MIP formulation for block-additive predictions: one binary per (slot, block), one block per slot.

``create_model`` only builds the model; the solve loop lives in ``blocknas.solvers.pareto``. Accuracy and costs
enter the model shifted and scaled to about [0, 1] (``ScaledTerm``), so solver tolerances are relative
whatever the units; callers re-evaluate exact values from the chosen blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from blocknas.solvers.highs import solve_model
from blocknas.solvers.table import BlockTable

# Relative to each objective's range (the model is scaled to about [0, 1]): points closer than this in
# cost or in accuracy are treated as the same point. It must stay well above the solver's feasibility
# tolerance (``blocknas.solvers.highs``), or a cap tightened by STEP would still admit the previous point.
STEP = 1e-6
NO_CAP = 2.0  # a cost cap no network reaches: scaled network costs lie in [0, 1]
# Two networks whose values differ by less than this, relative to the value, tie (the cheaper is taken).
TIE = 1e-12
# A row (budget, cost cap, accuracy floor) counts as met when exceeded by at most this, in scaled units:
# HiGHS's own feasibility tolerance is looser (a tighter one can stall it), so answers are checked here.
ROW_TOLERANCE = 1e-12
TIGHTENINGS = 8  # re-solves with a violated row tightened before giving up on numerical grounds


@dataclass(frozen=True)
class ScaledTerm:
    """``value = offset + scale * sum_i scaled[i][j]`` with every ``scaled[i]`` having minimum 0."""

    offset: float
    scale: float
    scaled: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, offset: float, per_slot: tuple[np.ndarray, ...], scaled: bool = True) -> ScaledTerm:
        """``scaled=False``: shifted only (scale 1), in the values' own units."""
        mins = [float(v.min()) for v in per_slot]
        scale = float(sum(float(v.max()) - lo for v, lo in zip(per_slot, mins, strict=True))) or 1.0
        scale = scale if scaled else 1.0
        values = tuple((np.asarray(v, dtype=float) - lo) / scale for v, lo in zip(per_slot, mins, strict=True))
        return cls(offset + sum(mins), scale, values)

    def to_scaled(self, value: float) -> float:
        return (value - self.offset) / self.scale

    def tie_floor(self, value: float) -> float:
        """The lowest scaled value that ties with ``value`` (``TIE`` relative to the value, not the range)."""
        return value - TIE * max(abs(self.offset / self.scale + value), 1.0 / self.scale)

    def of_selection(self, selection: tuple[int, ...]) -> float:
        return float(sum(self.scaled[i][j] for i, j in enumerate(selection)))


def create_model(
    table: BlockTable, objective_cost: str, budgets: dict[str, float], by_type: bool = False
) -> pyo.ConcreteModel:
    """Model with objectives ``max_accuracy`` and ``min_cost`` (one active at a time) and constraints:

    - ``one_block_per_slot[i]``: exactly one candidate chosen per slot;
    - ``budget[name]``: each budgeted cost within its limit (mutable ``budget_limit[name]``);
    - ``cost_cap``: objective cost <= mutable ``cost_cap_value`` (the epsilon of the sweep);
    - ``accuracy_floor``: accuracy >= mutable ``accuracy_floor_value`` (for lexicographic ties).
    """
    model = pyo.ConcreteModel(name=f"additive_{objective_cost}")
    pairs = [(i, j) for i, names in enumerate(table.choices) for j in range(len(names))]
    model.PAIRS = pyo.Set(initialize=pairs, dimen=2, ordered=True)
    model.SLOTS = pyo.RangeSet(0, len(table.slots) - 1)
    types = _cost_types(table, [objective_cost, *budgets]) if by_type else None
    model.x = pyo.Var(model.PAIRS, domain=pyo.UnitInterval if types else pyo.Binary)
    if types:  # see _cost_types: the integers are the counts per type, the x a transportation polytope
        model.TYPES = pyo.RangeSet(0, len(types) - 1)
        model.count = pyo.Var(model.TYPES, domain=pyo.NonNegativeIntegers, bounds=(0, len(table.slots)))
        model.count_of_type = pyo.Constraint(
            model.TYPES, rule=lambda m, g: sum(m.x[i, j] for i, j in types[g]) == m.count[g]
        )

    # Accuracy in its own units, shifted only: scaled to [0, 1] by a range that a few huge values set (a
    # no-op layer's KL of 400 in a library whose networks differ by 0.001), the differences that decide
    # fall below HiGHS's optimality tolerance and it returns a worse network as optimal.
    accuracy = ScaledTerm.of(table.accuracy_offset, table.accuracy, scaled=False)
    cost = ScaledTerm.of(table.cost_offsets.get(objective_cost, 0.0), table.costs[objective_cost])
    model.accuracy_term, model.cost_term = accuracy, cost

    variables = [model.x[i, j] for i, j in pairs]

    def linear(term: ScaledTerm):  # built directly: numpy-float * var products are slow in Pyomo
        coefficients = np.concatenate(term.scaled).tolist()
        return LinearExpression(constant=0.0, linear_coefs=coefficients, linear_vars=variables)

    def one_block_per_slot(m, i):
        return sum(m.x[i, j] for j in range(len(table.choices[i]))) == 1

    model.one_block_per_slot = pyo.Constraint(model.SLOTS, rule=one_block_per_slot)

    budget_terms = {name: ScaledTerm.of(table.cost_offsets.get(name, 0.0), table.costs[name]) for name in budgets}
    model.BUDGETS = pyo.Set(initialize=sorted(budgets))

    model.budget_terms = budget_terms
    model.budget_limit = pyo.Param(
        model.BUDGETS, mutable=True, initialize={n: budget_terms[n].to_scaled(budgets[n]) + 1e-9 for n in budgets}
    )
    model.budget = pyo.Constraint(model.BUDGETS, rule=lambda m, n: linear(budget_terms[n]) <= m.budget_limit[n])

    _add_rules(model, table)

    model.cost_cap_value = pyo.Param(mutable=True, initialize=NO_CAP)
    model.cost_cap = pyo.Constraint(expr=linear(cost) <= model.cost_cap_value)
    model.no_floor = -1.0 - float(sum(float(v.max()) for v in accuracy.scaled))  # below every network
    model.accuracy_floor_value = pyo.Param(mutable=True, initialize=model.no_floor)
    model.accuracy_floor = pyo.Constraint(expr=linear(accuracy) >= model.accuracy_floor_value)

    model.max_accuracy = pyo.Objective(expr=linear(accuracy), sense=pyo.maximize)
    model.min_cost = pyo.Objective(expr=linear(cost), sense=pyo.minimize)
    model.min_cost.deactivate()
    return model


def _cost_types(table: BlockTable, metrics: list[str]) -> list[list[tuple[int, int]]] | None:
    """Candidates grouped by their costs, when far fewer groups than candidates (a Puzzle library: a variant
    costs the same in every layer). Then a network's costs depend only on how many slots use each group,
    and for given integer counts the best assignment of slots is a transportation problem, whose LP has
    integral optima: the MIP branches on a few counts instead of every binary. None when it does not pay
    off (or the table has rules)."""
    if table.rules:
        return None
    groups: dict[tuple, list[tuple[int, int]]] = {}
    for i, names in enumerate(table.choices):
        for j in range(len(names)):
            groups.setdefault(tuple(float(table.costs[m][i][j]) for m in metrics), []).append((i, j))
    return list(groups.values()) if len(groups) * 4 <= sum(len(c) for c in table.choices) else None


def _add_rules(model: pyo.ConcreteModel, table: BlockTable) -> None:
    """Connectivity rules (see ``blocknas.solvers.structure``): one path variable per path, sum >= 1."""
    rows = [(r, k) for r, rule in enumerate(table.rules) for k in range(len(rule.paths))]
    model.RULE_PATHS = pyo.Set(initialize=rows, dimen=2, ordered=True)
    model.path_active = pyo.Var(model.RULE_PATHS, bounds=(0, 1))

    def edge_active(i: int, inactive: str):
        names = table.choices[i]
        return 1 - model.x[i, names.index(inactive)] if inactive in names else 1

    def path_edges(m, r, k, i):
        rule = table.rules[r]
        if i not in rule.paths[k]:
            return pyo.Constraint.Skip
        return m.path_active[r, k] <= edge_active(i, rule.inactive)

    model.path_needs_edges = pyo.Constraint(model.RULE_PATHS, model.SLOTS, rule=path_edges)
    model.some_path_active = pyo.Constraint(
        range(len(table.rules)),
        rule=lambda m, r: sum(m.path_active[r, k] for k in range(len(table.rules[r].paths))) >= 1,
    )


def solve_exactly(solver, model: pyo.ConcreteModel, table: BlockTable) -> tuple[int, ...] | None:
    """Solve ``model``; the network chosen meets the cost cap, the accuracy floor and every budget in exact
    arithmetic (``ROW_TOLERANCE``): a network within HiGHS's tolerance only is refused, the rows it
    violates are tightened by its excess and the model is solved again. None if no network is feasible.
    The rows' limits are as they were when this returns."""
    rows = [
        (model.cost_cap_value, model.cost_term, 1.0),
        (model.accuracy_floor_value, model.accuracy_term, -1.0),
        *((model.budget_limit[n], model.budget_terms[n], 1.0) for n in model.BUDGETS),
    ]
    # each row's tolerance in its units: the scaled rows' range is 1, the accuracy's its own range
    tolerance = [
        ROW_TOLERANCE * max(1.0, -model.no_floor if term is model.accuracy_term else 1.0) for _, term, _ in rows
    ]
    saved = [pyo.value(param) for param, _, _ in rows]
    try:
        for _ in range(TIGHTENINGS):
            if not solve_model(solver, model):
                return None
            selection = selection_of(model, table)
            violated = False
            for (param, term, sign), tol in zip(rows, tolerance, strict=True):
                excess = sign * (term.of_selection(selection) - pyo.value(param))
                if excess > tol:
                    param.set_value(pyo.value(param) - sign * (excess + tol))
                    violated = True
            if not violated:
                return selection
    finally:
        for (param, _, _), value in zip(rows, saved, strict=True):
            param.set_value(value)
    raise RuntimeError(
        f"HiGHS kept returning networks that exceed a row by more than {ROW_TOLERANCE:g} (scaled) "
        f"after {TIGHTENINGS} tightenings; numerical trouble in this table"
    )


def selection_of(model: pyo.ConcreteModel, table: BlockTable) -> tuple[int, ...]:
    """The chosen block index per slot of a solved model."""
    chosen = []
    for i, names in enumerate(table.choices):
        values = [pyo.value(model.x[i, j]) for j in range(len(names))]
        chosen.append(int(np.argmax(values)))
    return tuple(chosen)
