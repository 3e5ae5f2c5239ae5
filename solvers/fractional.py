"""MathNAS's FLOPs-aware prediction (paper Eq. 5) and its exact maximisation by Dinkelbach iterations.

``Acc(N) = offset - P(x) / Q(x)`` with ``P(x) = sum_ij bA_ij * Fbar_ij * x_ij`` and
``Q(x) = F0 + sum_ij F_ij * x_ij > 0`` (the network's FLOPs). Maximising it is minimising ``P/Q``:
Dinkelbach solves ``min P(x) - lam * Q(x)`` as a MILP, sets ``lam = P/Q`` at the solution, and stops when
the MILP's optimum is 0: then no network has a smaller ratio. Each step strictly lowers ``lam``, and there
are finitely many networks, so it ends exactly. The other constraints (one block per slot, budgets,
structural rules) are the linear model's, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from solvers.additive_mip import create_model, selection_of
from solvers.pareto import InfeasibleBudgetError, ParetoPoint, _check_budgets, _solve, _solver
from solvers.table import BlockTable

MAX_ITERATIONS = 100


@dataclass(frozen=True)
class FractionalAccuracy:
    offset: float
    numerator: tuple[np.ndarray, ...]
    denominator: tuple[np.ndarray, ...]
    denominator_offset: float

    def __post_init__(self) -> None:
        if self.denominator_offset + sum(float(d.min()) for d in self.denominator) <= 0:
            raise ValueError("the denominator (network FLOPs) must be positive for every network")

    def predict(self, selection: tuple[int, ...]) -> float:
        p = sum(float(self.numerator[i][j]) for i, j in enumerate(selection))
        q = self.denominator_offset + sum(float(self.denominator[i][j]) for i, j in enumerate(selection))
        return self.offset - p / q

    def predict_all(self, selections: np.ndarray) -> np.ndarray:
        p = sum(self.numerator[i][selections[:, i]] for i in range(selections.shape[1]))
        q = self.denominator_offset + sum(self.denominator[i][selections[:, i]] for i in range(selections.shape[1]))
        return self.offset - p / q


def best_fractional(
    table: BlockTable, accuracy: FractionalAccuracy, budgets: dict[str, float]
) -> tuple[ParetoPoint, int]:
    """The network of highest FLOPs-aware predicted accuracy within ``budgets``; also the MILPs solved."""
    _check_budgets(table, budgets)
    metric = next(iter(budgets), None) or next(iter(table.costs))
    model = create_model(table, metric, budgets)
    model.max_accuracy.deactivate()
    model.min_cost.deactivate()
    pairs = list(model.PAIRS)
    p_scale = max(float(sum(np.abs(a).max() for a in accuracy.numerator)), 1e-12)
    q_scale = max(accuracy.denominator_offset + float(sum(d.max() for d in accuracy.denominator)), 1e-12)
    model.lam = pyo.Param(mutable=True, initialize=0.0)  # in units of p_scale / q_scale
    numerator = sum(accuracy.numerator[i][j] / p_scale * model.x[i, j] for i, j in pairs)
    denominator = accuracy.denominator_offset / q_scale + sum(
        accuracy.denominator[i][j] / q_scale * model.x[i, j] for i, j in pairs
    )
    model.dinkelbach = pyo.Objective(expr=numerator - model.lam * denominator, sense=pyo.minimize)
    solver = _solver()
    if not _solve(solver, model):  # lam = 0: any feasible network starts the iterations
        raise InfeasibleBudgetError(f"no network satisfies the budgets {budgets} and the structural rules")
    selection = selection_of(model, table)
    model.lam = pyo.value(numerator) / pyo.value(denominator)
    milps = 1
    while milps <= MAX_ITERATIONS:
        _solve(solver, model)
        milps += 1
        p, q = pyo.value(numerator), pyo.value(denominator)
        if p - pyo.value(model.lam) * q >= -1e-9:  # no network has a smaller ratio than the incumbent
            break
        selection = selection_of(model, table)
        model.lam = p / q
    else:
        raise RuntimeError(f"Dinkelbach did not converge in {MAX_ITERATIONS} iterations")
    point = ParetoPoint(
        blocks=tuple(table.choices[i][j] for i, j in enumerate(selection)),
        predicted_accuracy=accuracy.predict(selection),
        cost=table.predict_cost(metric, selection),
        costs={name: table.predict_cost(name, selection) for name in table.costs},
    )
    return point, milps
