"""The one front service: every front blocknas stores is solved, capped, keyed and stored here.

Whoever asks first (``blocknas run``, ``solve``, ``fronts show``, ``switch``, the scheduler), a front is
keyed by ``FrontKey``: (experiment, target, target version, table hash, inputs), where the inputs are the
budgets on the other metrics, the predictor and the point cap. ``front_for`` returns the stored front of a
key without solving, or solves, stores and returns it, so no inputs are ever solved twice, and a front
``blocknas run`` stored is the one ``fronts show`` prints (and the other way round).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from blocknas.orchestrator.hashing import content_hash
from blocknas.orchestrator.storage import PerformanceStore, StoredFront
from blocknas.solvers import BlockTable, ParetoPoint
from blocknas.solvers.table import LOWER


@dataclass(frozen=True)
class FrontInputs:
    """What a front depends on besides its table and target version."""

    budgets: dict[str, float]
    max_points: int
    predictor: str = "linear"

    @property
    def digest(self) -> str:
        return content_hash(
            {"budgets": dict(sorted(self.budgets.items())), "max_points": self.max_points, "predictor": self.predictor}
        )

    def holds_every_budget(self, points: list[dict]) -> bool:
        """Whether a complete front's points hold the best network for any budget: it was not cut at the cap
        (the sweep runs from the most accurate point down, so a cut front still holds every budget from its
        cheapest point up)."""
        return len(points) < self.max_points


@dataclass(frozen=True)
class FrontKey:
    experiment: str
    target: str
    target_version: str
    table_hash: str
    inputs: FrontInputs

    @property
    def ident(self) -> tuple[str, str, str, str, str]:
        """The key as the store holds it (hashable)."""
        return self.experiment, self.target, self.target_version, self.table_hash, self.inputs.digest

    def stored(self, store: PerformanceStore) -> StoredFront | None:
        return store.find_front(*self.ident)


@dataclass(frozen=True)
class SolvedFront:
    front: StoredFront
    solved: bool  # False: it was stored for exactly these inputs already


def point_json(slots: tuple[str, ...], point: ParetoPoint) -> dict:
    """A point as it is stored and printed: blocks as ``slot:choice``."""
    found = {
        "blocks": [f"{s}:{c}" for s, c in zip(slots, point.blocks, strict=True)],
        "predicted_accuracy": point.predicted_accuracy,
        "cost": point.cost,
        "costs": {k: v for k, v in point.costs.items() if not k.startswith(LOWER)},
    }  # no lower-bound helpers
    if point.optimal_up_to is not None:  # a spread front's point: null = the best for any budget above its cost
        found["optimal_up_to"] = point.optimal_up_to if math.isfinite(point.optimal_up_to) else None
    return found


def point_of(found: dict) -> ParetoPoint:
    """``point_json``'s inverse."""
    bound = found.get("optimal_up_to")
    if "optimal_up_to" in found and bound is None:  # stored as null: the best for any budget above its cost
        bound = math.inf
    return ParetoPoint(
        tuple(b.split(":", 1)[1] for b in found["blocks"]),
        found["predicted_accuracy"],
        found["cost"],
        found["costs"],
        bound,
    )


def front_for(
    store: PerformanceStore,
    key: FrontKey,
    metric: str,
    slots: tuple[str, ...],
    solve: Callable[[], list[ParetoPoint]],
    config_hash: str = "",
) -> SolvedFront:
    """The stored front of ``key``, or ``solve()``'s, stored first."""
    stored = key.stored(store)
    if stored is not None:
        return SolvedFront(stored, False)
    points = [point_json(slots, p) for p in solve()]
    experiment, target, version, table_hash, inputs = key.ident
    store.record_front(experiment, config_hash, target, version, metric, table_hash, inputs, points)
    return SolvedFront(key.stored(store), True)


def rounded(values) -> list[float] | float:
    """``values`` (an array, or one number) rounded to 1e-9, as hashes see them; values beyond 1e15 (a
    sentinel cost of 1e300) as they are: rounding would overflow to inf, and 1e300 and 2e300 would name the
    same table."""
    if isinstance(values, int | float):
        return round(values, 9) if abs(values) < 1e15 else float(values)
    values = np.asarray(values, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(np.abs(values) < 1e15, np.round(values, 9), values).tolist()


def table_hash_of(table: BlockTable) -> str:
    """What names a block table in front keys: its choices, values and costs (rounded, see ``rounded``)."""
    return content_hash(
        {
            "choices": table.choices,
            "accuracy": [rounded(a) for a in table.accuracy],
            "offset": rounded(table.accuracy_offset),
            "costs": {k: [rounded(c) for c in v] for k, v in table.costs.items()},
            "cost_offsets": {k: rounded(v) for k, v in table.cost_offsets.items()},
        }
    )
