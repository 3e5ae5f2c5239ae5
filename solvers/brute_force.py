"""Exhaustive enumeration of every network of a small table: the ground truth the MIP is tested against."""

from __future__ import annotations

import math

import numpy as np

from blocknas.solvers.merge_front import non_dominated
from blocknas.solvers.table import BlockTable

MAX_ENUMERATED = 2_000_000


def enumerate_networks(table: BlockTable, metrics: list[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """Every network the table's rules allow: (selections [N, m], predicted accuracy [N], {metric: cost [N]})."""
    if table.num_networks > MAX_ENUMERATED:
        raise ValueError(f"{table.num_networks} networks is too many to enumerate (max {MAX_ENUMERATED})")
    selections = _cartesian([len(c) for c in table.choices])
    for rule in table.rules:
        selections = selections[rule.valid_mask(table.choices, selections)]
    accuracy = table.accuracy_offset + sum(table.accuracy[i][selections[:, i]] for i in range(len(table.slots)))
    costs = {
        m: table.cost_offsets.get(m, 0.0) + sum(table.costs[m][i][selections[:, i]] for i in range(len(table.slots)))
        for m in metrics
    }
    return selections, np.asarray(accuracy, dtype=float), costs


def _cartesian(sizes: list[int]) -> np.ndarray:
    """Every selection, ``[prod(sizes), len(sizes)]``, the last slot varying fastest (``meshgrid`` "ij" order,
    without its 32-dimension limit: an LLM space has a slot per sub-block)."""
    total = math.prod(sizes)
    selections = np.empty((total, len(sizes)), dtype=np.int64)
    inner = total
    for i, size in enumerate(sizes):
        inner //= size
        selections[:, i] = np.tile(np.repeat(np.arange(size), inner), total // (inner * size))
    return selections


def brute_force_front(
    table: BlockTable, metric: str, budgets: dict[str, float] | None = None
) -> list[tuple[float, float]]:
    """Non-dominated (cost, accuracy) points, sorted by cost, among networks within ``budgets``."""
    budgets = budgets or {}
    selections, accuracy, costs = enumerate_networks(table, sorted({metric, *budgets}))
    feasible = np.ones(len(accuracy), dtype=bool)
    for name, limit in budgets.items():
        feasible &= costs[name] <= limit
    chosen = selections[feasible]

    def magnitude(per_slot: tuple[np.ndarray, ...], offset: float) -> np.ndarray:
        return abs(offset) + sum(np.abs(per_slot[i])[chosen[:, i]] for i in range(len(table.slots)))

    cost, acc = costs[metric][feasible], accuracy[feasible]
    keep = non_dominated(
        cost,
        acc,
        magnitude(table.costs[metric], table.cost_offsets.get(metric, 0.0)),
        magnitude(table.accuracy, table.accuracy_offset),
    )
    return [(float(cost[k]), float(acc[k])) for k in keep]
