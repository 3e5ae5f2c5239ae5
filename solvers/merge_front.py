"""Exact Pareto fronts of additive tables with one cost, by merging per-slot fronts (no MIP).

With no structural rules and no budget on another metric, a network's accuracy and cost are sums over
slots, so the front of slots ``0..i`` is the non-dominated part of (front of ``0..i-1``) + (candidates
of slot ``i``). Merging slot by slot keeps every Pareto-optimal network and only those: the front in
milliseconds, complete, for tables whose fronts stay small (``limit`` partial fronts, else ``None``).

Ties are decided relative to the values compared, never to the table's range: two sums tie when they
differ by less than ``TIE`` times the sum of the absolute values of their terms (the most that rounding can
move a sum), so a block costing 1e300 next to blocks costing 0.1 changes nothing for the others.
"""

from __future__ import annotations

import numpy as np

from blocknas.solvers.table import BlockTable

TIE = 1e-12  # accuracies closer than this, relative to their terms, are equal (the cheaper network is kept)
COST_TIE = 1e-9  # costs closer than this, relative to their terms, are equal (summation order only)


def _running_best(values: np.ndarray) -> np.ndarray:
    """For each position, the index of the largest of ``values`` strictly before it (-1 for the first)."""
    n = len(values)
    running = np.maximum.accumulate(values)
    best = np.maximum.accumulate(np.where(values == running, np.arange(n), 0))
    return np.r_[-1, best[:-1]]


def non_dominated(
    cost: np.ndarray,
    accuracy: np.ndarray,
    cost_abs: np.ndarray | None = None,
    accuracy_abs: np.ndarray | None = None,
    cost_ties: bool = True,
) -> np.ndarray:
    """Indices of the non-dominated points, by cost ascending: each more accurate than every point that
    costs less, and, with ``cost_ties``, of costs that tie only the most accurate stays.

    ``cost_abs`` and ``accuracy_abs`` are the sums of the absolute values of each point's terms (the values'
    own magnitudes where not given): the scale of each comparison's tolerance."""
    cost_abs = np.abs(cost) if cost_abs is None else cost_abs
    accuracy_abs = np.abs(accuracy) if accuracy_abs is None else accuracy_abs
    order = np.lexsort((-accuracy, cost))
    acc, acc_abs = accuracy[order], accuracy_abs[order]
    before = _running_best(acc)
    has_before = before >= 0
    best_before = np.where(has_before, acc[np.maximum(before, 0)], -np.inf)
    tolerance = TIE * np.maximum(acc_abs, np.where(has_before, acc_abs[np.maximum(before, 0)], 0.0))
    front = order[acc > best_before + tolerance]
    if cost_ties and len(front) > 1:
        # Along the front accuracy rises with cost: a point with a more accurate one of a tying cost goes.
        c, scale = cost[front], cost_abs[front]
        apart = c[1:] - c[:-1] > COST_TIE * np.maximum(scale[1:], scale[:-1])
        front = front[np.r_[apart, True]]
    return front


Point = tuple[tuple[int, ...], float, float]  # (selection, cost, accuracy)


def merge_front(table: BlockTable, metric: str, limit: int = 200_000) -> list[Point] | None:
    """Every non-dominated (selection, cost, accuracy), sorted by cost; ``None`` if not applicable.

    Not applicable: the table has structural rules, or a partial front outgrows ``limit`` (then solve by
    MIP). Costs and accuracies include the table's offsets.
    """
    if table.rules:
        return None
    cost, cost_abs = np.zeros(1), np.zeros(1)
    accuracy, accuracy_abs = np.zeros(1), np.zeros(1)
    selections = np.zeros((1, 0), dtype=np.int32)
    for i in range(len(table.slots)):
        c_i, a_i = table.costs[metric][i], table.accuracy[i]
        n = len(c_i)

        def add(total, term):
            return (total[:, None] + term[None, :]).ravel()

        cost, cost_abs = add(cost, c_i), add(cost_abs, np.abs(c_i))
        accuracy, accuracy_abs = add(accuracy, a_i), add(accuracy_abs, np.abs(a_i))
        # near-equal costs are merged only once every slot is added: a tie of partial sums may not last
        keep = non_dominated(cost, accuracy, cost_abs, accuracy_abs, cost_ties=i == len(table.slots) - 1)
        if len(keep) > limit:
            return None
        selections = np.column_stack([selections[keep // n], keep % n])
        cost, cost_abs, accuracy, accuracy_abs = cost[keep], cost_abs[keep], accuracy[keep], accuracy_abs[keep]
    offset_cost, offset_acc = table.cost_offsets.get(metric, 0.0), table.accuracy_offset
    return [
        (tuple(int(j) for j in s), float(c) + offset_cost, float(a) + offset_acc)
        for s, c, a in zip(selections, cost, accuracy, strict=True)
    ]
