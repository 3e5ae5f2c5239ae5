"""Dominated blocks: drop, per slot, every candidate another candidate beats on accuracy and every cost.

If block ``k`` of slot ``i`` has accuracy >= and every cost in ``metrics`` <= block ``j``'s (one of them
strictly, or ``k`` comes first among identical ones), swapping ``j`` for ``k`` in any network keeps it
within every budget and makes it no worse, so ``j`` is never needed on a front or for a best network.
Exact for additive tables without structural rules (a rule can make the dominating block unusable).
Block libraries often have many such variants: pruning shrinks the MIP before it is built.
"""

from __future__ import annotations

import numpy as np

from blocknas.solvers.table import BlockTable


def keep_mask(accuracy: np.ndarray, costs: list[np.ndarray]) -> np.ndarray:
    """True for the candidates of one slot that no other candidate dominates."""
    values = np.column_stack([-accuracy, *costs])  # lower is better in every column
    n = len(values)
    no_worse = np.all(values[:, None, :] <= values[None, :, :], axis=2)  # [k, j]: k no worse than j everywhere
    better = np.any(values[:, None, :] < values[None, :, :], axis=2)
    earlier = np.arange(n)[:, None] < np.arange(n)[None, :]
    dominated = np.any(no_worse & (better | earlier) & ~np.eye(n, dtype=bool), axis=0)
    return ~dominated


def prune_dominated(table: BlockTable, metrics: list[str]) -> BlockTable:
    """``table`` without dominated candidates w.r.t. accuracy and ``metrics`` (unchanged if it has rules)."""
    if table.rules:
        return table
    masks = [keep_mask(table.accuracy[i], [table.costs[m][i] for m in metrics]) for i in range(len(table.slots))]
    return subset(table, masks)


def subset(table: BlockTable, masks: list[np.ndarray]) -> BlockTable:
    """``table`` with only the candidates whose mask is True (rules kept: they refer to slots and names)."""
    if all(mask.all() for mask in masks):
        return table
    return BlockTable(
        slots=table.slots,
        choices=tuple(
            tuple(c for c, keep in zip(names, mask, strict=True) if keep)
            for names, mask in zip(table.choices, masks, strict=True)
        ),
        accuracy=tuple(a[mask] for a, mask in zip(table.accuracy, masks, strict=True)),
        accuracy_offset=table.accuracy_offset,
        costs={
            m: tuple(c[mask] for c, mask in zip(per_slot, masks, strict=True)) for m, per_slot in table.costs.items()
        },
        cost_offsets=table.cost_offsets,
        rules=table.rules,
    )


def within_caps(table: BlockTable, caps: dict[str, float]) -> BlockTable | None:
    """``table`` without the candidates that no network within ``caps`` can use: a candidate whose cost plus
    the cheapest of every other slot exceeds a cap (``None`` when a slot keeps none: nothing fits).

    Exact, rules or not. It keeps a model's costs on the scale of its caps: a block costing 1e12 (a device
    without the operator) next to blocks costing 0.1 is dropped for a cap of 2, instead of setting the
    scale the solver's tolerances are relative to."""
    masks = [np.ones(len(names), dtype=bool) for names in table.choices]
    changed = True
    while changed:  # dropping a slot's cheapest candidate for one metric raises the others' floors
        changed = False
        for metric, cap in caps.items():
            per_slot = [c[mask] for c, mask in zip(table.costs[metric], masks, strict=True)]
            if any(len(c) == 0 for c in per_slot):
                return None
            mins = np.array([float(c.min()) for c in per_slot])
            rest = np.r_[0.0, np.cumsum(mins)[:-1]] + np.r_[np.cumsum(mins[::-1])[::-1][1:], 0.0]
            offset = table.cost_offsets.get(metric, 0.0)
            for i, costs in enumerate(table.costs[metric]):
                total = offset + rest[i] + costs
                fits = total <= cap + 1e-9 * (abs(cap) + np.abs(total))  # rounding never drops a fitting one
                if (masks[i] & ~fits).any():
                    masks[i] = masks[i] & fits
                    changed = True
    if any(not mask.any() for mask in masks):
        return None
    return subset(table, masks)
