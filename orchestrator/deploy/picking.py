"""``blocknas pick``: the best architectures of a registered target within budgets, as Puzzle's ``mip_nas``
and ``multi_solution_mip_nas`` answer them: one network, or ``num_solutions`` networks in order of the
objective, each the best one that differs from every earlier one in at least ``minimal_diversity`` layers.
Exact (``solvers``); budgets are the target's own joined by those given, ranges included."""

from __future__ import annotations

import math
import time
from dataclasses import replace

from blocknas.orchestrator.answers import network_answer, registered_objective
from blocknas.orchestrator.deploy.fronts import AccuracyTable, target_budgets, target_table
from blocknas.orchestrator.front_service import point_json
from blocknas.orchestrator.storage import PerformanceStore, RegisteredTarget
from blocknas.orchestrator.targets.budgets import BudgetError, resolve
from blocknas.solvers import ParetoPoint


def _from_stored_front(
    store: PerformanceStore, base: AccuracyTable, own: RegisteredTarget, limits: dict, metric: str, max_points: int
) -> ParetoPoint | None:
    """The best network within ``limits`` read off the target's stored front, where that front answers
    them (``switching.answers``: the other metrics keep the target's own budgets), without a solve; else None."""
    from blocknas.orchestrator.deploy import switching

    _, own_limits = target_budgets(own)
    others = {m: v for m, v in limits.items() if m != metric}
    budget = limits.get(metric, math.inf)
    if others != {m: v for m, v in own_limits.items() if m != metric} or not math.isfinite(budget):
        return None
    found = switching.switch(store, base, own.name, budget, max_points, own)
    if found.solved or found.point is None:  # not from the front: the pool's solver answers, as for any pick
        return None
    point = found.point
    return ParetoPoint(
        tuple(b.split(":", 1)[1] for b in point["blocks"]), point["predicted_accuracy"], point["cost"], point["costs"]
    )


def pick(
    base: AccuracyTable,
    entry: RegisteredTarget,
    budgets: dict,
    num_solutions: int = 1,
    minimal_diversity: int = 1,
    store: PerformanceStore | None = None,
    max_points: int = 2000,
) -> dict:
    """Puzzle's answer (module docstring). With ``store``, one network within budgets that only bound the
    front's metric (the others as the target keeps them) is read off the target's stored front, when it is
    stored and answers them: the same network, without loading a solver."""
    if num_solutions < 1:
        raise BudgetError(f"--num-solutions must be >= 1, got {num_solutions}")
    if not 1 <= minimal_diversity <= len(base.slots):
        raise BudgetError(
            f"--minimal-diversity must be between 1 and the {len(base.slots)} layers, got {minimal_diversity}"
        )
    definition = entry.definition
    joined = {**(definition.get("budgets") or {}), **resolve(entry.name, budgets, definition["metrics"])}
    own, entry = entry, replace(entry, definition={**definition, "budgets": joined})
    metric, limits = target_budgets(entry)
    solved = target_table(base, entry)
    table = solved.table
    started = time.perf_counter()
    stored = _from_stored_front(store, base, own, limits, metric, max_points) if store and num_solutions == 1 else None
    if stored is not None:
        points = [stored]
    elif num_solutions == 1:
        from blocknas.solvers import best_within_budgets

        points = [solved.prediction.best(limits) if solved.prediction else best_within_budgets(table, limits)]
    elif solved.prediction is not None:
        raise BudgetError(
            "--num-solutions > 1 (a pool of diverse networks) solves the table's sum: pick with "
            "solver.predictor=linear, or one network with this predictor"
        )
    else:
        from blocknas.solvers import solution_pool

        points = solution_pool(table, num_solutions, limits, min_distance=minimal_diversity)
    seconds = time.perf_counter() - started
    objective = definition.get("objective")  # a library's score, else predicted accuracy
    answer_objective = registered_objective(definition)
    shown = [m for m in definition["metrics"] if m in joined or m == metric]
    return {
        "target": entry.name,
        "target_version": entry.version,
        "budgets": joined,
        "objective": f"metrics.{objective}" if objective else "predicted_accuracy",
        "minimal_diversity": minimal_diversity,
        "seconds": seconds,
        "solutions": [
            {
                "objective_value": answer_objective.value(p.predicted_accuracy),
                "blocks": dict(zip(table.slots, p.blocks, strict=True)),
                "costs": {m: p.costs[m] for m in shown},
                "answer": network_answer(point_json(table.slots, p), answer_objective),
            }
            for p in points
        ],
    }


def format_pick(out: dict) -> str:
    lines = [
        f"{out['target']} (version {out['target_version']}), {out['objective']} within "
        + (", ".join(f"{m} {_limit(v)}" for m, v in out["budgets"].items()) or "no budgets")
        + f": {len(out['solutions'])} solution(s) in {out['seconds']:.2f} s"
    ]
    for rank, solution in enumerate(out["solutions"], start=1):
        costs = ", ".join(f"{m} {v:,.6g}" for m, v in solution["costs"].items())
        lines.append(f"{rank}. {out['objective']} {solution['objective_value']:.9g}  ({costs})")
        lines += [f"     {slot}: {' '.join(block.split())}" for slot, block in solution["blocks"].items()]
    return "\n".join(lines)


def _limit(value) -> str:
    if isinstance(value, list):
        low, high = value
        return f"in [{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
    return f"<= {value:g}"
