"""Solver stage: build a plain ``BlockTable`` from the stored results and compute every target's front."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from blocknas.orchestrator.estimation import block_values
from blocknas.orchestrator.front_service import (
    FrontInputs,
    FrontKey,
    front_for,
    point_of,
)
from blocknas.orchestrator.output_files import atomic_target, write_atomically
from blocknas.orchestrator.pipeline.cost_stage import TargetCosts
from blocknas.orchestrator.planning import Plan
from blocknas.orchestrator.plots.pareto_plot import plot_front
from blocknas.orchestrator.predictors import Prediction
from blocknas.orchestrator.run_context import RunContext
from blocknas.orchestrator.settings import RunSettings
from blocknas.orchestrator.storage import BlockScore, StoredFront
from blocknas.solvers import BlockTable, ParetoPoint, enumerate_networks
from blocknas.solvers.structure import ConnectivityRule
from blocknas.workers.spaces import Space

CLOUD_LIMIT = 50_000  # plot every network's prediction up to this many networks


class MissingScoresError(RuntimeError):
    """Some blocks of the plan are not measured yet; ``blocknas run`` measures them."""


@dataclass(frozen=True)
class Fronts:
    table: BlockTable
    table_hash: str
    fronts: dict[str, list[ParetoPoint]]
    best: ParetoPoint | None
    prediction: Prediction  # the predictor's (solver.predictor)
    reused: tuple[str, ...] = ()  # targets whose front was stored for exactly these inputs, not solved again
    stored: dict[str, StoredFront] = field(default_factory=dict)  # as the store holds them

    def predict_all(self, selections: np.ndarray) -> np.ndarray:
        return self.prediction.predict_all(selections)


def _selection(space: Space, choices: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(slot.choices.index(c) for slot, c in zip(space.slots, choices, strict=True))


def measured_networks(space: Space, plan: Plan, scores: list[BlockScore]) -> dict[tuple[int, ...], float]:
    """Accuracy of every network the plan evaluated, by selection; ``MissingScoresError`` if any is missing."""
    by_hash = {s.job_hash: s for s in scores if s.status == "done"}
    missing = [b.block_key for b in plan.blocks if b.job_hash not in by_hash]
    if missing:
        raise MissingScoresError(
            f"{len(missing)} of {len(plan.blocks)} block measurements are not done yet ({', '.join(missing[:5])}"
            f"{', ...' if len(missing) > 5 else ''}); run `blocknas run` with this config to measure them"
        )
    return {_selection(space, plan.networks[b.network_hash].choices): by_hash[b.job_hash].accuracy for b in plan.blocks}


def build_block_table(
    space: Space, plan: Plan, measured: dict[tuple[int, ...], float], costs: dict[str, TargetCosts]
) -> BlockTable:
    """Block values by the estimator's swap-in differences (``blocknas.orchestrator.estimation.block_values``).

    With one context ``N_avg``, ``accuracy[i][j] = Acc(N_avg with b_ij at i) - Acc(N_avg)`` and the offset
    is ``Acc(N_avg)``: the additive prediction is exact on every measured network. Relative to the base
    block this is MathNAS's ``-bA_ij`` up to a per-slot constant, which no ranking depends on.
    """
    sizes = [len(s.choices) for s in space.slots]
    values, offset = block_values([_selection(space, c) for c in plan.contexts], sizes, measured)
    rules = (ConnectivityRule(*space.connectivity),) if space.connectivity else ()
    return BlockTable(
        slots=tuple(s.name for s in space.slots),
        choices=tuple(s.choices for s in space.slots),
        accuracy=values,
        accuracy_offset=offset,
        costs={
            name: tuple(np.array([tc.table.blocks[(i, c)] for c in slot.choices]) for i, slot in enumerate(space.slots))
            for name, tc in costs.items()
        },
        cost_offsets={name: tc.table.fixed for name, tc in costs.items()},
        rules=rules,
    )


def front_key(settings: RunSettings, prediction: str, costs: dict[str, TargetCosts], target: str) -> FrontKey:
    """The key a front of one of the run's targets is stored under (``prediction``: the prediction's ``key``)."""
    inputs = FrontInputs(settings.solver.budgets, settings.solver.max_points, settings.solver.predictor)
    return FrontKey(settings.name, target, costs[target].version, prediction, inputs)


def solve_fronts(
    run: RunContext,
    table: BlockTable,
    prediction: Prediction,
    costs: dict[str, TargetCosts],
    only: tuple[str, ...] | None = None,
) -> Fronts:
    """Every target's exact front (or ``only`` these), for the configured predictor (the
    FLOPs-aware one, through the front service: a front stored for exactly these inputs is used as it is, a
    new one is stored."""
    settings, table_hash = run.settings, prediction.key()
    fronts, best, reused, stored = {}, None, [], {}
    for name in only or tuple(table.costs):
        key = front_key(settings, table_hash, costs, name)
        found = front_for(
            run.store,
            key,
            costs[name].target.metric,
            table.slots,
            lambda name=name: prediction.front(name, settings.solver.budgets, settings.solver.max_points),
            settings.config_hash,
        )
        fronts[name], stored[name] = [point_of(p) for p in found.front.points], found.front
        if not found.solved:
            reused.append(name)
    if settings.solver.budgets and only is None:
        best = prediction.best(settings.solver.budgets)  # InfeasibleBudgetError names the least feasible cost
    return Fronts(table, table_hash, fronts, best, prediction, tuple(reused), stored)


def write_front_files(
    out_dir: Path,
    settings: RunSettings,
    result: Fronts,
    costs: dict[str, TargetCosts],
    summary: dict,
    verified: list[dict] = (),
) -> list[Path]:
    """Per target ``pareto_<target>.json`` and ``pareto_<target>.png``, and one ``figures.html`` (every
    front interactive, side by side, and the block heatmap); returns the paths. ``summary``: the run's
    summary (its points carry the extrapolation marks); ``verified``: networks verified whole."""
    from blocknas.orchestrator.answers import run_objective
    from blocknas.orchestrator.plots import figures

    quality = run_objective(settings.space_definition.get("kind"), settings.scorer).axis_label
    out_dir.mkdir(parents=True, exist_ok=True)
    cloud = None
    if result.table.num_networks <= CLOUD_LIMIT:
        selections, _, all_costs = enumerate_networks(result.table, list(result.table.costs))
        accuracy = result.predict_all(selections)
        feasible = np.ones(len(accuracy), dtype=bool)
        for name, limit in settings.solver.budgets.items():
            feasible &= all_costs[name] <= limit
        cloud = (accuracy[feasible], {k: v[feasible] for k, v in all_costs.items()})
    paths, pages = [], []
    for name in result.fronts:
        metric = costs[name].target.metric
        points = summary["targets"][name]["pareto"]
        payload = {
            "experiment": settings.name,
            "target": name,
            "metric": metric,
            "target_version": costs[name].version,
            "budgets": settings.solver.budgets,
            "pareto": points,
        }
        json_path = write_atomically(out_dir / f"pareto_{name}.json", json.dumps(payload, indent=2))
        background = (cloud[1][name].tolist(), cloud[0].tolist()) if cloud else None
        budget = settings.solver.budgets.get(name)
        png_path = out_dir / f"pareto_{name}.png"
        with atomic_target(png_path) as temporary:
            plot_front(
                temporary,
                name,
                metric,
                [(p["cost"], p["predicted_accuracy"]) for p in points],
                background,
                unit=figures.unit_of(metric),
                budget=budget,
                verified=[(v["costs"][name], v["accuracy"]) for v in verified if name in v["costs"]],
                outside=[bool(p.get("outside_measured")) for p in points],
                quality=quality,
            )
        paths += [json_path, png_path]
        pages.append(
            figures.front_figure(
                name, metric, points, budget=budget, verified=verified, cloud=background, quality=quality
            )
        )
    table = result.table
    heatmap = figures.heatmap_figure(
        table.slots, table.choices, table.accuracy, {n: (costs[n].target.metric, table.costs[n]) for n in result.fronts}
    )
    overview = figures.fronts_figure(summary["targets"], settings.solver.budgets, verified, quality)
    with atomic_target(out_dir / "figures.html") as temporary:
        figures.write_html(
            temporary,
            f"{settings.name}: fronts and blocks",
            [overview, *pages, heatmap],
            intro=f"config {settings.config_hash[:12]}; hover a point for its architecture and costs; open "
            "circles are predictions outside the range of the networks measured; diamonds are verified "
            "networks.",
        )
    return [*paths, out_dir / "figures.html"]


FRONT_FILES = ("pareto_*.json", "pareto_*.png", "figures.html")


def link_front_files(earlier: Path, out_dir: Path) -> list[Path]:
    """The front files of an earlier run folder that drew the same fronts, linked into ``out_dir`` (hard
    links: no second copy on disk and nothing drawn again; a copy where the file system has no links)."""
    import shutil

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for pattern in FRONT_FILES:
        for source in sorted(earlier.glob(pattern)):
            target = out_dir / source.name
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
            paths.append(target)
    return paths
