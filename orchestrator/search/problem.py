"""What every whole-network search method works on, in ``blocknas run`` and in ``blocknas bench`` alike.

A network is a ``Selection``: one choice index per slot. What is free (known without training) is asked
freely: each network's costs for every target, and whether it is allowed (a real network, within every
budget). What is paid for is an evaluation: ``evaluate`` trains or looks up networks, a batch at a time
(one batch: parallel jobs on the cluster), never one twice, and never more than ``evaluations`` in all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Selection = tuple[int, ...]


@dataclass
class NetworkProblem:
    sizes: tuple[int, ...]  # choices per slot
    cost: Callable[[Selection], dict[str, float]]  # every target's exact cost of a network (free)
    allowed: Callable[[Selection], bool]  # a real network within every budget (free)
    measure: Callable[[list[Selection]], dict[Selection, float]]  # accuracy of a batch (paid); failures left out
    budgets: dict[str, float]
    evaluations: int  # how many networks the search may evaluate in all
    known: dict[Selection, float] = field(default_factory=dict)  # evaluated by an earlier run: read back, counted
    start: Selection | None = None  # where a local search starts; None: ``cheapest_allowed``
    rows: dict[Selection, int] | None = None  # ``from_arrays``: each listed network's row
    accuracy: dict[Selection, float] = field(default_factory=dict)  # every evaluated network, in order

    @classmethod
    def from_arrays(cls, selections, allowed, accuracy, evaluations: int, costs: dict | None = None) -> NetworkProblem:
        """The networks listed: ``selections`` ``[N, m]``, ``allowed`` and ``accuracy`` ``[N]``, ``costs``
        ``{target: [N]}`` (each target's budget: its largest allowed cost). A network not listed is not allowed;
        ``rows`` maps each listed one to its row."""
        import numpy as np

        rows = {tuple(r): i for i, r in enumerate(np.asarray(selections).tolist())}
        costs = costs or {}
        budgets = {k: float(np.max(v[allowed])) if np.any(allowed) else 0.0 for k, v in costs.items()}
        return cls(
            tuple(int(n) for n in np.asarray(selections).max(axis=0) + 1),
            lambda s: {k: float(v[rows[s]]) if s in rows else float("inf") for k, v in costs.items()},
            lambda s: s in rows and bool(allowed[rows[s]]),
            lambda batch: {s: float(accuracy[rows[s]]) for s in batch},
            budgets,
            evaluations,
            rows=rows,
        )

    @property
    def remaining(self) -> int:
        return self.evaluations - len(self.accuracy)

    def evaluate(self, batch: Iterable[Selection]) -> dict[Selection, float]:
        """The accuracy of each network of ``batch`` that is allowed; new ones are evaluated (as one batch) while
        evaluations remain, networks evaluated before are answered again at no cost."""
        asked = list(dict.fromkeys(tuple(s) for s in batch))
        fresh = [s for s in asked if s not in self.accuracy and self.allowed(s)][: max(self.remaining, 0)]
        read_back = {s: self.known[s] for s in fresh if s in self.known}
        measured = self.measure([s for s in fresh if s not in read_back]) if len(read_back) < len(fresh) else {}
        for s in fresh:  # in the order asked
            if s in read_back or s in measured:
                self.accuracy[s] = read_back.get(s, measured.get(s))
        return {s: self.accuracy[s] for s in asked if s in self.accuracy}

    @property
    def pick(self) -> Selection | None:
        """The most accurate network evaluated."""
        return max(self.accuracy, key=self.accuracy.__getitem__) if self.accuracy else None

    def cheapest_allowed(self, metric: str) -> Selection | None:
        """The network of least ``metric`` cost that is allowed: per slot its cheapest block, then, where that
        is not allowed, the cheapest allowed network among its one-slot neighbours; None if none is."""

        def with_choice(slot: int, choice: int) -> Selection:
            return tuple(choice if i == slot else 0 for i in range(len(self.sizes)))

        start = tuple(
            min(range(n), key=lambda j, i=i: self.cost(with_choice(i, j))[metric]) for i, n in enumerate(self.sizes)
        )
        if self.allowed(start):
            return start
        neighbours = [start[:i] + (j,) + start[i + 1 :] for i, n in enumerate(self.sizes) for j in range(n)]
        fitting = [s for s in neighbours if self.allowed(s)]
        return min(fitting, key=lambda s: self.cost(s)[metric]) if fitting else None
