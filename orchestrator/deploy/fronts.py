"""Fronts of registered hardware targets: re-solved from the stored block table, never re-trained.

A registered target is solved against an accuracy table:
- the experiment's stored block table (the run's estimator values), when the target's slots and blocks
  cover the experiment's space;
- or, for an imported block library (Puzzle JSON) that brings its own block scores, those scores: a
  score is a loss (e.g. KL divergence), so the predicted quality of a network is minus their sum.

Fronts go through the front service (``blocknas.orchestrator.front_service``), keyed by (experiment, target,
target version, table hash, budgets, point cap, predictor): no inputs are ever solved twice. The point cap
is the experiment's ``solver.max_points``, as for a run's fronts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from blocknas.orchestrator.front_service import (
    FrontInputs,
    FrontKey,
    SolvedFront,
    front_for,
    point_json,
    table_hash_of,
)
from blocknas.orchestrator.storage import PerformanceStore, RegisteredTarget
from blocknas.orchestrator.targets.budgets import split
from blocknas.orchestrator.targets.coverage import coverage_problems
from blocknas.orchestrator.targets.files import FIXED
from blocknas.solvers import BlockTable, ParetoPoint
from blocknas.solvers.table import LOWER

if TYPE_CHECKING:
    from blocknas.orchestrator.predictors import Prediction
    from blocknas.orchestrator.run_context import RunContext

SPREAD_POINTS = 100  # points of a block library's front within budgets: exact, spread over its cost range;
# each records up to which budget it is the best network, so `switch` answers those budgets without a solve
LIBRARY = "library"  # the experiment name fronts of self-contained block libraries are stored under


class TargetMismatchError(ValueError):
    """A registered target does not cover the space it is solved for; the message names what is missing."""


@dataclass(frozen=True)
class AccuracyTable:
    """What a target is solved against: block values per slot and choice, and the hash that names them."""

    experiment: str
    slots: tuple[str, ...]
    choices: tuple[tuple[str, ...], ...]
    accuracy: tuple[np.ndarray, ...]
    offset: float
    rules: tuple = ()
    # the experiment's predictor, fitted to a table with a target's costs; None: the table's sum (linear)
    fit: Callable[[BlockTable], Prediction] | None = field(default=None, compare=False)


def check_coverage(name: str, what: str, slots, choices, costs: dict) -> None:
    """``TargetMismatchError`` naming every block ``costs`` lacks for the space, and its rows that are no
    block of it, when any block is missing (rows for blocks beyond the space alone are fine)."""
    problems = coverage_problems(slots, choices, costs)
    if any(p.startswith("no ") for p in problems):
        raise TargetMismatchError(
            f"target {name!r} ({what}) does not cover the space: {'; '.join(problems)}; fix its file and "
            f"`blocknas targets update {name} --file F`"
        )


def library_accuracy(entry: RegisteredTarget) -> AccuracyTable:
    """A block library's own scores (its objective, else the first score it brings), as ``-score`` per block."""
    scores = entry.definition.get("scores") or {}
    if not scores:
        raise TargetMismatchError(
            f"target {entry.name!r} brings no block scores: solve it against an "
            "experiment's block table (blocknas fronts show NAME experiment=...)"
        )
    per_slot = scores[entry.definition.get("objective") or next(iter(scores))]
    sign = 1.0 if entry.definition.get("maximize") else -1.0  # a loss is minimised: stored negated
    slots = tuple(per_slot)
    choices = tuple(tuple(per_slot[s]) for s in slots)
    accuracy = tuple(
        sign * np.array([per_slot[s][c] for c in names], dtype=float) for s, names in zip(slots, choices, strict=True)
    )
    return AccuracyTable(LIBRARY, slots, choices, accuracy, 0.0)


def with_target(base: AccuracyTable, entry: RegisteredTarget) -> BlockTable:
    """``base`` with every cost metric of the registered target; blocks the target lacks are an error that
    lists them all, with the target's rows that name no block of the space (a misspelt block is both)."""
    check_coverage(entry.name, f"version {entry.version}", base.slots, base.choices, entry.definition["costs"])
    costs, offsets = {}, {}
    for metric, table in entry.definition["costs"].items():
        per_slot = [
            np.array([table["blocks"][slot][c] for c in names], dtype=float)
            for slot, names in zip(base.slots, base.choices, strict=True)
        ]
        costs[metric], offsets[metric] = tuple(per_slot), float(table[FIXED])
    _, minimums = split(entry.definition.get("budgets") or {})
    table = BlockTable(base.slots, base.choices, base.accuracy, base.offset, costs, offsets, base.rules)
    return table.with_lower_bounds(minimums)


@dataclass(frozen=True)
class TargetTable:
    """A registered target's table, its prediction (None: the table's sum) and the digest naming its fronts."""

    table: BlockTable
    prediction: Prediction | None
    digest: str


def target_table(base: AccuracyTable, entry: RegisteredTarget) -> TargetTable:
    """``base`` with the target's costs, and the experiment's predictor fitted to it (``solver.predictor``)."""
    table = with_target(base, entry)
    if base.fit is None:
        return TargetTable(table, None, table_hash_of(table))
    prediction = base.fit(table)
    return TargetTable(table, prediction, prediction.key())


def front_points(
    table: BlockTable,
    metric: str,
    budgets: dict[str, float],
    max_points: int,
    prediction: Prediction | None = None,
) -> list[ParetoPoint]:
    """The complete front (up to ``max_points`` from the most accurate), or, for a block library within
    budgets (a front too large to list), ``SPREAD_POINTS`` exact points spread over its cost range; with a
    ``prediction`` other than the table's sum, that prediction's exact front."""
    if prediction is not None:
        return prediction.front(metric, budgets, max_points)
    from blocknas.solvers.pareto import pareto_front, spread_front, uses_cores  # a solve: Pyomo loads here

    if budgets and uses_cores(table):
        return spread_front(table, metric, budgets, min(SPREAD_POINTS, max_points))
    return pareto_front(table, metric, budgets, max_points)


def target_budgets(entry: RegisteredTarget) -> tuple[str, dict[str, float]]:
    """The target's front metric and the budgets its networks keep (lower bounds as ``with_target``'s
    negated metrics); a budget on the front's own metric bounds the front."""
    definition = entry.definition
    upper, lower = split(definition.get("budgets") or {})
    return definition["metrics"][0], upper | {LOWER + m: -v for m, v in lower.items()}


def target_key(base: AccuracyTable, entry: RegisteredTarget, table_hash: str, max_points: int) -> FrontKey:
    _, budgets = target_budgets(entry)
    return FrontKey(base.experiment, entry.name, entry.version, table_hash, FrontInputs(budgets, max_points))


def solve_target(
    store: PerformanceStore, base: AccuracyTable, entry: RegisteredTarget, max_points: int, config_hash: str = ""
) -> SolvedFront:
    """The target's front (its first metric, within its budgets on the others), solved at most once."""
    metric, budgets = target_budgets(entry)
    solved = target_table(base, entry)
    return front_for(
        store,
        target_key(base, entry, solved.digest, max_points),
        metric,
        solved.table.slots,
        lambda: front_points(solved.table, metric, budgets, max_points, solved.prediction),
        config_hash,
    )


def best_for_budget(points: list[dict], budget: float) -> dict | None:
    """The most accurate stored point whose cost fits ``budget`` (points are sorted by cost), or None."""
    lo, hi = 0, len(points)
    while lo < hi:  # the last point with cost <= budget; along a front accuracy grows with cost
        mid = (lo + hi) // 2
        if points[mid]["cost"] <= budget + 1e-12 * abs(budget):  # relative: costs span 1e-6 to 1e300
            lo = mid + 1
        else:
            hi = mid
    return points[lo - 1] if lo else None


def best_by_solving(
    table: BlockTable, metric: str, budget: float, budgets: dict | None = None, prediction: Prediction | None = None
) -> dict:
    """A fresh solve for one budget, within the target's other ``budgets`` (what a stored front agrees with),
    by ``prediction`` where given, else by the table's sum."""
    # ``metric`` first: a solve reports its "cost" in the first budget's metric
    budgets = dict(budgets or {})
    limits = {metric: min(budget, budgets.pop(metric, math.inf)), **budgets}
    from blocknas.solvers import best_within_budgets

    best = prediction.best(limits) if prediction is not None else best_within_budgets(table, limits)
    return point_json(table.slots, best)


def experiment_accuracy(run: RunContext) -> AccuracyTable:
    """The experiment's stored block table (no training: ``MissingScoresError`` if blocks are missing)."""
    from blocknas.orchestrator.experiments import measured_table
    from blocknas.orchestrator.predictors import fit_prediction

    settings = run.settings
    measured, table = measured_table(run, {})
    predictor = settings.solver.predictor
    fit = None if predictor == "linear" else partial(fit_prediction, predictor, settings.space, measured=measured)
    return AccuracyTable(
        settings.name, table.slots, table.choices, table.accuracy, table.accuracy_offset, table.rules, fit
    )


def prepare(
    store: PerformanceStore, entry: RegisteredTarget, settings, measure: bool = True
) -> tuple[AccuracyTable, RegisteredTarget]:
    """What ``entry`` is solved against, and ``entry`` with costs for it.

    A library with scores is solved on them; anything else on the experiment's block table. Table targets
    bring their costs; analytic ones are computed for the experiment's space; measured ones are timed
    once per machine on a Ray worker (warm-up and repeats as the target says) and stored. ``measure=False``
    (read-only callers) takes only stored costs: ``MissingCostsError`` says to run first.
    """
    definition = entry.definition
    if definition.get("scores"):
        return library_accuracy(entry), entry
    from blocknas.orchestrator.experiments import open_run
    from blocknas.orchestrator.pipeline.cost_stage import ensure_costs, load_costs

    run = open_run(settings, store)
    base = experiment_accuracy(run)
    if definition.get("costs"):
        return base, entry
    from blocknas.orchestrator.targets.kinds import TargetSpec

    options = definition.get("settings") or {}
    specs = tuple(
        TargetSpec(f"{entry.name}.{metric}", entry.kind, metric, **options) for metric in definition["metrics"]
    )
    measured = (ensure_costs if measure else load_costs)(replace(run, settings=replace(settings, targets=specs)))
    costs = {}
    for spec in specs:
        table = measured[spec.name].table
        costs[spec.metric] = {
            FIXED: table.fixed,
            "blocks": {
                slot.name: {c: table.blocks[(i, c)] for c in slot.choices}
                for i, slot in enumerate(settings.space.slots)
            },
        }
    return base, replace(entry, definition={**definition, "costs": costs})
