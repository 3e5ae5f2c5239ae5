"""MathNAS's FLOPs-aware prediction (paper Eq. 5) and its exact maximisation by Dinkelbach iterations.

``Acc(N) = offset - P(x) / Q(x)`` with ``P(x) = sum_ij bA_ij * Fbar_ij * x_ij`` and
``Q(x) = F0 + sum_ij F_ij * x_ij > 0`` (the network's FLOPs). Maximising it is minimising ``P/Q``:
Dinkelbach solves ``min P(x) - lam * Q(x)`` as a MILP, sets ``lam = P/Q`` at the solution, and stops when
the MILP's optimum is 0: then no network has a smaller ratio. Each step strictly lowers ``lam``, and there
are finitely many networks, so it ends exactly. The other constraints (one block per slot, budgets,
structural rules, the sweep's cost cap) are the linear model's, unchanged, so the same epsilon-constraint
sweep as ``blocknas.solvers.pareto`` gives the exact Pareto front of this objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from blocknas.solvers.formulations.additive_mip import create_model, selection_of
from blocknas.solvers.highs import new_solver, solve_model
from blocknas.solvers.pareto import STEP, InfeasibleBudgetError, ParetoPoint, check_budgets
from blocknas.solvers.table import BlockTable

MAX_ITERATIONS = 100
_RATIO_TOLERANCE = 1e-9


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
        return float(self.predict_all(np.array([selection]))[0])

    def predict_all(self, selections: np.ndarray) -> np.ndarray:
        p = sum(self.numerator[i][selections[:, i]] for i in range(selections.shape[1]))
        q = self.denominator_offset + sum(self.denominator[i][selections[:, i]] for i in range(selections.shape[1]))
        return self.offset - p / q


class _FractionalModel:
    """The linear model plus the Dinkelbach objective and a ratio cap for the lexicographic cost step."""

    def __init__(self, table: BlockTable, accuracy: FractionalAccuracy, metric: str, budgets: dict[str, float]):
        self.table, self.accuracy, self.metric = table, accuracy, metric
        model = self.model = create_model(table, metric, budgets)
        model.max_accuracy.deactivate()
        model.min_cost.deactivate()
        pairs = list(model.PAIRS)
        p_scale = max(float(sum(np.abs(a).max() for a in accuracy.numerator)), 1e-12)
        q_scale = max(accuracy.denominator_offset + float(sum(d.max() for d in accuracy.denominator)), 1e-12)
        model.lam = pyo.Param(mutable=True, initialize=0.0)  # in units of p_scale / q_scale
        self.numerator = sum(accuracy.numerator[i][j] / p_scale * model.x[i, j] for i, j in pairs)
        self.denominator = accuracy.denominator_offset / q_scale + sum(
            accuracy.denominator[i][j] / q_scale * model.x[i, j] for i, j in pairs
        )
        model.dinkelbach = pyo.Objective(expr=self.numerator - model.lam * self.denominator, sense=pyo.minimize)
        model.ratio_cap = pyo.Constraint(expr=self.numerator - model.lam * self.denominator <= _RATIO_TOLERANCE)
        model.ratio_cap.deactivate()
        self.solver = new_solver()
        self.milps = 0

    def best_under_cap(self) -> bool:
        """Dinkelbach under the current cost cap, then the cheapest network of that ratio; False if none."""
        model = self.model
        model.min_cost.deactivate()
        model.ratio_cap.deactivate()
        model.dinkelbach.activate()
        model.lam = 0.0  # any feasible network starts the iterations
        self.milps += 1
        if not solve_model(self.solver, model):
            return False
        model.lam = pyo.value(self.numerator) / pyo.value(self.denominator)
        for _ in range(MAX_ITERATIONS):
            solve_model(self.solver, model)
            self.milps += 1
            p, q = pyo.value(self.numerator), pyo.value(self.denominator)
            if p - pyo.value(model.lam) * q >= -_RATIO_TOLERANCE:  # no network has a smaller ratio
                break
            model.lam = p / q
        else:
            raise RuntimeError(f"Dinkelbach did not converge in {MAX_ITERATIONS} iterations")
        model.dinkelbach.deactivate()
        model.ratio_cap.activate()
        model.min_cost.activate()
        self.milps += 1
        if not solve_model(self.solver, model):
            raise RuntimeError("cost step infeasible at a ratio just found; numerical trouble")
        return True

    def point(self) -> ParetoPoint:
        selection = selection_of(self.model, self.table)
        return ParetoPoint(
            blocks=tuple(self.table.choices[i][j] for i, j in enumerate(selection)),
            predicted_accuracy=self.accuracy.predict(selection),
            cost=self.table.predict_cost(self.metric, selection),
            costs={name: self.table.predict_cost(name, selection) for name in self.table.costs},
        )


def best_fractional(
    table: BlockTable, accuracy: FractionalAccuracy, budgets: dict[str, float]
) -> tuple[ParetoPoint, int]:
    """The network of highest FLOPs-aware predicted accuracy within ``budgets``; also the MILPs solved."""
    check_budgets(table, budgets)
    metric = next(iter(budgets), None) or next(iter(table.costs))
    fractional = _FractionalModel(table, accuracy, metric, budgets)
    if not fractional.best_under_cap():
        raise InfeasibleBudgetError(f"no network satisfies the budgets {budgets} and the structural rules")
    return fractional.point(), fractional.milps


def fractional_front(
    table: BlockTable,
    accuracy: FractionalAccuracy,
    metric: str,
    budgets: dict[str, float] | None = None,
    max_points: int = 10_000,
) -> list[ParetoPoint]:
    """Every non-dominated (cost, FLOPs-aware predicted accuracy) network, sorted by cost."""
    budgets = dict(budgets or {})
    check_budgets(table, budgets)
    if metric not in table.costs:
        raise ValueError(f"unknown cost {metric!r}; the table has {sorted(table.costs)}")
    fractional = _FractionalModel(table, accuracy, metric, budgets)
    points: list[ParetoPoint] = []
    while len(points) < max_points and fractional.best_under_cap():
        points.append(fractional.point())
        fractional.model.cost_cap_value = pyo.value(fractional.model.min_cost.expr) - STEP
    if not points:
        raise InfeasibleBudgetError(f"no network satisfies the budgets {budgets} and the structural rules")
    return sorted(points, key=lambda p: p.cost)
