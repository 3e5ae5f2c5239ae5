"""``BlockTable``: the plain-array view of the performance table that every solver reads."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from blocknas.solvers.structure import ConnectivityRule

LOWER = "-"  # a lower bound ``cost >= min`` is solved as the budget ``-cost <= -min`` on metric ``"-" + cost``


@dataclass(frozen=True)
class BlockTable:
    """Additive predictions for a space of ``m`` slots with ``n_i`` candidate blocks each.

    ``Acc(N) = accuracy_offset + sum_i accuracy[i][J(i)]`` and, per cost metric,
    ``Cost(N) = cost_offsets[metric] + sum_i costs[metric][i][J(i)]``.
    """

    slots: tuple[str, ...]
    choices: tuple[tuple[str, ...], ...]
    accuracy: tuple[np.ndarray, ...]
    accuracy_offset: float = 0.0
    costs: dict[str, tuple[np.ndarray, ...]] = field(default_factory=dict)
    cost_offsets: dict[str, float] = field(default_factory=dict)
    rules: tuple[ConnectivityRule, ...] = ()  # structural rules every network must satisfy

    def __post_init__(self) -> None:
        if not (len(self.slots) == len(self.choices) == len(self.accuracy)):
            raise ValueError("slots, choices and accuracy must have one entry per slot")
        for i, (names, values) in enumerate(zip(self.choices, self.accuracy, strict=True)):
            if len(names) == 0 or len(values) != len(names):
                raise ValueError(f"slot {self.slots[i]!r}: {len(names)} choices but {len(values)} values")
            if not np.all(np.isfinite(values)):
                raise ValueError(f"slot {self.slots[i]!r}: accuracy values must be finite")
        for metric, per_slot in self.costs.items():
            if len(per_slot) != len(self.slots) or any(
                len(c) != len(n) for c, n in zip(per_slot, self.choices, strict=True)
            ):
                raise ValueError(f"cost metric {metric!r} does not match the table's slots and choices")
            if not all(np.all(np.isfinite(c)) for c in per_slot):
                raise ValueError(f"cost metric {metric!r} has missing or non-finite values")

    @property
    def num_networks(self) -> int:
        return math.prod(len(c) for c in self.choices)  # Python ints: 60 slots overflow int64

    def index_of(self, blocks: list[str] | tuple[str, ...]) -> tuple[int, ...]:
        return tuple(self.choices[i].index(b) for i, b in enumerate(blocks))

    def predict_accuracy(self, selection: tuple[int, ...]) -> float:
        return self.accuracy_offset + float(sum(self.accuracy[i][j] for i, j in enumerate(selection)))

    def predict_cost(self, metric: str, selection: tuple[int, ...]) -> float:
        per_slot = self.costs[metric]
        return self.cost_offsets.get(metric, 0.0) + float(sum(per_slot[i][j] for i, j in enumerate(selection)))

    def with_lower_bounds(self, metrics) -> BlockTable:
        """This table with the negated metric ``LOWER + m`` of each of ``metrics`` (to bound them below)."""
        if not metrics:
            return self
        costs = dict(self.costs) | {LOWER + m: tuple(-c for c in self.costs[m]) for m in metrics}
        offsets = dict(self.cost_offsets) | {LOWER + m: -self.cost_offsets.get(m, 0.0) for m in metrics}
        return BlockTable(self.slots, self.choices, self.accuracy, self.accuracy_offset, costs, offsets, self.rules)

    def min_cost(self, metric: str) -> float:
        return self.cost_offsets.get(metric, 0.0) + float(sum(c.min() for c in self.costs[metric]))
