"""Plan the network evaluations of a search: which networks to train, and which are already measured.

The estimator (``scorer.estimator``, see ``blocknas.orchestrator.estimation``) picks the context
networks; block ``j`` at slot ``i`` is measured by evaluating each context with ``b_ij`` swapped in. Jobs that evaluate
the same network (a context itself, or overlapping swaps of two contexts) share one network job: one
context measures all ``m*n`` blocks with ``m*(n-1) + 1`` trainings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from blocknas.orchestrator.estimation import EstimatorSettings, choose_contexts
from blocknas.orchestrator.hashing import content_hash
from blocknas.workers.costs import CostTable
from blocknas.workers.records import NetworkJob
from blocknas.workers.spaces import Space


@dataclass(frozen=True)
class BlockJob:
    """One row of the performance table: block ``choice`` at slot ``slot_index`` in context ``context_index``."""

    job_hash: str
    slot_index: int
    slot: str
    choice: str
    choice_index: int
    block_key: str
    network_hash: str
    context_index: int = 0


@dataclass(frozen=True)
class Plan:
    contexts: tuple[tuple[str, ...], ...]
    scorer_hash: str
    blocks: tuple[BlockJob, ...]
    networks: dict[str, NetworkJob]  # network_hash -> job
    scorer: dict | None = None  # scorer_fingerprint: what a whole network's result depends on
    spec: JobSpec | None = None  # how its network jobs are built (verification builds more of them)

    def blocks_of(self, network_hash: str) -> list[BlockJob]:
        return [b for b in self.blocks if b.network_hash == network_hash]


def choose_space_contexts(space: Space, estimator: EstimatorSettings, flops: CostTable) -> tuple[tuple[str, ...], ...]:
    """The estimator's context networks for ``space``, as block names (sampled ones satisfy its rules)."""
    choices = [slot.choices for slot in space.slots]
    per_slot_flops = tuple(np.array([flops.blocks[(i, c)] for c in names]) for i, names in enumerate(choices))
    base = tuple(names.index(b) for names, b in zip(choices, space.base, strict=True))

    def names(selection: tuple[int, ...]) -> tuple[str, ...]:
        return tuple(choices[i][j] for i, j in enumerate(selection))

    def is_valid(selection: tuple[int, ...]) -> bool:
        return space.is_network(names(selection))

    contexts = choose_contexts(estimator, [len(c) for c in choices], base, per_slot_flops, is_valid)
    return tuple(names(c) for c in contexts)


def scorer_fingerprint(scorer_kind: str, dataset: str, data_fingerprint: str, settings: dict) -> dict:
    """What a network's result depends on: the scorer, its settings, and the data's content."""
    return {"kind": scorer_kind, "dataset": dataset, "data": data_fingerprint, "settings": dict(settings)}


@dataclass(frozen=True)
class JobSpec:
    """What every network job of a search shares: the scorer (and its typed settings), the data, placement."""

    scorer: dict  # scorer_fingerprint
    settings: object  # the scorer's typed settings
    data: dict | None = None  # the data config of a training scorer
    device: str = "cpu"
    threads: int = 1


def network_job(space_definition: dict, choices: tuple[str, ...], spec: JobSpec) -> NetworkJob:
    """The job that scores one whole network; its hash depends on the space, the choices and the scorer."""
    network_hash = content_hash(
        {"space": content_hash(space_definition), "choices": list(choices), "scorer": spec.scorer}
    )
    return NetworkJob(
        network_hash,
        space_definition,
        choices,
        spec.settings,
        spec.device,
        spec.scorer["kind"],
        spec.data or {},
        spec.threads,
        tuple(spec.scorer.get("objective", ("accuracy", "maximize"))),
    )


def plan_blocks(space: Space, space_definition: dict, contexts: tuple[tuple[str, ...], ...], spec: JobSpec) -> Plan:
    """Every block job of every context with its content hash, grouped into distinct network jobs."""
    scorer_hash = content_hash({"scorer": spec.scorer, "contexts": [list(c) for c in contexts]})
    space_hash = content_hash(space_definition)
    blocks, networks = [], {}
    for k, context in enumerate(contexts):
        for i, slot in enumerate(space.slots):
            for j, choice in enumerate(slot.choices):
                choices = context[:i] + (choice,) + context[i + 1 :]
                job = network_job(space_definition, choices, spec)
                job_hash = content_hash(
                    {"space": space_hash, "slot": i, "choice": choice, "scorer": scorer_hash, "context": k}
                )
                blocks.append(BlockJob(job_hash, i, slot.name, choice, j, slot.key(choice), job.network_hash, k))
                networks.setdefault(job.network_hash, job)
    return Plan(contexts, scorer_hash, tuple(blocks), networks, spec.scorer, spec)


def pending_networks(plan: Plan, done_job_hashes: set[str]) -> dict[str, list[BlockJob]]:
    """Network jobs with at least one block not yet measured, each with the blocks it will record."""
    pending: dict[str, list[BlockJob]] = defaultdict(list)
    for block in plan.blocks:
        if block.job_hash not in done_job_hashes:
            pending[block.network_hash].append(block)
    return dict(pending)
