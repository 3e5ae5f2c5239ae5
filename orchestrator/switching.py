"""Switching (MathNAS's on-device dynamic switching): the best stored architecture for a new budget.

``switch`` answers from the target's stored front when it has one for the current target version and
table (a binary search over points sorted by cost: no solve); otherwise it solves the front once, stores
it, and answers from it. ``correct`` takes the measured and the predicted cost of the running network,
rescales the target's costs by their ratio (a new target version), re-solves and answers again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from orchestrator.registry import TargetRegistryError, find, version_of
from orchestrator.storage import PerformanceStore
from orchestrator.target_files import FIXED
from orchestrator.target_fronts import AccuracyTable, best_for_budget, solve_target


@dataclass(frozen=True)
class Switch:
    target: str
    version: str
    metric: str
    budget: float
    point: dict | None  # None: no stored architecture fits the budget
    solved: bool  # a front had to be solved first
    seconds: float

    def as_json(self) -> dict:
        return {"target": self.target, "target_version": self.version, "metric": self.metric,
                "budget": self.budget, "solved": self.solved, "seconds": round(self.seconds, 6),
                **(self.point or {"blocks": None})}


def switch(store: PerformanceStore, base: AccuracyTable, name: str, budget: float, entry: dict | None = None) -> Switch:
    started = time.perf_counter()
    entry = entry or find(store, name)
    solved = solve_target(store, base, entry)
    point = best_for_budget(solved.front, budget)
    return Switch(name, entry["version"], solved.front.metric, budget, point, solved.solved,
                  time.perf_counter() - started)


def correct(store: PerformanceStore, base: AccuracyTable, name: str, measured: float, predicted: float,
            budget: float) -> Switch:
    """Rescale the target's primary-metric costs by ``measured / predicted``, store that as a new version,
    re-solve, and switch for ``budget``."""
    if measured <= 0 or predicted <= 0:
        raise TargetRegistryError(f"measured ({measured}) and predicted ({predicted}) costs must be positive")
    entry = find(store, name)
    definition = entry["definition"]
    metric = definition["metrics"][0]
    scale = measured / predicted
    table = definition["costs"][metric]
    rescaled = {FIXED: table[FIXED] * scale,
                "blocks": {s: {b: v * scale for b, v in blocks.items()} for s, blocks in table["blocks"].items()}}
    corrected = {**definition, "costs": {**definition["costs"], metric: rescaled},
                 "source": f"corrected from {entry['version']} by x{scale:.6g}"}
    version = version_of(corrected)
    store.put_target(name, version, entry["kind"], corrected, exists=True)
    return switch(store, base, name, budget, {**entry, "version": version, "definition": corrected})
