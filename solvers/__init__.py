"""Pure optimisation over plain data: block tables, Pyomo MIP models, exact Pareto fronts.

Knows nothing of Ray, torch or SQL.
"""

from solvers.brute_force import brute_force_front, enumerate_networks
from solvers.pareto import InfeasibleBudgetError, ParetoPoint, best_within_budgets, check_budgets, pareto_front
from solvers.pools import solution_pool
from solvers.table import BlockTable

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
