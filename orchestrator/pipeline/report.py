"""``summary.json`` and the readable tables printed at the end of a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from blocknas.orchestrator.answers import front_cap, mark_extrapolations, run_objective, with_answers
from blocknas.orchestrator.front_service import point_json
from blocknas.orchestrator.output_files import write_atomically
from blocknas.orchestrator.pipeline.cost_stage import TargetCosts
from blocknas.orchestrator.pipeline.solve_stage import Fronts
from blocknas.orchestrator.plots.units import unit_of
from blocknas.orchestrator.settings import RunSettings
from blocknas.orchestrator.storage import public_url

if TYPE_CHECKING:  # the space's kind loads torch: not for a summary
    from blocknas.workers.spaces import Space


def measured_checks(space: Space, plan, measured: dict, costs: dict[str, TargetCosts]) -> tuple[dict, dict]:
    """(ranges, conversions): the range of what was measured (``accuracy`` over the evaluated networks, and
    each per-network target's values over them), and each per-network target's conversion report."""
    from blocknas.orchestrator.targets.kinds import TARGET_KINDS
    from blocknas.orchestrator.targets.network_tables import conversion_report

    ranges = {"accuracy": (min(measured.values()), max(measured.values()))} if measured else {}
    conversions = {
        name: conversion_report(space, plan, tc.target, tc.table)
        for name, tc in costs.items()
        if TARGET_KINDS.get(tc.target.kind).per_network
    }
    ranges |= {name: (c["measured_min"], c["measured_max"]) for name, c in conversions.items()}
    return ranges, conversions


def build_summary(
    settings: RunSettings,
    result: Fronts,
    costs: dict[str, TargetCosts],
    *,
    blocks_total: int,
    evaluations: int,
    blocks_trained: int,
    blocks_cached: int,
    contexts: tuple[tuple[str, ...], ...],
    mlflow_run_id: str | None,
    output_dir: Path,
    ranges: dict | None = None,
    conversions: dict | None = None,
) -> dict:
    objective = run_objective(settings.space_definition.get("kind"), settings.scorer)
    metrics = {name: tc.target.metric for name, tc in costs.items()}
    summary = {
        "experiment": settings.name,
        "config_hash": settings.config_hash,
        "blocks_total": blocks_total,
        "evaluations": evaluations,
        "blocks_trained": blocks_trained,
        "blocks_cached": blocks_cached,
        # measured by another driver while this one waited for them (the table's leases)
        "blocks_by_other_drivers": blocks_total - blocks_trained - blocks_cached,
        "store": public_url(settings.storage_url),
        "tracking_uri": settings.tracking.uri,
        "mlflow_run_id": mlflow_run_id,
        "output_dir": str(output_dir),
        "estimator": settings.scorer.estimator.kind,
        "predictor": settings.solver.predictor,
        "context_networks": [list(c) for c in contexts],
        "table_hash": result.table_hash,
        "budgets": settings.solver.budgets,
        "targets": {
            name: {
                "metric": costs[name].target.metric,
                "version": costs[name].version,
                "pareto": with_answers(
                    [mark_extrapolations(point_json(result.table.slots, p), ranges or {}) for p in points],
                    objective,
                    metrics,
                ),
                "cap": front_cap(points, settings.solver.max_points),
            }
            | ({"conversion": conversions[name]} if name in (conversions or {}) else {})
            for name, points in result.fronts.items()
        },
    }
    if ranges:
        summary["measured_range"] = {k: list(v) for k, v in ranges.items()}
    if result.best is not None:
        best = mark_extrapolations(point_json(result.table.slots, result.best), ranges or {})
        summary["best"] = with_answers([best], objective, metrics)[0]
    return summary


def write_summary(summary: dict, output_dir: Path) -> Path:
    return write_atomically(output_dir / "summary.json", json.dumps(summary, indent=2))


def _fmt(value: float) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.1f}k"
    return f"{value:.4g}"


def format_fronts(summary: dict) -> str:
    lines = []
    for name, target in summary["targets"].items():
        unit = unit_of(target["metric"])
        lines.append(f"\nPareto front: predicted accuracy vs. {name} ({unit}), {len(target['pareto'])} points")
        if "conversion" in target:
            c = target["conversion"]
            lines.append(
                f"  block costs fitted on {c['networks']} measured networks: mean error "
                f"{_fmt(c['mean_abs_error'])} {unit} (max {_fmt(c['max_abs_error'])}); measured "
                f"{_fmt(c['measured_min'])} to {_fmt(c['measured_max'])} {unit}"
            )
        lines.append(f"  {'cost':>10}  {'pred. acc %':>11}  blocks")
        for point in target["pareto"]:
            blocks = " ".join(point["blocks"])
            mark = "*" if point.get("outside_measured") else " "
            lines.append(f"  {_fmt(point['cost']):>10}  {point['predicted_accuracy']:>10.2f}{mark}  {blocks}")
        if any(p.get("outside_measured") for p in target["pareto"]):
            lines.append(
                "  * predicted outside the range of the networks measured (accuracy or cost): an "
                "extrapolation, verify it (refine.rounds)"
            )
    if "best" in summary:
        best = summary["best"]
        limits = ", ".join(f"{k} <= {v:g}" for k, v in summary["budgets"].items())
        lines.append(
            f"\nBest within {limits}: {' '.join(best['blocks'])}  "
            f"predicted accuracy {best['predicted_accuracy']:.2f} %, costs "
            + ", ".join(f"{k} {_fmt(v)}" for k, v in best["costs"].items())
        )
    if "refine" in summary:
        refined = summary["refine"]
        lines.append(
            f"\nRefine loop: {refined['rounds']} rounds, {refined['evaluations']} networks verified, "
            f"stopped by {refined['stopped']}"
        )
        for pick in refined["picks"]:
            limits = ", ".join(f"{k} <= {v:g}" for k, v in pick["budgets"].items()) or "no budget"
            if pick["blocks"] is None:
                lines.append(f"  {limits}: no verified network fits")
                continue
            lines.append(
                f"  best verified within {limits}: {' '.join(pick['blocks'])}  accuracy "
                f"{pick['verified_accuracy']:.2f} % (measured), costs "
                + ", ".join(f"{k} {_fmt(v)}" for k, v in pick["costs"].items())
            )
    return "\n".join(lines)
