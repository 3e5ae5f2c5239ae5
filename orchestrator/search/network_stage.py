"""``blocknas run search=<method>`` for a whole-network method: networks verified on the cluster, no block table.

A network is allowed when it is a real network (NAS-Bench-201: connected) and every budget of
``solver.budgets`` fits it, costs being exact without training: analytic and measured targets add up their
per-block costs, ``network_table`` targets are read from their file. Each batch the method asks for is
verified at once as parallel Ray tasks (``verify_stage``: a ``network_results`` row and a nested MLflow run
each, ``source`` the method's name, the batch's index in ``refine_round``). Networks verified before with the
same scorer are read back, never evaluated again, and count against the method's ``evaluations``.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict

from blocknas.orchestrator.distributed.tasks import TaskContext
from blocknas.orchestrator.pipeline.cost_stage import TargetCosts
from blocknas.orchestrator.pipeline.refine import Candidate
from blocknas.orchestrator.pipeline.verify_stage import verify_networks
from blocknas.orchestrator.run_context import RunContext
from blocknas.orchestrator.search.methods import SEARCH_METHODS
from blocknas.orchestrator.search.problem import NetworkProblem, Selection
from blocknas.orchestrator.targets.kinds import TARGET_KINDS
from blocknas.workers.spaces import Space
from blocknas.workers.tabular import read_network_table


def network_costs(space: Space, costs: dict[str, TargetCosts]):
    """``(choices) -> {target: cost}``, exact for every target: block sums, or the target's own file."""
    files = {
        name: read_network_table(tc.target.file, tc.target.column, tc.target.key_column)
        for name, tc in costs.items()
        if TARGET_KINDS.get(tc.target.kind).per_network
    }

    def of(choices: tuple[str, ...]) -> dict[str, float]:
        key = space.network_key(choices)
        out = {}
        for name, tc in costs.items():
            if name in files:
                if key not in files[name]:
                    raise KeyError(
                        f"network {key!r} is not in the file of target {name!r}; per-network "
                        "targets must cover every network the search may visit"
                    )
                out[name] = float(files[name][key])
            else:
                out[name] = tc.table.total(choices)
        return out

    return of


def run_network_search(run: RunContext, costs: dict[str, TargetCosts], ctx: TaskContext) -> dict:
    """The search, its pick and what it spent (``summary.json``'s ``search``)."""
    settings = run.settings
    method = SEARCH_METHODS.get(settings.search.method)
    space, budgets = settings.space, settings.solver.budgets
    cost_of = network_costs(settings.space, costs)

    def names(selection: Selection) -> tuple[str, ...]:
        return tuple(slot.choices[j] for slot, j in zip(space.slots, selection, strict=True))

    known: dict[Selection, dict[str, float]] = {}

    def cost(selection: Selection) -> dict[str, float]:
        if selection not in known:
            known[selection] = cost_of(names(selection))
        return known[selection]

    def allowed(selection: Selection) -> bool:
        return space.is_network(names(selection)) and all(cost(selection)[n] <= v for n, v in budgets.items())

    stored = {
        tuple(space.slots[i].choices.index(c) for i, c in enumerate(r.choices)): r.accuracy
        for r in run.store.network_results(ctx.scorer_hash)
    }
    batches = itertools.count()
    verified: dict[Selection, float] = {}

    def measure(batch: list[Selection]) -> dict[Selection, float]:
        index = next(batches)
        candidates = [Candidate(s, 0, method.name, None, cost(s), index) for s in batch]
        results = verify_networks(run, ctx, candidates, cost, names)
        verified.update(results)
        print(
            f"{method.name} batch {index}: {len(batch)} networks verified, best so far "
            f"{max([*problem.accuracy.values(), *results.values()], default=float('nan')):.3f}",
            flush=True,
        )
        return results

    sizes = tuple(len(slot.choices) for slot in space.slots)
    problem = NetworkProblem(
        sizes, cost, allowed, measure, dict(budgets), settings.search.settings.evaluations, known=stored
    )
    method.search(problem, settings.search.settings, settings.search.seed)
    pick = problem.pick
    return {
        "method": method.name,
        "budgets": budgets,
        "evaluations": len(problem.accuracy),
        "verified_now": len(verified),
        "read_back": len(problem.accuracy) - len(verified),
        "settings": asdict(settings.search.settings),
        "pick": None
        if pick is None
        else {
            "blocks": [slot.key(c) for slot, c in zip(space.slots, names(pick), strict=True)],
            "verified_accuracy": problem.accuracy[pick],
            "costs": cost(pick),
        },
    }
