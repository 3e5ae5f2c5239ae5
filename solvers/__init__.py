"""Pure optimisation over plain data: block tables, Pyomo MIP models, exact Pareto fronts.

Knows nothing of Ray, torch or SQL. The table and the answers' types import without Pyomo (a read of stored
fronts needs no solver); the solvers load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from blocknas.solvers.points import InfeasibleBudgetError, ParetoPoint
from blocknas.solvers.table import BlockTable

if TYPE_CHECKING:
    from blocknas.solvers.brute_force import brute_force_front, enumerate_networks
    from blocknas.solvers.pareto import best_within_budgets, check_budgets, pareto_front
    from blocknas.solvers.pools import solution_pool

_SOLVING = {
    "brute_force_front": "brute_force",
    "enumerate_networks": "brute_force",
    "best_within_budgets": "pareto",
    "check_budgets": "pareto",
    "pareto_front": "pareto",
    "solution_pool": "pools",
}

__all__ = [
    "BlockTable",
    "InfeasibleBudgetError",
    "ParetoPoint",
    "best_within_budgets",
    "brute_force_front",
    "check_budgets",
    "enumerate_networks",
    "pareto_front",
    "solution_pool",
]


def __getattr__(name: str):
    if name in _SOLVING:
        return getattr(importlib.import_module(f"blocknas.solvers.{_SOLVING[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
