"""LayerNAS's dynamic program for an additive block table: cost buckets instead of a MIP.

One budgeted cost metric is discretised into ``buckets`` equal steps of the budget (each block's cost is
rounded *up* to whole steps, after shifting every slot so its cheapest block costs 0), and the best
predicted accuracy is computed slot by slot for every number of steps: ``best[i][b] = max_j best[i-1][b -
q_ij] + a_ij``, ``m x n x buckets`` work. Rounding up keeps every answer within the real budget; it can
miss the optimum by what the rounding hides, most often a network that costs exactly the budget. Costs
measured on a decimal grid (whole milliseconds on a phone, 0.001 ms on a GPU) are solved on that grid
instead when it needs at most ``max_grid_buckets`` steps: no rounding, so the answer is exact. Structural
rules (NAS-Bench-201's connectivity) are beyond it: use the MIP.
"""

from __future__ import annotations

import math

import numpy as np

from blocknas.solvers.pareto import InfeasibleBudgetError, ParetoPoint, _point_of
from blocknas.solvers.table import BlockTable


def dp_best_within_budget(
    table: BlockTable, metric: str, budget: float, buckets: int = 1000, max_grid_buckets: int = 100_000
) -> ParetoPoint:
    """The network of highest predicted accuracy whose ``metric`` fits ``budget``, by the bucket DP
    (``max_grid_buckets=0``: always ``buckets`` rounded steps)."""
    if table.rules:
        raise ValueError(
            "the bucket DP solves additive tables without structural rules; this table has "
            f"{len(table.rules)} (use best_within_budgets, the MIP)"
        )
    if metric not in table.costs:
        raise KeyError(f"the table has no cost metric {metric!r}; it has {sorted(table.costs)}")
    if not isinstance(buckets, int) or buckets < 1:
        raise ValueError(f"buckets must be an integer >= 1, got {buckets!r}")
    costs = [np.asarray(c, dtype=float) for c in table.costs[metric]]
    floors = [float(c.min()) for c in costs]
    room = budget - table.cost_offsets.get(metric, 0.0) - math.fsum(floors)
    if not room >= -1e-9 * max(1.0, abs(budget)):
        raise InfeasibleBudgetError(f"{metric} <= {budget:g}: the cheapest network costs {budget - room:g}")
    room = max(room, 0.0)
    step = room / buckets if room > 0 else 1.0
    grid = _decimal_grid([c - f for c, f in zip(costs, floors, strict=True)], room, max_grid_buckets)
    if grid is not None and room > 0:
        step, buckets = grid, int(math.floor(room / grid + 1e-6))
    best = np.full(buckets + 1, -np.inf)
    best[0] = 0.0
    choice = np.zeros((len(costs), buckets + 1), dtype=np.int32)
    for i, (slot_costs, values) in enumerate(zip(costs, table.accuracy, strict=True)):
        steps = (
            np.ceil((slot_costs - floors[i]) / step - 1e-9).astype(np.int64)
            if room > 0
            else np.where(slot_costs - floors[i] > 0, buckets + 1, 0)
        )
        new = np.full(buckets + 1, -np.inf)
        for j, (q, value) in enumerate(zip(steps, values, strict=True)):
            if q > buckets:
                continue
            candidate = np.full(buckets + 1, -np.inf)
            candidate[q:] = best[: buckets + 1 - q] + value
            better = candidate > new
            new[better] = candidate[better]
            choice[i, better] = j
        best = new
    top = best.max()
    if not np.isfinite(top):
        raise InfeasibleBudgetError(f"{metric} <= {budget:g}: no network fits at {buckets} buckets")
    b = int(np.flatnonzero(best >= top)[0])  # the fewest steps among the best: cheapest first among ties
    selection = []
    for i in range(len(costs) - 1, -1, -1):
        j = int(choice[i, b])
        selection.append(j)
        b -= int(math.ceil((costs[i][j] - floors[i]) / step - 1e-9)) if room > 0 else 0
    return _point_of(table, tuple(reversed(selection)), metric)


def _decimal_grid(shifted: list[np.ndarray], room: float, limit: int) -> float | None:
    """The coarsest step 10^-k on which every shifted cost lies, if the room holds at most ``limit`` of them."""
    for k in range(7):
        step = 10.0**-k
        if room / step > limit:
            return None
        if all(np.allclose(c / step, np.round(c / step), rtol=0, atol=1e-6) for c in shifted):
            return step
    return None
