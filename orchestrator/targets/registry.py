"""The hardware-target registry: targets as versioned data in the performance table.

A target's version is the content hash of everything that defines it (kind, metrics, budgets, costs,
imported scores, measurement settings), so the same file gives the same version and any change gives a
new one. A file is parsed and checked whole before anything is stored: a bad or partial file leaves the
registered version as it was.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from blocknas.orchestrator.hashing import content_hash
from blocknas.orchestrator.storage import PerformanceStore, RegisteredTarget
from blocknas.orchestrator.targets.budgets import resolve
from blocknas.orchestrator.targets.files import TargetData, TargetFileError, library_name, read_target_file


class TargetRegistryError(LookupError):
    """A registry operation named a target that is missing (or already there); nothing changed."""


class TargetNotFoundError(TargetRegistryError):
    """No target of that name is registered."""


def version_of(definition: dict) -> str:
    """The content hash of what the target is, not of where it came from (its ``source``)."""
    return content_hash({k: v for k, v in definition.items() if k != "source"})


def register(
    store: PerformanceStore,
    name: str,
    file: str | Path,
    update: bool,
    metric: str | None = None,
    objective: str | None = None,
    budgets: dict | None = None,
) -> dict:
    """``targets add`` (``update=False``) or ``targets update``: parse, version, store; returns a summary.

    ``metric``: the front's metric (default: the file's first); ``objective``: the library score solved for
    (default: ``kl_div`` or the first); ``budgets``: limits or ``[min, max]`` ranges joining the file's.
    Names may be Puzzle's dotted paths. They are part of the definition, so of the version."""
    return put(store, name, read(name, file, metric, objective, budgets), update)


def read(
    name: str,
    file: str | Path,
    metric: str | None = None,
    objective: str | None = None,
    budgets: dict | None = None,
    maximize: bool | None = None,
) -> TargetData:
    """The target ``register`` would store, parsed and checked whole, without touching any store.
    ``maximize``: whether a library's objective is bigger-is-better (None: as the file says, else a loss)."""
    if not name or len(name) > 100 or not name.replace("_", "").replace("-", "").isalnum():
        raise TargetRegistryError(f"target name {name!r}: use letters, digits, '-' and '_' (at most 100)")
    return _chosen(read_target_file(file), Path(file), metric, objective, budgets or {}, maximize)


def put(store: PerformanceStore, name: str, data: TargetData, update: bool) -> dict:
    """Store a target ``read`` returned as ``name``'s current version."""
    version, previous = store_definition(store, name, data.kind, data.as_json(), update)
    return {
        "name": name,
        "version": version,
        "previous_version": previous,
        "changed": previous != version,
        "kind": data.kind,
        "metrics": list(data.metrics),
        "source": data.source,
    }


def store_definition(
    store: PerformanceStore, name: str, kind: str, definition: dict, update: bool
) -> tuple[str, str | None]:
    """(version, previous version): every version is stored through here, its costs checked finite first."""
    _check_costs(name, "the new version", definition)
    version = version_of(definition)
    try:
        return version, store.put_target(name, version, kind, definition, exists=update)
    except LookupError as exc:
        raise TargetRegistryError(str(exc)) from exc


def _chosen(
    data: TargetData, path: Path, metric: str | None, objective: str | None, budgets: dict, maximize: bool | None
) -> TargetData:
    metrics = list(data.metrics)
    if metric is not None:
        first = library_name(path, metric, metrics, "stats")
        metrics = [first, *(m for m in metrics if m != first)]
    if objective is not None:
        if not data.scores:
            raise TargetFileError(path, f"--objective {objective}: this file brings no block scores")
        objective = library_name(path, objective, list(data.scores), "metrics")
    elif data.scores:
        objective = "kl_div" if "kl_div" in data.scores else next(iter(data.scores))
    if maximize is not None and not data.scores:
        raise TargetFileError(path, f"--{'maximize' if maximize else 'minimize'}: this file brings no block scores")
    return replace(
        data,
        metrics=tuple(metrics),
        objective=objective,
        budgets={**data.budgets, **resolve(path, budgets, metrics)},
        maximize=data.maximize if maximize is None else maximize,
    )


def describe(entry: RegisteredTarget, full: bool = False) -> dict:
    definition = entry.definition
    costs = definition.get("costs") or {}
    first = next(iter(costs.values()), {"blocks": {}})
    out = {
        "name": entry.name,
        "version": entry.version,
        "kind": entry.kind,
        "metrics": definition["metrics"],
        "budgets": definition.get("budgets") or {},
        "objective": definition.get("objective"),
        "direction": ("maximize" if definition.get("maximize") else "minimize")
        if definition.get("objective")
        else None,
        "source": definition.get("source"),
        "slots": len(first["blocks"]),
        "blocks": sum(len(b) for b in first["blocks"].values()),
        "updated_at": entry.updated_at.isoformat(),
    }
    if full:
        out |= {"costs": costs, "scores": definition.get("scores") or {}, "settings": definition.get("settings") or {}}
    return out


def find(store: PerformanceStore, name: str, usable: bool = True) -> RegisteredTarget:
    """The current version of target ``name``; ``usable``: one whose costs can be solved with (else it is
    named as broken; ``targets show`` looks at it all the same)."""
    for entry in store.registered_targets():
        if entry.name == name:
            if usable:
                _check_stored(entry)
            return entry
    raise TargetNotFoundError(f"no hardware target named {name!r}; `blocknas targets list` shows them")


def remove(store: PerformanceStore, name: str) -> str:
    try:
        return store.remove_target(name)
    except LookupError as exc:
        raise TargetRegistryError(str(exc)) from exc


def _check_stored(entry: RegisteredTarget) -> None:
    """A stored version whose costs are not all finite (written before blocknas refused them, or by hand) is
    named as such, never solved: ``targets update`` registers good ones as a new version."""
    _check_costs(entry.name, f"version {entry.version}", entry.definition)


def _check_costs(name: str, which: str, definition: dict) -> None:
    for metric, table in (definition.get("costs") or {}).items():
        values = [table.get("fixed", 0.0), *(v for b in table["blocks"].values() for v in b.values())]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise TargetRegistryError(
                f"target {name!r}: {which} has non-finite {metric} costs; nothing is solved or stored with "
                f"them: register finite ones with `blocknas targets update {name} --file F`"
            )
