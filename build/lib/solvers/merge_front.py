"""Exact Pareto fronts of additive tables with one cost, by merging per-slot fronts (no MIP).

With no structural rules and no budget on another metric, a network's accuracy and cost are sums over
slots, so the front of slots ``0..i`` is the non-dominated part of (front of ``0..i-1``) + (candidates
of slot ``i``). Merging slot by slot keeps every Pareto-optimal network and only those: the front in
milliseconds, complete, for tables whose fronts stay small (``limit`` partial fronts, else ``None``).
"""

from __future__ import annotations

import numpy as np

from solvers.table import BlockTable

_TIE = 1e-12  # relative: accuracies this close count as equal (the cheaper network is kept)
COST_TIE = 1e-9  # relative to the largest cost: costs this close are equal (they differ by summation order only)


def cost_tolerance(cost: np.ndarray) -> float:
    return COST_TIE * max(1.0, float(np.max(np.abs(cost))) if len(cost) else 1.0)


def non_dominated(cost: np.ndarray, accuracy: np.ndarray, acc_scale: float, cost_tol: float = 0.0) -> np.ndarray:
    """Indices of the non-dominated points, by cost ascending: each strictly more accurate than every point
    that costs less, or the same within ``cost_tol`` (then only the most accurate of such near-equal costs
    stays: costs that differ by floating-point rounding are the same cost)."""
    order = np.lexsort((-accuracy, cost))
    acc = accuracy[order]
    best_before = np.maximum.accumulate(np.r_[-np.inf, acc[:-1]])
    front = order[acc > best_before + _TIE * acc_scale]
    if cost_tol > 0 and len(front) > 1:
        # Along the front accuracy rises with cost: a point with a more accurate one within the tolerance goes.
        c = cost[front]
        front = front[np.r_[c[1:] > c[:-1] + cost_tol, True]]
    return front


Point = tuple[tuple[int, ...], float, float]  # (selection, cost, accuracy)


def merge_front(table: BlockTable, metric: str, limit: int = 200_000) -> list[Point] | None:
    """Every non-dominated (selection, cost, accuracy), sorted by cost; ``None`` if not applicable.

    Not applicable: the table has structural rules, or a partial front outgrows ``limit`` (then solve by
    MIP). Costs and accuracies include the table's offsets.
    """
    if table.rules:
        return None
    scale = float(sum(np.ptp(a) for a in table.accuracy)) or 1.0
    cost = np.zeros(1)
    accuracy = np.zeros(1)
    selections = np.zeros((1, 0), dtype=np.int32)
    for i in range(len(table.slots)):
        c_i, a_i = table.costs[metric][i], table.accuracy[i]
        n = len(c_i)
        cost = (cost[:, None] + c_i[None, :]).ravel()
        accuracy = (accuracy[:, None] + a_i[None, :]).ravel()
        keep = non_dominated(cost, accuracy, scale, cost_tolerance(cost) if i == len(table.slots) - 1 else 0.0)
        if len(keep) > limit:
            return None
        selections = np.column_stack([selections[keep // n], keep % n])
        cost, accuracy = cost[keep], accuracy[keep]
    offset_cost, offset_acc = table.cost_offsets.get(metric, 0.0), table.accuracy_offset
    return [(tuple(int(j) for j in s), float(c) + offset_cost, float(a) + offset_acc)
            for s, c, a in zip(selections, cost, accuracy, strict=True)]
