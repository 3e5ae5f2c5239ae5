"""Predictors: how block values predict a whole network, as objects every consumer uses the same way (``blocknas
run`` and ``solve``, ``fronts``, ``switch``, registered targets, the dashboard and ``blocknas bench``).

A predictor (``solver.predictor=<name>``, ``bench.predictor``) is an object with ``fit(space, table, measured)``
that returns a ``Prediction``: ``predict_all`` over selections, the exact ``front`` of a target and the
``best`` network within budgets, and ``key`` (what names its fronts in the store, so that no inputs are solved
twice). Built in:

- ``linear``: the block table's additive prediction, one MILP per point (MathNAS Eq. 3);
- ``flops``: MathNAS Eq. 5, linear-fractional in the network's FLOPs, solved exactly by Dinkelbach.

Yours is registered here, an entry point of ``blocknas.predictors`` or an import path: an object with ``fit``,
or a function ``(space, table, measured) -> Prediction``. ``LinearPrediction(table)`` over a table of your
own values is the shortest way to an exact front.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from blocknas.orchestrator.hashing import content_hash
from blocknas.workers.registry import Registry

if TYPE_CHECKING:  # the solvers (Pyomo) load when a prediction is solved, not when a config is validated
    from blocknas.solvers import BlockTable, ParetoPoint
    from blocknas.solvers.fractional import FractionalAccuracy

Selection = tuple[int, ...]


class Prediction(Protocol):
    objective: str  # how the solver treats it, for reports

    def predict_all(self, selections: np.ndarray) -> np.ndarray: ...

    def front(self, target: str, budgets: dict[str, float], max_points: int) -> list[ParetoPoint]: ...

    def best(self, budgets: dict[str, float]) -> ParetoPoint: ...

    def key(self) -> str: ...


@dataclass(frozen=True)
class LinearPrediction:
    """The sum of the table's block values and its offset."""

    table: BlockTable
    objective: str = "linear (one MILP)"

    def predict_all(self, selections: np.ndarray) -> np.ndarray:
        return self.table.accuracy_offset + sum(
            self.table.accuracy[i][selections[:, i]] for i in range(selections.shape[1])
        )

    def front(self, target, budgets, max_points):
        from blocknas.solvers import pareto_front

        return pareto_front(self.table, target, budgets, max_points=max_points)

    def best(self, budgets):
        from blocknas.solvers import best_within_budgets

        return best_within_budgets(self.table, budgets)

    def key(self):
        from blocknas.orchestrator.front_service import table_hash_of

        return table_hash_of(self.table)


@dataclass(frozen=True)
class FractionalPrediction:
    """MathNAS Eq. 5 (``blocknas.solvers.fractional``)."""

    table: BlockTable  # its block values are Eq. 5's numerator; its costs constrain the networks
    fractional: FractionalAccuracy
    objective: str = "linear-fractional (Dinkelbach MILPs)"

    def predict_all(self, selections: np.ndarray) -> np.ndarray:
        return self.fractional.predict_all(selections)

    def front(self, target, budgets, max_points):
        from blocknas.solvers.fractional import fractional_front

        return fractional_front(self.table, self.fractional, target, budgets, max_points)

    def best(self, budgets):
        from blocknas.solvers.fractional import best_fractional

        return best_fractional(self.table, self.fractional, budgets)[0]

    def key(self):
        from blocknas.orchestrator.front_service import rounded, table_hash_of

        return content_hash(
            [
                table_hash_of(self.table),
                [rounded(a) for a in self.fractional.numerator],
                rounded(self.fractional.offset),
            ]
        )


class LinearPredictor:
    @staticmethod
    def fit(space, table: BlockTable, measured: dict[Selection, float]) -> LinearPrediction:
        return LinearPrediction(table)


class FlopsPredictor:
    @staticmethod
    def fit(space, table: BlockTable, measured: dict[Selection, float]) -> FractionalPrediction:
        """Eq. 5 over the table's block values, with the space's analytic FLOPs."""
        from blocknas.orchestrator.estimation import flops_accuracy
        from blocknas.workers.costs import analytic_costs

        flops = analytic_costs(space, "flops")
        per_slot = tuple(np.array([flops.blocks[(i, c)] for c in slot.choices]) for i, slot in enumerate(space.slots))
        base = tuple(slot.choices.index(b) for slot, b in zip(space.slots, space.base, strict=True))
        return FractionalPrediction(table, flops_accuracy(table.accuracy, base, per_slot, flops.fixed, measured))


@dataclass(frozen=True)
class _FunctionPredictor:
    fit_function: object

    def fit(self, space, table, measured):
        return self.fit_function(space, table, measured)


def _adapt(name: str, obj):
    return obj if hasattr(obj, "fit") else _FunctionPredictor(obj)


PREDICTORS: Registry = Registry("predictor", _adapt)
PREDICTORS.register("linear", LinearPredictor())
PREDICTORS.register("flops", FlopsPredictor())


def fit_prediction(name: str, space, table: BlockTable, measured: dict[Selection, float]) -> Prediction:
    """The prediction of predictor ``name`` (registered, entry point or import path) for this table."""
    return PREDICTORS.get(name, "solver.predictor").fit(space, table, measured)
