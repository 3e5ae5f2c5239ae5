"""Hardware-target costs per block: analytic ones computed here, measured ones timed on a Ray worker,
network-table ones (whole-network measurements, e.g. a device's latency per architecture) turned into
block costs by substitution over the plan's context networks, as MathNAS does.

Each target has a version (content hash of its definition, and for measured targets of the machine that
measures, for network tables of the file and the contexts), and costs are stored per (space, target
version, block): a second run measures nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from blocknas.orchestrator.hashing import content_hash
from blocknas.orchestrator.planning import Plan
from blocknas.orchestrator.run_context import RunContext
from blocknas.orchestrator.settings import RunSettings
from blocknas.orchestrator.storage import CostEntry
from blocknas.orchestrator.targets.kinds import TARGET_KINDS, TargetSpec
from blocknas.workers.costs import CostTable
from blocknas.workers.spaces import Space

FIXED_SLOT = -1
FIXED_CHOICE = "stem+head"


class MissingCostsError(RuntimeError):
    """The table holds no costs for a target; ``blocknas run`` measures them."""


@dataclass(frozen=True)
class TargetCosts:
    target: TargetSpec
    version: str
    table: CostTable


def target_version(settings: RunSettings, target: TargetSpec, plan: Plan) -> str:
    extra = TARGET_KINDS.get(target.kind).version_extra(settings, target, plan)
    space_hash = space_hash_of(settings.space_definition)
    return content_hash({"space": space_hash, "definition": target.definition(), **extra})


def space_hash_of(space_definition: dict) -> str:
    return content_hash(space_definition)


def _entries(table: CostTable) -> list[CostEntry]:
    return [CostEntry(FIXED_SLOT, FIXED_CHOICE, table.fixed)] + [
        CostEntry(i, choice, value) for (i, choice), value in table.blocks.items()
    ]


def _from_entries(metric: str, space: Space, entries: list[CostEntry]) -> CostTable | None:
    by_key = {(e.slot_index, e.choice): e.value for e in entries}
    needed = [(i, c) for i, slot in enumerate(space.slots) for c in slot.choices]
    if (FIXED_SLOT, FIXED_CHOICE) not in by_key or any(k not in by_key for k in needed):
        return None
    return CostTable(metric, by_key[(FIXED_SLOT, FIXED_CHOICE)], {k: by_key[k] for k in needed})


def _stored(run: RunContext, target: TargetSpec) -> tuple[str, CostTable | None]:
    space_hash = space_hash_of(run.settings.space_definition)
    version = target_version(run.settings, target, run.plan)
    return version, _from_entries(target.metric, run.settings.space, run.store.costs(space_hash, target.name, version))


def load_costs(run: RunContext) -> dict[str, TargetCosts]:
    """Stored costs of every target; raise ``MissingCostsError`` naming the first one not stored."""
    result = {}
    for target in run.settings.targets:
        version, table = _stored(run, target)
        if table is None:
            raise MissingCostsError(
                f"no stored costs for target {target.name!r} (version {version}); run `blocknas run` with "
                "this config first to measure them"
            )
        result[target.name] = TargetCosts(target, version, table)
    return result


def ensure_costs(run: RunContext) -> dict[str, TargetCosts]:
    """Load each target's costs, measuring and storing the ones not stored yet."""
    result = {}
    for target in run.settings.targets:
        version, table = _stored(run, target)
        if table is None:
            table, measured_on = TARGET_KINDS.get(target.kind).costs(run.settings, run.plan, target)
            run.store.record_costs(
                space_hash_of(run.settings.space_definition),
                target.name,
                version,
                target.metric,
                _entries(table),
                measured_on,
            )
            # The first measurement stored wins: a driver that measured at the same time uses it too.
            _, table = _stored(run, target)
        result[target.name] = TargetCosts(target, version, table)
    return result
