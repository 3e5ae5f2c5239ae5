"""What a solve answers: a network of the table with its predicted accuracy and costs, or that none fits.

Plain data, apart from the solvers (no Pyomo): readers of stored answers import it alone.
"""

from __future__ import annotations

from dataclasses import dataclass


class InfeasibleBudgetError(ValueError):
    """No network satisfies the budgets; the message names the smallest feasible cost."""


@dataclass(frozen=True)
class ParetoPoint:
    blocks: tuple[str, ...]
    predicted_accuracy: float
    cost: float
    costs: dict[str, float]  # every cost metric of the table, for reports
    # spread fronts only: this network is the best one for every budget from ``cost`` up to this
    # (inf: any budget above its cost); None where the next point of a complete front bounds it
    optimal_up_to: float | None = None
