"""Search methods, one registry for ``blocknas run`` (``search=<name>``) and ``blocknas bench`` (``bench.method``).

A method is a ``SearchMethod``: its typed ``Settings`` (a frozen dataclass; its fields are the keys of
``conf/search/<name>.yaml`` beside ``method``) and ``search(problem, settings, seed)``, which spends the
problem's evaluations (``blocknas.orchestrator.search.problem``). ``blocks`` is the one method that does not
search whole networks: it measures the block table and solves it (MathNAS, with refine.* on top).

A method of your own is one function with a ``Settings`` attribute, registered here, named by an entry point
of ``blocknas.search_methods`` (``my_search = "my_pkg.search:greedy"``) or by its import path::

    @dataclass(frozen=True)
    class Settings:
        evaluations: int = 60

    def greedy(problem: NetworkProblem, settings: Settings, seed: int) -> None:
        ...  # problem.evaluate([...]) until problem.remaining == 0

    greedy.Settings = Settings
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from blocknas.orchestrator.search.layernas import LayerNasSettings, layernas
from blocknas.orchestrator.search.problem import NetworkProblem, Selection
from blocknas.workers.registry import Registry, RegistryError


def _positive(owner: str, **values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
            raise ValueError(f"{owner}.{name} must be an integer in 1..1000000, got {value!r}")


@dataclass(frozen=True)
class SearchMethod:
    name: str
    Settings: type  # a frozen dataclass with defaults for every field; ``evaluations`` where it searches
    search: Callable[[NetworkProblem, object, int], None] | None  # None: the block table (``blocks``)
    description: str = ""

    @property
    def whole_networks(self) -> bool:
        return self.search is not None

    def settings(self, values: dict | None, where: str = "search"):
        """This method's typed settings from ``values`` (unknown keys and bad values are ``ValueError``)."""
        from blocknas.workers.typed import from_mapping

        return from_mapping(self.Settings, values, where)


def _adapt(name: str, obj) -> SearchMethod:
    if isinstance(obj, SearchMethod):
        return obj
    settings = getattr(obj, "Settings", None)
    if not callable(obj) or settings is None:
        raise RegistryError(
            f"search method {name!r} must be a function search(problem, settings, seed) with a "
            "Settings dataclass as its attribute (see blocknas.orchestrator.search.methods)"
        )
    return SearchMethod(name, settings, obj, (obj.__doc__ or "").strip().split("\n")[0])


SEARCH_METHODS: Registry[SearchMethod] = Registry("search method", _adapt)


def _register(name: str, settings: type, description: str):
    def add(search):
        SEARCH_METHODS.register(name, SearchMethod(name, settings, search, description))
        return search

    return add


@dataclass(frozen=True)
class BlocksSettings:
    """``search=blocks``: no settings of its own (solver.*, refine.* and the estimator say what it does)."""


SEARCH_METHODS.register(
    "blocks",
    SearchMethod(
        "blocks", BlocksSettings, None, "MathNAS: measure the m*n blocks, predict every network, solve the exact front"
    ),
)


@dataclass(frozen=True)
class LayerNasMethodSettings:
    evaluations: int = 60  # networks evaluated in all (networks verified by earlier runs are read back)
    buckets: int = 4  # cost buckets per layer, between the start network's cost and the budget
    per_bucket: int = 1  # candidates kept per bucket

    def __post_init__(self) -> None:
        _positive("search", evaluations=self.evaluations, buckets=self.buckets, per_bucket=self.per_bucket)


@_register(
    "layernas",
    LayerNasMethodSettings,
    "LayerNAS (Fan et al. 2023): layer by layer over cost buckets of "
    "the first budget, from the cheapest allowed network",
)
def layernas_search(problem: NetworkProblem, settings: LayerNasMethodSettings, seed: int) -> None:
    metric = next(iter(problem.budgets))
    start = problem.start or problem.cheapest_allowed(metric)
    if start is None:
        from blocknas.solvers import InfeasibleBudgetError

        raise InfeasibleBudgetError(
            "search=layernas: no network fits the budgets near the cheapest one; relax a budget"
        )
    layernas(
        problem.sizes,
        lambda s: problem.cost(s)[metric],
        problem.allowed,
        problem.evaluate,
        problem.budgets[metric],
        problem.evaluations,
        start,
        LayerNasSettings(settings.buckets, settings.per_bucket),
    )


@dataclass(frozen=True)
class RandomSettings:
    evaluations: int = 60  # distinct allowed networks, drawn uniformly and evaluated as one batch
    draws_per_evaluation: int = 1000  # random proposals per evaluation before the search gives up

    def __post_init__(self) -> None:
        _positive("search", evaluations=self.evaluations, draws_per_evaluation=self.draws_per_evaluation)


def _draw(problem: NetworkProblem, rng: np.random.Generator) -> Selection:
    return tuple(int(rng.integers(n)) for n in problem.sizes)


def _distinct_allowed(problem: NetworkProblem, rng, count: int, draws: int, seen) -> list[Selection]:
    found: list[Selection] = []
    for _ in range(draws):
        if len(found) >= count:
            break
        s = _draw(problem, rng)
        if s not in seen and s not in found and problem.allowed(s):
            found.append(s)
    return found


@_register("random", RandomSettings, "random search: distinct allowed networks drawn uniformly")
def random_search(problem: NetworkProblem, settings: RandomSettings, seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = min(settings.evaluations, problem.remaining)
    problem.evaluate(_distinct_allowed(problem, rng, count, count * settings.draws_per_evaluation, problem.accuracy))


@dataclass(frozen=True)
class ReaSettings:
    evaluations: int = 60
    population: int = 10  # random networks first; the oldest member dies as each child is added
    sample: int = 3  # members drawn per step; the most accurate is mutated in one slot
    draws_per_evaluation: int = 1000

    def __post_init__(self) -> None:
        _positive(
            "search",
            evaluations=self.evaluations,
            population=self.population,
            sample=self.sample,
            draws_per_evaluation=self.draws_per_evaluation,
        )


@_register("rea", ReaSettings, "regularized evolution (Real et al. 2019) as the NAS-Bench-201 paper runs it")
def regularized_evolution(problem: NetworkProblem, settings: ReaSettings, seed: int) -> None:
    """Children not allowed or already evaluated are re-drawn without spending an evaluation."""
    rng = np.random.default_rng(seed)
    budget = min(settings.evaluations, problem.remaining)
    start = len(problem.accuracy)
    first = _distinct_allowed(
        problem, rng, min(settings.population, budget), budget * settings.draws_per_evaluation, problem.accuracy
    )
    alive = deque(problem.evaluate(first))
    for _ in range(budget * settings.draws_per_evaluation):
        if len(problem.accuracy) - start >= budget or not alive:
            break
        members = rng.choice(len(alive), size=min(settings.sample, len(alive)), replace=False)
        parent = max((alive[k] for k in members), key=problem.accuracy.__getitem__)
        slot = int(rng.integers(len(problem.sizes)))
        if problem.sizes[slot] < 2:
            continue
        options = [j for j in range(problem.sizes[slot]) if j != parent[slot]]
        child = parent[:slot] + (int(rng.choice(options)),) + parent[slot + 1 :]
        if child in problem.accuracy or not problem.allowed(child):
            continue
        if problem.evaluate([child]):
            alive.append(child)
            alive.popleft()


@dataclass(frozen=True)
class TpeSettings:
    evaluations: int = 60
    proposals_per_evaluation: int = 50  # TPE proposals per evaluation before the search gives up

    def __post_init__(self) -> None:
        _positive("search", evaluations=self.evaluations, proposals_per_evaluation=self.proposals_per_evaluation)


@_register("tpe", TpeSettings, "Optuna's multivariate TPE, infeasible proposals told as constraint violations")
def tpe_search(problem: NetworkProblem, settings: TpeSettings, seed: int) -> None:
    """A proposal that is not allowed is told to TPE as infeasible and costs no evaluation; one evaluated
    before is told its known value and costs none either. Needs Optuna (``pip install 'blocknas[tpe]'``)."""
    try:
        import optuna
    except ImportError as exc:
        raise ImportError("search method tpe needs Optuna: pip install 'blocknas[tpe]'") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # multivariate
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    budget = min(settings.evaluations, problem.remaining)
    start = len(problem.accuracy)
    for _ in range(budget * settings.proposals_per_evaluation):
        if len(problem.accuracy) - start >= budget:
            break
        trial = study.ask()
        s = tuple(trial.suggest_categorical(f"s{i}", list(range(n))) for i, n in enumerate(problem.sizes))
        feasible = problem.allowed(s)
        trial.set_constraint("allowed", 0.0 if feasible else 1.0)
        value = problem.evaluate([s]).get(s) if feasible else None
        study.tell(trial, 0.0 if value is None else float(value))
