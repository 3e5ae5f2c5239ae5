"""The hardware-target registry: targets as versioned data in the performance table.

A target's version is the content hash of everything that defines it (kind, metrics, budgets, costs,
imported scores, measurement settings), so the same file gives the same version and any change gives a
new one. A file is parsed and checked whole before anything is stored: a bad or partial file leaves the
registered version as it was.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.hashing import content_hash
from orchestrator.storage import PerformanceStore, RegisteredTarget
from orchestrator.targets.files import read_target_file


class TargetRegistryError(LookupError):
    """A registry operation named a target that is missing (or already there); nothing changed."""


def version_of(definition: dict) -> str:
    """The content hash of what the target is, not of where it came from (its ``source``)."""
    return content_hash({k: v for k, v in definition.items() if k != "source"})


def register(store: PerformanceStore, name: str, file: str | Path, update: bool) -> dict:
    """``targets add`` (``update=False``) or ``targets update``: parse, version, store; returns a summary."""
    if not name or len(name) > 100 or not name.replace("_", "").replace("-", "").isalnum():
        raise TargetRegistryError(f"target name {name!r}: use letters, digits, '-' and '_' (at most 100)")
    data = read_target_file(file)
    version = version_of(data.as_json())
    try:
        previous = store.put_target(name, version, data.kind, data.as_json(), exists=update)
    except LookupError as exc:
        raise TargetRegistryError(str(exc)) from exc
    return {"name": name, "version": version, "previous_version": previous, "changed": previous != version,
            "kind": data.kind, "metrics": list(data.metrics), "source": data.source}


def describe(entry: RegisteredTarget, full: bool = False) -> dict:
    definition = entry.definition
    costs = definition.get("costs") or {}
    first = next(iter(costs.values()), {"blocks": {}})
    out = {"name": entry.name, "version": entry.version, "kind": entry.kind,
           "metrics": definition["metrics"], "budgets": definition.get("budgets") or {},
           "source": definition.get("source"), "slots": len(first["blocks"]),
           "blocks": sum(len(b) for b in first["blocks"].values()),
           "updated_at": entry.updated_at.isoformat()}
    if full:
        out |= {"costs": costs, "scores": definition.get("scores") or {}, "settings": definition.get("settings") or {}}
    return out


def find(store: PerformanceStore, name: str) -> RegisteredTarget:
    for entry in store.registered_targets():
        if entry.name == name:
            return entry
    raise TargetRegistryError(f"no hardware target named {name!r}; `blocknas targets list` shows them")


def remove(store: PerformanceStore, name: str) -> str:
    try:
        return store.remove_target(name)
    except LookupError as exc:
        raise TargetRegistryError(str(exc)) from exc
