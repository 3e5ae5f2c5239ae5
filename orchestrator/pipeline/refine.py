"""The verify-and-refit loop: the solver proposes, whole networks are verified, the predictor learns.

Each round, for every budget point (a set of budgets, one per hardware target it constrains):

1. refit the accuracy surrogate (block table plus pairwise interactions, ``blocknas.solvers.surrogate``) on every
   network verified so far, and each verified cost metric's surrogate on every network measured so far;
2. propose ``k - 1`` networks from the exact MIP pool under the predicted budgets, plus the best
   predicted network within ``radius`` slots of the point's incumbent (local branching): the global pool
   exploits what the model learned, the trust region exploits what was verified;
3. measure the costs that need verifying (``verify_costs``: per-network latency, cheap next to training)
   and drop candidates over the budget, so no evaluation is spent on a network that cannot be picked;
4. evaluate the rest (``evaluate``: training, or a counted lookup) as one parallel batch.

A network already verified, or already measured over this point's budget, is never proposed again.
The pick for a point is the most accurate *verified* network whose verified costs fit its budgets: it is
never over a budget on a verified metric, and its accuracy is measured, not predicted. The loop stops
after ``rounds`` rounds, at ``max_evaluations`` network evaluations in total (those of the block table
included), or after ``patience`` rounds in which no point's pick improved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from blocknas.orchestrator.settings import RefineSettings
from blocknas.solvers import BlockTable
from blocknas.solvers.formulations.surrogate_mip import surrogate_pool
from blocknas.solvers.surrogate import Selection, SurrogateModel, fit_surrogate, interaction_pairs


@dataclass
class Verified:
    """What is known about whole networks: measured accuracy and measured costs."""

    accuracy: dict[Selection, float] = field(default_factory=dict)
    costs: dict[Selection, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    selection: Selection
    budget_point: int
    source: str  # "pool" or "trust_region"
    predicted_accuracy: float | None  # None: verified without a prediction (search.method=layernas)
    predicted_costs: dict[str, float]
    round: int


@dataclass(frozen=True)
class PointResult:
    budgets: dict[str, float]
    pick: Selection | None  # None: no verified network fits the budgets
    accuracy: float | None
    costs: dict[str, float]


@dataclass(frozen=True)
class RefineResult:
    points: list[PointResult]
    rounds: int
    evaluations: int  # network evaluations made by the loop
    cost_measurements: int  # networks whose costs the loop measured
    candidates: list[Candidate]
    rejected: list[Candidate]  # measured over their budget, not evaluated
    stopped: str
    accuracy_model: SurrogateModel


Evaluate = Callable[[list[Candidate]], dict[Selection, float]]
MeasureCosts = Callable[[list[Candidate]], dict[Selection, dict[str, float]]]


def _costs_of(selection: Selection, verified: Verified, models: dict[str, SurrogateModel]) -> dict[str, float]:
    measured = verified.costs.get(selection, {})
    return {name: measured.get(name, model.predict(selection)) for name, model in models.items()}


def _fits(costs: dict[str, float], budgets: dict[str, float]) -> bool:
    return all(costs[name] <= limit + 1e-12 for name, limit in budgets.items())


def best_verified(
    verified: Verified, budgets: dict[str, float], cost_models: dict[str, SurrogateModel]
) -> Selection | None:
    """The most accurate verified network within ``budgets`` (measured costs where known, else exact ones)."""
    fitting = [s for s in verified.accuracy if _fits(_costs_of(s, verified, cost_models), budgets)]
    return max(fitting, key=lambda s: (verified.accuracy[s], s), default=None)


def refine(
    settings: RefineSettings,
    table: BlockTable,
    accuracy_prior: SurrogateModel,
    cost_priors: dict[str, SurrogateModel],
    verify_costs: set[str],
    budget_points: list[dict[str, float]],
    verified: Verified,
    evaluations_so_far: int,
    evaluate: Evaluate,
    measure_costs: MeasureCosts,
    on_round: Callable[[int, list[PointResult]], None] | None = None,
    first_round: int = 1,
) -> RefineResult:
    """Run the loop (module docstring); ``verified`` is updated in place with everything measured.

    ``cost_priors`` predicts every budgeted metric; those in ``verify_costs`` are measured per network by
    ``measure_costs`` and refit, the others are taken as exact (analytic FLOPs, params). ``first_round``
    resumes a loop whose earlier rounds are already in ``verified`` (``rounds`` counts them too).
    """
    pairs = interaction_pairs(len(table.slots), settings.interactions)
    points = budget_points or [{}]
    models = dict(cost_priors)
    accuracy_model = accuracy_prior
    candidates_all: list[Candidate] = []
    rejected_all: list[Candidate] = []
    evaluations = measurements = 0
    stale, stopped, rounds = 0, "rounds", 0

    def picks() -> list[PointResult]:
        out = []
        for budgets in points:
            pick = best_verified(verified, budgets, models)
            out.append(
                PointResult(
                    budgets,
                    pick,
                    verified.accuracy.get(pick) if pick else None,
                    _costs_of(pick, verified, models) if pick else {},
                )
            )
        return out

    best_so_far = [p.accuracy for p in picks()]
    for round_index in range(first_round, settings.rounds + 1):
        left = settings.max_evaluations - evaluations_so_far - evaluations
        if left <= 0:
            stopped = "max_evaluations"
            break
        rounds += 1
        accuracy_model = fit_surrogate(accuracy_prior, list(verified.accuracy), list(verified.accuracy.values()), pairs)
        for name in verify_costs:
            seen = [s for s in verified.costs if name in verified.costs[s]]
            models[name] = fit_surrogate(cost_priors[name], seen, [verified.costs[s][name] for s in seen], pairs)
        proposed = _propose(settings, table, accuracy_model, models, points, verified, round_index)
        if not proposed:
            stopped = "exhausted"
            break
        candidates_all += proposed
        to_measure = [c for c in proposed if verify_costs & set(points[c.budget_point])]
        if to_measure:
            measured = measure_costs(to_measure)
            measurements += len(measured)
            for selection, costs in measured.items():
                verified.costs.setdefault(selection, {}).update(costs)
        accepted = []
        for c in proposed:
            if _fits(_costs_of(c.selection, verified, models), points[c.budget_point]):
                accepted.append(c)
            else:
                rejected_all.append(c)
        accepted = accepted[:left]
        if accepted:
            results = evaluate(accepted)
            evaluations += len(results)
            verified.accuracy.update(results)
        now = picks()
        if on_round:
            on_round(round_index, now)
        improved = any(
            p.accuracy is not None and (b is None or p.accuracy > b) for p, b in zip(now, best_so_far, strict=True)
        )
        best_so_far = [p.accuracy for p in now]
        stale = 0 if improved else stale + 1
        if stale >= settings.patience:
            stopped = "patience"
            break
    else:
        if settings.max_evaluations - evaluations_so_far - evaluations <= 0:
            stopped = "max_evaluations"
    return RefineResult(
        picks(), rounds, evaluations, measurements, candidates_all, rejected_all, stopped, accuracy_model
    )


def _propose(
    settings: RefineSettings,
    table: BlockTable,
    accuracy: SurrogateModel,
    costs: dict[str, SurrogateModel],
    points: list[dict[str, float]],
    verified: Verified,
    round_index: int,
) -> list[Candidate]:
    chosen: dict[Selection, Candidate] = {}
    for p, budgets in enumerate(points):
        over = [
            s
            for s, measured in verified.costs.items()
            if any(name in measured and measured[name] > limit for name, limit in budgets.items())
        ]
        exclude = list({*verified.accuracy, *over, *chosen})
        point_costs = {name: costs[name] for name in budgets}

        def add(selections: list[Selection], source: str, point: int = p) -> None:
            for s in selections:
                chosen[s] = Candidate(
                    s, point, source, accuracy.predict(s), {n: m.predict(s) for n, m in costs.items()}, round_index
                )

        incumbent = best_verified(verified, budgets, costs)
        global_size = settings.k - 1 if incumbent is not None else settings.k
        if global_size:
            add(surrogate_pool(table, accuracy, global_size, point_costs, budgets, exclude), "pool")
        if incumbent is not None:
            exclude = list({*exclude, *chosen})
            add(
                surrogate_pool(table, accuracy, 1, point_costs, budgets, exclude, incumbent, settings.radius),
                "trust_region",
            )
    return list(chosen.values())
