"""Pure optimisation over plain data: block tables, Pyomo MIP models, exact Pareto fronts.

Knows nothing of Ray, torch or SQL.
"""

from blocknas.solvers.brute_force import brute_force_front, enumerate_networks
from blocknas.solvers.pareto import InfeasibleBudgetError, ParetoPoint, best_within_budgets, check_budgets, pareto_front
from blocknas.solvers.pools import solution_pool
from blocknas.solvers.table import BlockTable

__all__ = [
    "BlockTable",
    "InfeasibleBudgetError",
    "check_budgets",
    "ParetoPoint",
    "best_within_budgets",
    "brute_force_front",
    "enumerate_networks",
    "pareto_front",
    "solution_pool",
]
