"""``blocknas run search.method=layernas``: LayerNAS over whole networks on the cluster, no block table.

The search (``orchestrator.pipeline.layernas``) buckets by the first budget of ``solver.budgets``; a network
is allowed when it is connected (NAS-Bench-201) and every budget fits it, costs being exact without
training: analytic and measured targets add up their per-block costs, ``network_table`` targets are read
from their file. Each layer's new children are verified at once as parallel Ray tasks (``verify_stage``:
a ``network_results`` row and a nested MLflow run each, ``source=layernas``, the layer in
``refine_round``). Networks verified before with the same scorer are read back and never evaluated
again, and count against ``search.evaluations``.
"""

from __future__ import annotations

import itertools

from orchestrator.config import RunSettings
from orchestrator.distributed.tasks import TaskContext
from orchestrator.pipeline.cost_stage import TargetCosts
from orchestrator.pipeline.layernas import LayerNasSettings, layernas
from orchestrator.pipeline.planning import Plan
from orchestrator.pipeline.refine import Candidate
from orchestrator.pipeline.target_kinds import TARGET_KINDS
from orchestrator.pipeline.verify_stage import verify_networks
from orchestrator.storage import PerformanceStore
from solvers import InfeasibleBudgetError
from workers.tabular import read_network_table

Selection = tuple[int, ...]


class NoStartNetworkError(InfeasibleBudgetError):
    """No network fits the budgets, so LayerNAS has nowhere to start (exit 2, as any infeasible budget)."""


def network_costs(settings: RunSettings, costs: dict[str, TargetCosts]):
    """``(choices) -> {target: cost}``, exact for every target: block sums, or the target's own file."""
    files = {name: read_network_table(tc.target.file, tc.target.column, tc.target.key_column)
             for name, tc in costs.items() if TARGET_KINDS.get(tc.target.kind).per_network}

    def of(choices: tuple[str, ...]) -> dict[str, float]:
        key = settings.space.network_key(choices)
        out = {}
        for name, tc in costs.items():
            if name in files:
                if key not in files[name]:
                    raise KeyError(f"network {key!r} is not in the file of target {name!r}; per-network "
                                   "targets must cover every network the search may visit")
                out[name] = float(files[name][key])
            else:
                out[name] = tc.table.total(choices)
        return out

    return of


def run_layernas(settings: RunSettings, store: PerformanceStore, plan: Plan, costs: dict[str, TargetCosts],
                 ctx: TaskContext) -> dict:
    """The search, its pick and what it spent (``summary.json``'s ``search``)."""
    space, budgets = settings.space, settings.solver.budgets
    metric = next(iter(budgets))
    sizes = [len(slot.choices) for slot in space.slots]
    cost_of = network_costs(settings, costs)

    def names(selection: Selection) -> tuple[str, ...]:
        return tuple(slot.choices[j] for slot, j in zip(space.slots, selection, strict=True))

    known: dict[Selection, dict[str, float]] = {}

    def cost(selection: Selection) -> dict[str, float]:
        if selection not in known:
            known[selection] = cost_of(names(selection))
        return known[selection]

    connected = getattr(space, "is_connected", lambda choices: True)  # NAS-Bench-201: a cut cell is no network

    def allowed(selection: Selection) -> bool:
        return connected(names(selection)) and all(cost(selection)[n] <= limit for n, limit in budgets.items())

    stored = {tuple(space.slots[i].choices.index(c) for i, c in enumerate(r.choices)): r.accuracy
              for r in store.network_results(ctx.scorer_hash)}
    layer = itertools.count()
    verified: dict[Selection, float] = {}

    def evaluate(batch: list[Selection]) -> dict[Selection, float]:
        round_index = next(layer)
        fresh = [s for s in batch if s not in stored]
        candidates = [Candidate(s, 0, "layernas", None, cost(s), round_index) for s in fresh]
        results = verify_networks(settings, plan, ctx, candidates, lambda s: cost(s), names)
        verified.update(results)
        print(f"layernas step {round_index}: {len(fresh)} networks verified, {len(batch) - len(fresh)} read back, "
              f"best so far {max([*stored.values(), *verified.values()], default=float('nan')):.3f}", flush=True)
        return {s: stored[s] if s in stored else results[s] for s in batch if s in stored or s in results}

    # The cheapest network within every budget, found slot by slot (costs add up, or are read per network)
    start = _cheapest_allowed(sizes, cost, allowed, metric)
    result = layernas(sizes, lambda s: cost(s)[metric], allowed, evaluate, budgets[metric],
                      settings.search.evaluations, start,
                      LayerNasSettings(settings.search.buckets, settings.search.per_bucket))
    pick = result.pick
    return {
        "method": "layernas", "bucketed": metric, "budgets": budgets,
        "evaluations": len(result.accuracy), "verified_now": len(verified),
        "read_back": len(result.accuracy) - len(verified), "sweeps": result.sweeps,
        "settings": {"evaluations": settings.search.evaluations, "buckets": settings.search.buckets,
                     "per_bucket": settings.search.per_bucket},
        "pick": None if pick is None else {
            "blocks": [slot.key(c) for slot, c in zip(space.slots, names(pick), strict=True)],
            "verified_accuracy": result.accuracy[pick], "costs": cost(pick)},
    }


def _cheapest_allowed(sizes, cost, allowed, metric: str) -> Selection:
    """The network of least ``metric`` cost that every budget allows: coordinate descent from each slot's
    cheapest block, then, where that is not allowed, the cheapest allowed network among its neighbours."""
    start = tuple(min(range(n), key=lambda j, i=i: cost(_with(sizes, i, j))[metric]) for i, n in enumerate(sizes))
    if allowed(start):
        return start
    neighbours = [start[:i] + (j,) + start[i + 1:] for i, n in enumerate(sizes) for j in range(n)]
    fitting = [s for s in neighbours if allowed(s)]
    if not fitting:
        raise NoStartNetworkError("search.method=layernas: no network fits solver.budgets near the cheapest one "
                                  f"({', '.join(f'{k}={v:g}' for k, v in cost(start).items())}); relax a budget")
    return min(fitting, key=lambda s: cost(s)[metric])


def _with(sizes, slot: int, choice: int) -> Selection:
    """Slot ``slot`` at ``choice``, every other slot at its first block: the per-slot cost comparison."""
    return tuple(choice if i == slot else 0 for i in range(len(sizes)))
