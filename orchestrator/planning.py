"""Plan the block jobs of a search: which networks to train, and which of them are already measured.

MathNAS Algorithm 1: the context network ``N_avg`` holds, at each slot, the block whose FLOPs are
nearest the slot's mean. Block ``j`` at slot ``i`` is measured by training ``N_avg`` with ``b_ij`` swapped
in. The ``m`` jobs whose block *is* the context block all train ``N_avg`` itself, so they share one
network job: ``m*(n-1) + 1`` trainings measure all ``m*n`` blocks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from orchestrator.hashing import content_hash
from workers.costs import CostTable
from workers.records import NetworkJob, TrainSettings
from workers.spaces import CnnSpace


@dataclass(frozen=True)
class BlockJob:
    """One row of the performance table: block ``choice`` at slot ``slot_index``."""

    job_hash: str
    slot_index: int
    slot: str
    choice: str
    choice_index: int
    block_key: str
    network_hash: str


@dataclass(frozen=True)
class Plan:
    context: tuple[str, ...]
    scorer_hash: str
    blocks: tuple[BlockJob, ...]
    networks: dict[str, NetworkJob]  # network_hash -> job

    def blocks_of(self, network_hash: str) -> list[BlockJob]:
        return [b for b in self.blocks if b.network_hash == network_hash]


def choose_context(space: CnnSpace, flops: CostTable) -> tuple[str, ...]:
    """At each slot, the candidate whose FLOPs are nearest the slot's mean (first on ties)."""
    context = []
    for i, slot in enumerate(space.slots):
        values = [flops.blocks[(i, c)] for c in slot.choices]
        mean = sum(values) / len(values)
        context.append(min(slot.choices, key=lambda c: abs(flops.blocks[(i, c)] - mean)))
    return tuple(context)


def scorer_fingerprint(train: TrainSettings, scorer_kind: str, dataset: str, data_fingerprint: str) -> dict:
    settings = train.as_dict()
    settings.pop("threads")  # placement, not science: results do not depend on it
    return {"kind": scorer_kind, "dataset": dataset, "data": data_fingerprint, "settings": settings}


def plan_blocks(
    space: CnnSpace,
    space_definition: dict,
    context: tuple[str, ...],
    train: TrainSettings,
    scorer: dict,
    device: str,
) -> Plan:
    """Every block job of the space with its content hash, grouped into distinct network jobs."""
    scorer_hash = content_hash({"scorer": scorer, "context": list(context)})
    space_hash = content_hash(space_definition)
    blocks, networks = [], {}
    for i, slot in enumerate(space.slots):
        for j, choice in enumerate(slot.choices):
            choices = context[:i] + (choice,) + context[i + 1 :]
            network_hash = content_hash({"space": space_hash, "choices": list(choices), "scorer": scorer})
            job_hash = content_hash({"space": space_hash, "slot": i, "choice": choice, "scorer": scorer_hash})
            blocks.append(BlockJob(job_hash, i, slot.name, choice, j, slot.key(choice), network_hash))
            networks.setdefault(
                network_hash, NetworkJob(network_hash, space_definition, choices, train, device)
            )
    return Plan(context, scorer_hash, tuple(blocks), networks)


def pending_networks(plan: Plan, done_job_hashes: set[str]) -> dict[str, list[BlockJob]]:
    """Network jobs with at least one block not yet measured, each with the blocks it will record."""
    pending: dict[str, list[BlockJob]] = defaultdict(list)
    for block in plan.blocks:
        if block.job_hash not in done_job_hashes:
            pending[block.network_hash].append(block)
    return dict(pending)
