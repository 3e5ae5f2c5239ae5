"""Solver stage: build a plain ``BlockTable`` from the stored results and compute every target's front."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dashboards.pareto_plot import plot_front
from orchestrator.config import RunSettings
from orchestrator.cost_stage import TargetCosts
from orchestrator.hashing import content_hash
from orchestrator.planning import Plan
from orchestrator.storage import BlockScore, PerformanceStore
from solvers import BlockTable, ParetoPoint, best_within_budgets, enumerate_networks, pareto_front

CLOUD_LIMIT = 50_000  # plot every network's prediction up to this many networks


class MissingScoresError(RuntimeError):
    """Some blocks of the plan are not measured yet; ``blocknas run`` measures them."""


@dataclass(frozen=True)
class Fronts:
    table: BlockTable
    table_hash: str
    fronts: dict[str, list[ParetoPoint]]
    best: ParetoPoint | None


def build_block_table(settings: RunSettings, plan: Plan, scores: list[BlockScore],
                      costs: dict[str, TargetCosts]) -> BlockTable:
    """Block values from the swap-in accuracies, anchored at the context network.

    ``accuracy[i][j] = Acc(N_avg with b_ij at i) - Acc(N_avg)`` and the offset is ``Acc(N_avg)``: the
    additive prediction is exact on every one of the ``m*n`` measured networks. Relative to the base
    block this is MathNAS's ``-bA_ij`` up to a per-slot constant, which no ranking depends on.
    """
    by_hash = {s.job_hash: s for s in scores if s.status == "done"}
    missing = [b.block_key for b in plan.blocks if b.job_hash not in by_hash]
    if missing:
        raise MissingScoresError(
            f"{len(missing)} of {len(plan.blocks)} blocks are not measured yet ({', '.join(missing[:5])}"
            f"{', ...' if len(missing) > 5 else ''}); run `blocknas run` with this config to measure them"
        )
    accuracy = {(b.slot_index, b.choice): by_hash[b.job_hash].accuracy for b in plan.blocks}
    space = settings.space
    context_acc = [accuracy[(i, plan.context[i])] for i in range(len(space.slots))]
    offset = float(np.mean(context_acc))
    return BlockTable(
        slots=tuple(s.name for s in space.slots),
        choices=tuple(s.choices for s in space.slots),
        accuracy=tuple(
            np.array([accuracy[(i, c)] - context_acc[i] for c in slot.choices]) for i, slot in enumerate(space.slots)
        ),
        accuracy_offset=offset,
        costs={
            name: tuple(np.array([tc.table.blocks[(i, c)] for c in slot.choices]) for i, slot in enumerate(space.slots))
            for name, tc in costs.items()
        },
        cost_offsets={name: tc.table.fixed for name, tc in costs.items()},
    )


def table_hash_of(table: BlockTable) -> str:
    return content_hash({
        "choices": table.choices,
        "accuracy": [np.round(a, 9).tolist() for a in table.accuracy],
        "offset": round(table.accuracy_offset, 9),
        "costs": {k: [np.round(c, 9).tolist() for c in v] for k, v in table.costs.items()},
        "cost_offsets": {k: round(v, 9) for k, v in table.cost_offsets.items()},
    })


def solve_fronts(settings: RunSettings, table: BlockTable) -> Fronts:
    fronts = {
        name: pareto_front(table, name, settings.budgets, max_points=settings.max_points) for name in table.costs
    }
    best = best_within_budgets(table, settings.budgets) if settings.budgets else None
    return Fronts(table, table_hash_of(table), fronts, best)


def point_json(point: ParetoPoint, slots: tuple[str, ...]) -> dict:
    return {
        "blocks": [f"{slot}:{choice}" for slot, choice in zip(slots, point.blocks, strict=True)],
        "predicted_accuracy": round(point.predicted_accuracy, 6),
        "cost": point.cost,
        "costs": point.costs,
    }


def store_fronts(store: PerformanceStore, settings: RunSettings, result: Fronts,
                 costs: dict[str, TargetCosts]) -> None:
    budgets_hash = content_hash(settings.budgets)
    for name, points in result.fronts.items():
        store.record_front(
            settings.name, settings.config_hash, name, costs[name].version, costs[name].target.metric,
            result.table_hash, budgets_hash, [point_json(p, result.table.slots) for p in points],
        )


def write_front_files(out_dir: Path, settings: RunSettings, result: Fronts,
                      costs: dict[str, TargetCosts]) -> list[Path]:
    """``pareto_<target>.json`` and ``pareto_<target>.png`` per target; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cloud = None
    if result.table.num_networks <= CLOUD_LIMIT:
        _, accuracy, all_costs = enumerate_networks(result.table, list(result.table.costs))
        feasible = np.ones(len(accuracy), dtype=bool)
        for name, limit in settings.budgets.items():
            feasible &= all_costs[name] <= limit
        cloud = (accuracy[feasible], {k: v[feasible] for k, v in all_costs.items()})
    paths = []
    for name, points in result.fronts.items():
        metric = costs[name].target.metric
        payload = {
            "experiment": settings.name,
            "target": name,
            "metric": metric,
            "target_version": costs[name].version,
            "budgets": settings.budgets,
            "pareto": [point_json(p, result.table.slots) for p in points],
        }
        json_path = out_dir / f"pareto_{name}.json"
        json_path.write_text(json.dumps(payload, indent=2))
        png_path = plot_front(
            out_dir / f"pareto_{name}.png", name, metric,
            [(p.cost, p.predicted_accuracy) for p in points],
            (cloud[1][name].tolist(), cloud[0].tolist()) if cloud else None,
        )
        paths += [json_path, png_path]
    return paths
