"""Exact MIP over ``SurrogateModel`` predictions (block values plus pairwise interactions).

Each product ``x[a, j] * x[b, q]`` becomes a continuous ``y[a, b, j, q] >= 0`` with the marginal
constraints ``sum_q y[a, b, j, q] = x[a, j]`` and ``sum_j y[a, b, j, q] = x[b, q]``: with one block per
slot and binary ``x``, they force ``y`` to equal the product, so the model is exact (and its LP
relaxation is the tight local polytope). Costs may be surrogates too: a budget then bounds the learned
cost, not only the block table's.

``surrogate_pool`` returns the ``k`` best networks in order, never one in ``exclude`` (no-good cuts), and
optionally only networks within ``radius`` slots of ``center`` (local branching: a trust region around the
best network verified so far).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyomo.environ as pyo

from blocknas.solvers.formulations.additive_mip import _add_rules, selection_of
from blocknas.solvers.highs import new_solver, solve_model
from blocknas.solvers.surrogate import Selection, SurrogateModel
from blocknas.solvers.table import BlockTable


def _expression(model: pyo.ConcreteModel, surrogate: SurrogateModel, scale: float):
    terms = [float(v) / scale * model.x[i, j] for i, values in enumerate(surrogate.unary) for j, v in enumerate(values)]
    for (a, b), values in surrogate.pairs.items():
        terms += [
            float(values[j, q]) / scale * model.y[a, b, j, q]
            for j in range(values.shape[0])
            for q in range(values.shape[1])
            if values[j, q] != 0.0
        ]
    return sum(terms)


def _span(surrogate: SurrogateModel) -> float:
    span = sum(float(v.max() - v.min()) for v in surrogate.unary)
    span += sum(float(v.max() - v.min()) for v in surrogate.pairs.values())
    return span or 1.0


def surrogate_pool(
    table: BlockTable,
    accuracy: SurrogateModel,
    k: int,
    costs: dict[str, SurrogateModel] | None = None,
    budgets: dict[str, float] | None = None,
    exclude: Sequence[Selection] = (),
    center: Selection | None = None,
    radius: int | None = None,
) -> list[Selection]:
    """Up to ``k`` networks of highest predicted ``accuracy``, best first (fewer if fewer are feasible).

    ``table`` gives the slots, choices and structural rules; ``costs[name]`` predicts each budgeted cost.
    """
    costs, budgets = dict(costs or {}), dict(budgets or {})
    missing = sorted(set(budgets) - set(costs))
    if missing:
        raise ValueError(f"budgets for {missing} but no cost model for them; cost models: {sorted(costs)}")
    if k < 1:
        raise ValueError(f"the pool size must be >= 1, got {k}")
    model = pyo.ConcreteModel(name="surrogate")
    pairs_used = set(accuracy.pairs) | {p for name in budgets for p in costs[name].pairs}
    sizes = [len(c) for c in table.choices]
    model.x = pyo.Var([(i, j) for i, n in enumerate(sizes) for j in range(n)], domain=pyo.Binary)
    model.SLOTS = pyo.RangeSet(0, len(sizes) - 1)
    model.y = pyo.Var(
        [(a, b, j, q) for a, b in sorted(pairs_used) for j in range(sizes[a]) for q in range(sizes[b])], bounds=(0, 1)
    )
    model.one_block_per_slot = pyo.Constraint(
        model.SLOTS, rule=lambda m, i: sum(m.x[i, j] for j in range(sizes[i])) == 1
    )
    model.marginals = pyo.ConstraintList()
    for a, b in sorted(pairs_used):
        for j in range(sizes[a]):
            model.marginals.add(sum(model.y[a, b, j, q] for q in range(sizes[b])) == model.x[a, j])
        for q in range(sizes[b]):
            model.marginals.add(sum(model.y[a, b, j, q] for j in range(sizes[a])) == model.x[b, q])
    _add_rules(model, table)
    model.budget = pyo.ConstraintList()
    for name, limit in budgets.items():
        scale = max(abs(limit - costs[name].offset), _span(costs[name]))
        model.budget.add(_expression(model, costs[name], scale) <= (limit - costs[name].offset) / scale + 1e-9)
    model.cuts = pyo.ConstraintList()

    def cut(selection: Selection) -> None:
        model.cuts.add(sum(model.x[i, j] for i, j in enumerate(selection)) <= len(sizes) - 1)

    for selection in exclude:
        cut(tuple(selection))
    if center is not None and radius is not None:
        model.cuts.add(sum(model.x[i, j] for i, j in enumerate(center)) >= len(sizes) - radius)
    model.objective = pyo.Objective(expr=_expression(model, accuracy, _span(accuracy)), sense=pyo.maximize)
    solver = new_solver()
    pool: list[Selection] = []
    while len(pool) < k and solve_model(solver, model):
        selection = selection_of(model, table)
        pool.append(selection)
        cut(selection)
    return pool
