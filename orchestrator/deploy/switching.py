"""Switching (MathNAS's on-device dynamic switching): the best stored architecture for a new budget.

``switch`` answers from the target's stored front for its current version and block table when the front
covers the budget (a binary search over points sorted by cost: no solve). A front covers every budget
when it is complete, and otherwise (it was cut at ``max_points`` by the sweep, which runs from the most
accurate point down) every budget from its cheapest point up. A spread front (a block library within
budgets) covers every budget below its cheapest point (none fits) and each point's range from its cost
up to ``optimal_up_to``. Anything else is one MIP solve, whose answer is then kept in the process for
every budget from its cost up to the one solved.

``correct`` takes the measured and the predicted cost of the running network, rescales the target's
costs by their ratio (stored as a new target version, which the scheduler then re-solves the front of)
and answers the budget with one solve on the rescaled costs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

from blocknas.orchestrator.deploy.fronts import (
    AccuracyTable,
    TargetTable,
    best_by_solving,
    best_for_budget,
    target_budgets,
    target_key,
    target_table,
)
from blocknas.orchestrator.front_service import FrontInputs
from blocknas.orchestrator.storage import PerformanceStore, RegisteredTarget
from blocknas.orchestrator.targets.files import FIXED
from blocknas.orchestrator.targets.registry import TargetRegistryError, find, store_definition
from blocknas.solvers import InfeasibleBudgetError


@dataclass(frozen=True)
class Switch:
    target: str
    version: str
    metric: str
    budget: float
    point: dict | None  # None: no architecture fits the budget
    solved: bool  # False: answered from the stored front
    seconds: float
    infeasible: str | None = None  # why nothing fits (the smallest feasible cost), as ``solve`` says it

    def as_json(self) -> dict:
        return {
            "target": self.target,
            "target_version": self.version,
            "metric": self.metric,
            "budget": self.budget,
            "solved": self.solved,
            "seconds": round(self.seconds, 6),
            **(self.point or {"blocks": None}),
        }


# In-process caches of immutable things: a target version's definition, the table it makes with a given
# accuracy table (kept alive with it, so its id is not reused), and the front stored for exact inputs.
_entries: dict[tuple[str, str], RegisteredTarget] = {}
_tables: dict[tuple[int, str], tuple[AccuracyTable, TargetTable]] = {}
_fronts: dict[tuple, object] = {}
# What earlier solves proved, per front key: the network solved for budget B is the best for every budget
# from its cost up to B (no network fits below B when it was None). Repeated budgets skip the solve.
_solved: dict[tuple, list[tuple[float, float, dict | None]]] = {}


def _proved(key: tuple, budget: float) -> tuple[float, float, dict | None] | None:
    """An earlier solve whose range holds ``budget``: (lowest budget, budget solved, its point)."""
    return next((proof for proof in _solved.get(key, ()) if proof[0] <= budget <= proof[1]), None)


def _current_entry(store: PerformanceStore, name: str) -> RegisteredTarget:
    version = store.current_target_version(name)
    if (name, version) not in _entries:
        _entries[name, version] = find(store, name)
    return _entries[name, version]


def _table_of(base: AccuracyTable, entry: RegisteredTarget) -> TargetTable:
    key = (id(base), entry.version)
    cached = _tables.get(key)
    if cached is None or cached[0] is not base:
        cached = _tables[key] = (base, target_table(base, entry))
    return cached[1]


def answers(points: list[dict], inputs: FrontInputs, budget: float) -> bool:
    """Whether a stored front holds the best network for ``budget`` (or proves that none fits)."""
    if not points:
        return False
    if "optimal_up_to" not in points[0]:  # complete, or cut at the cap below its most accurate point
        return inputs.holds_every_budget(points) or budget >= points[0]["cost"]
    if budget < points[0]["cost"]:  # a spread front reaches down to the cheapest network
        return True
    best = best_for_budget(points, budget)
    return best["optimal_up_to"] is None or budget <= best["optimal_up_to"]


def switch(
    store: PerformanceStore,
    base: AccuracyTable,
    name: str,
    budget: float,
    max_points: int,
    entry: RegisteredTarget | None = None,
) -> Switch:
    if not 0 <= budget < math.inf:
        raise TargetRegistryError(f"the budget must be a finite number >= 0, got {budget}")
    started = time.perf_counter()
    entry = entry or _current_entry(store, name)
    solved = _table_of(base, entry)
    table = solved.table
    metric, budgets = target_budgets(entry)
    key = target_key(base, entry, solved.digest, max_points)
    memo = (store.url, *key.ident)  # per store: what one store's user may see
    front = _fronts.get(memo) or key.stored(store)
    if front is not None:
        _fronts[memo] = front
    if front is not None and answers(front.points, key.inputs, budget):
        point, solved = best_for_budget(front.points, budget), False
    elif (proof := _proved(memo, budget)) is not None:
        point, solved = proof[2], False
    else:
        try:
            point = best_by_solving(table, metric, budget, budgets, solved.prediction)
        except InfeasibleBudgetError:
            point = None
        solved = True
        low = -math.inf if point is None else point["cost"]
        _solved.setdefault(memo, []).append((low, budget, point))
    reason = None if point is not None else _infeasible(table, metric, budget, budgets)
    return Switch(name, entry.version, metric, budget, point, solved, time.perf_counter() - started, reason)


def _infeasible(table, metric: str, budget: float, budgets: dict) -> str:
    """What ``solve`` says for a budget nothing fits: the smallest feasible cost, named."""
    from blocknas.solvers import best_within_budgets

    limit = min(budget, budgets.get(metric, math.inf))
    others = {k: v for k, v in budgets.items() if k != metric}
    try:
        best_within_budgets(table, {metric: limit, **others})
    except InfeasibleBudgetError as exc:
        return f"{exc}; no architecture fits, so there is nothing to switch to"
    return f"no architecture fits {metric} <= {budget:g}"


def correct(
    store: PerformanceStore,
    base: AccuracyTable,
    name: str,
    measured: float,
    predicted: float,
    budget: float,
    max_points: int,
) -> Switch:
    """Rescale the target's primary-metric costs by ``measured / predicted``, store that as a new version,
    and answer ``budget`` on the rescaled costs."""
    if not (0 < measured < math.inf and 0 < predicted < math.inf and 0 <= budget < math.inf):
        raise TargetRegistryError(
            f"measured ({measured}) and predicted ({predicted}) costs must be positive finite "
            f"numbers and the budget ({budget}) a finite number >= 0; nothing was stored"
        )
    entry = find(store, name)
    definition = entry.definition
    metric = definition["metrics"][0]
    if not definition.get("costs"):
        raise TargetRegistryError(
            f"target {name!r} is {entry.kind}: its costs are computed, not given, so "
            "there is nothing to rescale; register its measured costs as a table instead"
        )
    scale = measured / predicted
    table = definition["costs"][metric]
    rescaled = {
        FIXED: table[FIXED] * scale,
        "blocks": {s: {b: v * scale for b, v in blocks.items()} for s, blocks in table["blocks"].items()},
    }
    before = [table[FIXED], *(v for blocks in table["blocks"].values() for v in blocks.values())]
    after = [rescaled[FIXED], *(v for blocks in rescaled["blocks"].values() for v in blocks.values())]
    lost = [a for a, b in zip(after, before, strict=True) if not math.isfinite(a) or (a == 0) != (b == 0)]
    if not 0 < scale < math.inf or lost:
        raise TargetRegistryError(
            f"correcting {name} by measured {measured:g} / predicted {predicted:g} = x{scale:.6g} would make "
            f"{metric} costs {'infinite' if not math.isfinite(scale) or math.inf in map(abs, lost) else 'zero'}; "
            "check that both numbers are the running network's, in the same unit; nothing was stored"
        )
    corrected = {
        **definition,
        "costs": {**definition["costs"], metric: rescaled},
        "source": f"corrected from {entry.version} by x{scale:.6g}",
    }
    version, _ = store_definition(store, name, entry.kind, corrected, update=True)
    return switch(store, base, name, budget, max_points, replace(entry, version=version, definition=corrected))
