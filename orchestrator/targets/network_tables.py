"""Per-network targets (``kind: network_table``): whole-network measurements from a file turned into block
costs by substitution over the plan's context networks, as MathNAS does for latency and energy."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from blocknas.orchestrator.estimation import block_values
from blocknas.workers.costs import CostTable
from blocknas.workers.tabular import TabularDataError, read_network_table

if TYPE_CHECKING:
    from blocknas.orchestrator.planning import Plan
    from blocknas.orchestrator.targets.kinds import TargetSpec
    from blocknas.workers.spaces import Space


def file_digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise TabularDataError(f"cannot read the network table {path}: {exc.strerror}") from exc


def _measured_networks(space: Space, plan: Plan, target: TargetSpec) -> dict[tuple[int, ...], float]:
    """The file's value of every network the plan evaluates, by selection (one block index per slot)."""
    table = read_network_table(target.file, target.column, target.key_column)
    choices = [slot.choices for slot in space.slots]
    values = {}
    for job in plan.networks.values():
        key = space.network_key(job.choices)
        if key not in table:
            raise TabularDataError(
                f"targets.{target.name}: {target.file} has no row for network {key!r} "
                f"({' '.join(job.choices)}) in column {target.key_column!r}"
            )
        values[tuple(names.index(c) for names, c in zip(choices, job.choices, strict=True))] = table[key]
    return values


def substitution_costs(space: Space, plan: Plan, target: TargetSpec) -> CostTable:
    """Per-block costs from whole-network values: ``c_ij = mean_k [T(C_k with b_ij) - T(C_k)]``, shifted per
    slot so that every block costs >= 0 and the fixed part is the cheapest network (no prediction changes).

    Where the substitution predicts some network below zero (the fixed part would be negative), the block
    costs are refitted by non-negative least squares over the measured networks instead: every block and
    the fixed part >= 0, so no network is ever predicted to cost less than nothing. A warning says so."""
    values = _measured_networks(space, plan, target)
    sizes = [len(slot.choices) for slot in space.slots]
    contexts = [tuple(slot.choices.index(c) for slot, c in zip(space.slots, ctx, strict=True)) for ctx in plan.contexts]
    per_slot, offset = block_values(contexts, sizes, values)
    shifts = [float(np.min(v)) for v in per_slot]
    per_slot = [v - shift for v, shift in zip(per_slot, shifts, strict=True)]
    offset += sum(shifts)
    if offset < 0:
        fitted = _nonnegative_fit(sizes, values)
        print(
            f"blocknas: warning: targets.{target.name}: substitution around the context networks predicts "
            f"networks at {offset:g} {target.metric} (below zero); fitted non-negative block costs by least "
            f"squares over the {len(values)} measured networks instead (summary.json reports the fit's error: "
            "targets.NAME.conversion)",
            file=sys.stderr,
            flush=True,
        )
        offset, per_slot = fitted
    return CostTable(
        target.metric,
        float(offset),
        {(i, c): float(per_slot[i][j]) for i, slot in enumerate(space.slots) for j, c in enumerate(slot.choices)},
    )


def _nonnegative_fit(sizes: list[int], values: dict[tuple[int, ...], float]) -> tuple[float, list[np.ndarray]]:
    """``min ||A x - y||`` over ``x >= 0``: ``x`` the fixed part and one cost per block, ``A`` one row per
    measured network (1 for the fixed part and for each of its blocks)."""
    from scipy.optimize import nnls

    starts = np.cumsum([1, *sizes[:-1]])
    design = np.zeros((len(values), 1 + sum(sizes)))
    design[:, 0] = 1.0
    for row, selection in enumerate(values):
        design[row, [start + j for start, j in zip(starts, selection, strict=True)]] = 1.0
    solution, _ = nnls(design, np.array(list(values.values()), dtype=float), maxiter=50 * design.shape[1])
    return float(solution[0]), [solution[start : start + n] for start, n in zip(starts, sizes, strict=True)]


def conversion_report(space: Space, plan: Plan, target: TargetSpec, table: CostTable) -> dict:
    """How well the block costs of a per-network target reproduce the networks they were fitted on, and
    the range those networks span (a prediction outside it is an extrapolation)."""
    values = _measured_networks(space, plan, target)
    names = [slot.choices for slot in space.slots]
    errors = np.array([table.total([names[i][j] for i, j in enumerate(s)]) - v for s, v in values.items()])
    measured = np.array(list(values.values()), dtype=float)
    nonzero = measured != 0
    return {
        "networks": len(values),
        "mean_abs_error": float(np.abs(errors).mean()),
        "max_abs_error": float(np.abs(errors).max()),
        "mean_abs_percent_error": float(np.mean(np.abs(errors[nonzero] / measured[nonzero])) * 100)
        if nonzero.any()
        else None,
        "measured_min": float(measured.min()),
        "measured_max": float(measured.max()),
    }
