"""The read side of an experiment: its plan, and its block table, prediction and targets' costs as the store
holds them, read without Ray, training, measuring or writing. ``blocknas run`` and ``solve`` (the jobs, in
``jobs.run``), ``fronts``, ``pick``, ``export-*`` and the dashboard all read an experiment through here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from blocknas.orchestrator.answers import mark_extrapolations
from blocknas.orchestrator.code_fingerprint import user_code
from blocknas.orchestrator.front_service import FrontKey, SolvedFront, point_json
from blocknas.orchestrator.hashing import content_hash
from blocknas.orchestrator.pipeline.cost_stage import TargetCosts, load_costs
from blocknas.orchestrator.pipeline.report import measured_checks
from blocknas.orchestrator.pipeline.solve_stage import build_block_table, front_key, measured_networks, solve_fronts
from blocknas.orchestrator.planning import (
    JobSpec,
    Plan,
    choose_space_contexts,
    plan_blocks,
    scorer_fingerprint,
)
from blocknas.orchestrator.predictors import Prediction, fit_prediction
from blocknas.orchestrator.run_context import RunContext
from blocknas.orchestrator.settings import RunSettings, ScorerSettings
from blocknas.orchestrator.storage import PerformanceStore
from blocknas.solvers import BlockTable
from blocknas.workers.costs import analytic_costs
from blocknas.workers.tabular import nb201_accuracies


def data_fingerprint(scorer: ScorerSettings) -> tuple[str, str]:
    """(dataset name, content hash of the scorer's data): a changed data set never reuses old block results.

    For training scorers the data was loaded and checked against the space by ``load_settings``.
    """
    if not scorer.trains:
        from blocknas.workers.scoring import SCORERS

        entry = SCORERS.get(scorer.kind)
        if entry.fingerprint is not None:
            return entry.fingerprint(scorer.settings)
        dataset = getattr(scorer.settings, "dataset", scorer.kind)
        return dataset, content_hash({k: round(v, 6) for k, v in sorted(nb201_accuracies(dataset).items())})
    from blocknas.workers.data import load_dataset

    return scorer.data["kind"], load_dataset(scorer.data).fingerprint()


def make_plan(settings: RunSettings) -> Plan:
    """The block measurements and context networks of the experiment (no store read, nothing measured)."""
    contexts = choose_space_contexts(settings.space, settings.scorer.estimator, analytic_costs(settings.space, "flops"))
    dataset, fingerprint = data_fingerprint(settings.scorer)
    scorer = scorer_fingerprint(settings.scorer.kind, dataset, fingerprint, settings.scorer.settings_dict())
    if (settings.scorer.objective, settings.scorer.direction) != ("accuracy", "maximize"):
        scorer["objective"] = [settings.scorer.objective, settings.scorer.direction]  # default: hashes as before
    if code := user_code(settings):  # the user's space factory, loader and scorer: their code, not only settings
        scorer["code"] = code
    spec = JobSpec(scorer, settings.scorer.settings, settings.scorer.data, settings.scorer.device, settings.threads)
    return plan_blocks(settings.space, settings.space_definition, contexts, spec)


def open_run(settings: RunSettings, store: PerformanceStore | None = None) -> RunContext:
    """The context every stage of a job on this experiment reads: its settings, its store (the one at
    ``storage_url`` unless given) and its plan."""
    return RunContext(settings, store or PerformanceStore(settings.storage_url), make_plan(settings))


def measured_table(run: RunContext, costs: dict[str, TargetCosts]) -> tuple[dict, BlockTable]:
    """(every measured network's accuracy, the block table built from them and ``costs``)."""
    plan, space = run.plan, run.settings.space
    measured = measured_networks(space, plan, run.store.block_scores([b.job_hash for b in plan.blocks]))
    return measured, build_block_table(space, plan, measured, costs)


@dataclass(frozen=True)
class StoredExperiment:
    """An experiment as the store holds it, read without Ray, training, measuring or writing: its plan, block
    table, predictor and every target's costs (``read_experiment``)."""

    run: RunContext
    measured: dict[tuple[int, ...], float]
    table: BlockTable
    prediction: Prediction
    costs: dict[str, TargetCosts]

    @property
    def settings(self) -> RunSettings:
        return self.run.settings

    @property
    def plan(self) -> Plan:
        return self.run.plan

    def front_key(self, target: str) -> FrontKey:
        return front_key(self.settings, self.prediction.key(), self.costs, target)

    @cached_property
    def measured_ranges(self) -> dict[str, tuple[float, float]]:
        """The range of what was measured: accuracy, and each per-network target's values (``summary.json``'s
        ``measured_range``)."""
        return measured_checks(self.settings.space, self.plan, self.measured, self.costs)[0]

    def marked(self, points: list[dict]) -> list[dict]:
        """Points as ``summary.json`` holds them: ``outside_measured`` where a prediction extrapolates."""
        return [mark_extrapolations(p, self.measured_ranges) for p in points]

    def solved(self, target: str) -> list[dict]:
        """``target``'s front solved now, not stored: what ``blocknas fronts show TARGET`` would store."""
        return self.marked(
            [
                point_json(self.table.slots, p)
                for p in self.prediction.front(target, self.settings.solver.budgets, self.settings.solver.max_points)
            ]
        )

    def best(self, target: str, budget: float) -> dict:
        """What ``blocknas solve solver.budgets.TARGET=budget`` reports as ``best``, with the config's other
        budgets; ``InfeasibleBudgetError`` names the smallest feasible cost when nothing fits."""
        point = self.prediction.best({**self.settings.solver.budgets, target: budget})
        return self.marked([point_json(self.table.slots, point)])[0]


def read_experiment(settings: RunSettings, store: PerformanceStore | None = None) -> StoredExperiment:
    """The experiment's table as the store holds it; blocks or costs not stored yet are an error that says
    to run first (``MissingScoresError``, ``MissingCostsError``)."""
    run = open_run(settings, store)
    costs = load_costs(run)
    measured, table = measured_table(run, costs)
    prediction = fit_prediction(settings.solver.predictor, settings.space, table, measured)
    return StoredExperiment(run, measured, table, prediction, costs)


def experiment_table(settings: RunSettings) -> BlockTable:
    """The experiment's block table as the store holds it (block values and every target's costs), without
    Ray, training or measuring (nor the predictor); costs not stored yet are an error that says to run first."""
    run = open_run(settings)
    return measured_table(run, load_costs(run))[1]


def run_target_front(settings: RunSettings, target: str) -> tuple[SolvedFront, FrontKey, dict]:
    """The front of one of the run's own targets (``blocknas fronts show TARGET`` for a target of the
    experiment's config): the one ``blocknas run`` or ``solve`` stored for the same inputs, or solved now
    from the stored table and costs, and stored (no Ray, no training, no measuring); with its key and the
    measured ranges its points are marked by."""
    found = read_experiment(settings)
    result = solve_fronts(found.run, found.table, found.prediction, found.costs, only=(target,))
    front = result.stored[target]  # marked as the run's summary marks it
    solved = SolvedFront(replace(front, points=found.marked(front.points)), target not in result.reused)
    return solved, found.front_key(target), found.measured_ranges
