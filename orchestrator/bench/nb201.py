"""``blocknas bench nb201``: a MathNAS variant measured against NAS-Bench-201 ground truth on one device.

The accuracy of a network is a counted lookup (``CountingOracle``), the cost a method pays exactly as
training would be. Block values come from the estimator, latency block costs by substitution over the
same context networks, the solver picks the best predicted network under latency budgets at quantiles of
the device's true latencies, and each pick is scored against the truth:

- ``regret``: best true accuracy among cells whose true latency fits the budget, minus the pick's;
- ``random_regret`` / ``rea_regret`` / ``tpe_regret``: the same for random search, regularized evolution
  and Optuna's TPE (``bench.peers``) with as many evaluations, averaged over ``seeds`` runs (``tpe_seeds``
  for TPE, a sampler that costs far more per proposal; ``blocknas.orchestrator.search.methods``, the same
  methods ``blocknas run search=<name>`` runs). All only
  evaluate connected cells whose true latency fits the budget (latency measurements are the target's
  data, as they are for the method), and keep the most accurate one they evaluated.

``bench.method`` picks what is measured: ``oneshot`` (the block table and one solve, MathNAS), ``loop``
(the verify-and-refit loop of ``blocknas.orchestrator.pipeline.refine`` on top of it, one loop per budget, each counting
the block table's evaluations), ``random``, ``rea`` or ``tpe`` (the peers themselves, with
``bench.evaluations`` evaluations; their ``regret`` is the mean over ``seeds`` runs, their pick the first
run's).
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path

import numpy as np
from scipy import stats

from blocknas.orchestrator.estimation import (
    EstimatorSettings,
    block_values,
    choose_contexts,
    swap_networks,
)
from blocknas.orchestrator.output_files import write_atomically
from blocknas.orchestrator.pipeline.refine import RefineSettings, Verified, refine
from blocknas.orchestrator.predictors import PREDICTORS, Prediction, fit_prediction
from blocknas.orchestrator.search.layernas import LayerNasSettings
from blocknas.orchestrator.search.methods import SEARCH_METHODS, SearchMethod
from blocknas.orchestrator.search.problem import NetworkProblem
from blocknas.solvers import BlockTable, InfeasibleBudgetError
from blocknas.solvers.structure import ConnectivityRule
from blocknas.solvers.surrogate import SurrogateModel
from blocknas.workers.costs import analytic_costs
from blocknas.workers.proxies import PROXIES
from blocknas.workers.registry import RegistryError, import_object, looks_like_import_path
from blocknas.workers.spaces.nb201 import EDGES, OPS, Nb201Space
from blocknas.workers.tabular import NB201_FILES, CountingOracle, nb201_accuracies, read_network_table

LATENCY = "latency_ms"
NB201_CONNECTIVITY = ConnectivityRule(*Nb201Space.connectivity)
PEERS = ("random", "rea", "tpe", "layernas")  # what a user would run instead, with the same evaluations
DEFAULT_LAYERNAS = LayerNasSettings()
# TPE's cost per proposal grows with the trials it was told: at 60 evaluations a run takes ~0.3 s, at 800
# minutes. As a peer it is left out (tpe_regret null) of rows with more evaluations than this.
TPE_PEER_MAX_EVALUATIONS = 200


class BenchConfigError(ValueError):
    """A ``bench.*`` setting is missing or invalid; the message names it."""


@dataclass(frozen=True)
class BenchSettings:
    dataset: str
    hardware: str
    latency_csv: Path
    estimator: EstimatorSettings
    predictor: str
    seeds: int
    quantiles: tuple[float, ...]
    base: str
    output_dir: Path
    method: str = "oneshot"
    evaluations: int = 60  # random and rea: evaluations per budget
    refine: RefineSettings = RefineSettings()
    rea_population: int = 10
    rea_sample: int = 3
    peers: tuple[str, ...] = PEERS  # compared in every row, at the method's evaluations
    tpe_seeds: int = 10
    prior: str = "proxy_synflow"  # loop: a training-free proxy's block table, or the trained one ("trained")
    calibration: int = 5  # loop with a proxy prior: networks verified first to put the proxy in accuracy units
    layernas: LayerNasSettings = DEFAULT_LAYERNAS

    @property
    def peer_settings(self) -> PeerSettings:
        return PeerSettings(self.peers, self.seeds, self.tpe_seeds, self.rea_population, self.rea_sample, self.layernas)

    @classmethod
    def from_dict(cls, cfg: dict, output_dir: Path) -> BenchSettings:
        if cfg.get("dataset") not in NB201_FILES:
            raise BenchConfigError(f"bench.dataset must be one of {sorted(NB201_FILES)}, got {cfg.get('dataset')!r}")
        if not cfg.get("latency_csv"):
            raise BenchConfigError(
                "bench.latency_csv is not set: give the path of the NAS-Bench-201 latency CSV (columns code, "
                "arch and one per device), e.g. bench.latency_csv=../shared/data/nb201_latency_ms.csv, or set "
                "BLOCKNAS_NB201_LATENCY_CSV"
            )
        try:
            PREDICTORS.get(cfg.get("predictor"), "bench.predictor")
        except RegistryError as exc:
            raise BenchConfigError(str(exc)) from exc
        quantiles = tuple(float(q) for q in cfg.get("quantiles") or ())
        if not quantiles or any(not 0 < q < 1 for q in quantiles):
            raise BenchConfigError(f"bench.quantiles must be numbers in (0, 1), got {cfg.get('quantiles')!r}")
        if not isinstance(cfg.get("seeds"), int) or cfg["seeds"] < 1:
            raise BenchConfigError(f"bench.seeds must be a positive integer, got {cfg.get('seeds')!r}")
        if cfg.get("base") not in OPS:
            raise BenchConfigError(f"bench.base must be one of {OPS}, got {cfg.get('base')!r}")
        try:
            bench_method(cfg.get("method", "oneshot"))
        except RegistryError as exc:
            raise BenchConfigError(str(exc)) from exc
        for name in ("evaluations", "rea_population", "rea_sample", "tpe_seeds", "calibration"):
            if not isinstance(cfg.get(name, 1), int) or cfg.get(name, 1) < 1:
                raise BenchConfigError(f"bench.{name} must be a positive integer, got {cfg.get(name)!r}")
        peers = tuple(cfg.get("peers", PEERS) or ())
        if any(p not in PEERS for p in peers) or len(set(peers)) != len(peers):
            raise BenchConfigError(f"bench.peers must be distinct names among {list(PEERS)}, got {list(peers)}")
        if "tpe" in peers or cfg.get("method") == "tpe":
            _require_optuna()
        prior = cfg.get("prior", "proxy_synflow")
        if prior != "trained" and prior not in [f"proxy_{p}" for p in PROXIES]:
            raise BenchConfigError(
                f"bench.prior must be trained or one of {[f'proxy_{p}' for p in PROXIES]}, got {prior!r}"
            )
        try:
            refine_settings = RefineSettings.from_dict(cfg.get("refine"))
            layernas_settings = LayerNasSettings.from_dict(cfg.get("layernas"))
        except (TypeError, ValueError) as exc:
            raise BenchConfigError(f"bench.{exc}") from exc
        try:
            estimator = EstimatorSettings(
                str(cfg.get("estimator")), float(cfg.get("sample_fraction", 0.05)), int(cfg.get("sample_seed", 0))
            )
        except ValueError as exc:
            raise BenchConfigError(f"bench.{exc}") from exc
        return cls(
            cfg["dataset"],
            str(cfg.get("hardware")),
            Path(str(cfg["latency_csv"])).expanduser(),
            estimator,
            cfg["predictor"],
            cfg["seeds"],
            quantiles,
            cfg["base"],
            output_dir,
            method=cfg.get("method", "oneshot"),
            evaluations=cfg.get("evaluations", 60),
            refine=refine_settings,
            rea_population=cfg.get("rea_population", 10),
            rea_sample=cfg.get("rea_sample", 3),
            peers=peers,
            tpe_seeds=cfg.get("tpe_seeds", 10),
            layernas=layernas_settings,
            prior=prior,
            calibration=cfg.get("calibration", 5),
        )


def _require_optuna() -> None:
    try:
        import optuna  # noqa: F401
    except ImportError as exc:
        raise BenchConfigError(
            "the tpe peer needs Optuna: pip install -e '.[tpe]' (make install does), or leave "
            "it out: bench.peers=[random,rea]"
        ) from exc


@dataclass(frozen=True)
class PeerSettings:
    """Which peers each budget row compares with, and over how many seeded runs."""

    names: tuple[str, ...] = PEERS
    seeds: int = 100
    tpe_seeds: int = 10
    rea_population: int = 10
    rea_sample: int = 3
    layernas: LayerNasSettings = DEFAULT_LAYERNAS


@dataclass(frozen=True)
class GroundTruth:
    """Every cell of the space: block indices, code, true accuracy and latency, connectivity."""

    selections: np.ndarray  # [N, 6]
    codes: tuple[str, ...]
    accuracy: np.ndarray
    latency: np.ndarray
    valid: np.ndarray

    def index(self, selection: tuple[int, ...]) -> int:
        return int(np.ravel_multi_index(selection, self.selections.max(axis=0) + 1))


def load_ground_truth(accuracy: dict[str, float], latency: dict[str, float]) -> GroundTruth:
    selections = np.array(list(itertools.product(range(len(OPS)), repeat=len(EDGES))))
    codes = tuple("".join(map(str, s)) for s in selections)
    missing = [c for c in codes if c not in accuracy or c not in latency]
    if missing:
        raise BenchConfigError(f"{len(missing)} cells lack accuracy or latency (e.g. {missing[0]}); is this NB201?")
    valid = NB201_CONNECTIVITY.valid_mask((OPS,) * len(EDGES), selections)
    return GroundTruth(
        selections, codes, np.array([accuracy[c] for c in codes]), np.array([latency[c] for c in codes]), valid
    )


def tabular_problem(truth: GroundTruth, allowed: np.ndarray, evaluations: int) -> NetworkProblem:
    """The cells as a ``NetworkProblem``: latency and connectivity free, accuracy a counted lookup; the start
    is the fastest allowed cell, the budget the slowest allowed cell's latency."""
    fits = np.flatnonzero(allowed)
    problem = NetworkProblem.from_arrays(
        truth.selections, allowed, truth.accuracy, evaluations, {LATENCY: truth.latency}
    )
    if len(fits):
        problem.start = tuple(int(j) for j in truth.selections[fits[np.argmin(truth.latency[fits])]])
    return problem


def peer_settings(method: SearchMethod, evaluations: int, peers: PeerSettings):
    """A method's settings with the bench's evaluations (and REA's, LayerNAS's bench.* settings)."""
    given = {
        "evaluations": evaluations,
        "population": peers.rea_population,
        "sample": peers.rea_sample,
        "buckets": peers.layernas.buckets,
        "per_bucket": peers.layernas.per_bucket,
    }
    names = {f.name for f in fields(method.Settings)}
    return replace(method.Settings(), **{k: v for k, v in given.items() if k in names})


def search_cells(
    truth: GroundTruth,
    allowed: np.ndarray,
    method: str,
    evaluations: int,
    seed: int,
    peers: PeerSettings = PeerSettings(),
) -> list[int]:
    """The cells a whole-network search method (``blocknas.orchestrator.search.methods``) evaluates, in order."""
    entry = SEARCH_METHODS.get(method)
    problem = tabular_problem(truth, allowed, evaluations)
    if allowed.any():
        entry.search(problem, peer_settings(entry, evaluations, peers), seed)
    return [problem.rows[s] for s in problem.accuracy]


def baseline_regret(
    truth: GroundTruth,
    budget: float,
    evaluations: int,
    seeds: int,
    method: str = "random",
    population: int = 10,
    sample: int = 3,
    layernas_settings: LayerNasSettings = DEFAULT_LAYERNAS,
) -> tuple[float, int, int]:
    """Mean regret of ``method`` (random, rea, tpe, layernas or a method of your own) over ``seeds`` runs, the
    first run's pick and its evaluations (layernas may converge before it spends them all); layernas is
    deterministic: one run."""
    candidates = truth.valid & (truth.latency <= budget)
    best = truth.accuracy[candidates].max()
    peers = PeerSettings(rea_population=population, rea_sample=sample, layernas=layernas_settings)
    picks, used = [], []
    for seed in range(1 if method == "layernas" else seeds):
        evaluated = search_cells(truth, candidates, method, evaluations, seed, peers)
        picks.append(max(evaluated, key=lambda i: truth.accuracy[i]))
        used.append(len(evaluated))
    return float(np.mean([best - truth.accuracy[i] for i in picks])), int(picks[0]), used[0]


def baselines_for(
    truth: GroundTruth, budget: float, evaluations: int, peers: PeerSettings = PeerSettings()
) -> dict[str, tuple[float, int, int]]:
    """``{peer: (mean regret, first run's pick, its evaluations)}`` for each of ``peers`` (TPE only up to
    ``TPE_PEER_MAX_EVALUATIONS``)."""
    return {
        name: baseline_regret(
            truth,
            budget,
            evaluations,
            peers.tpe_seeds if name == "tpe" else peers.seeds,
            name,
            peers.rea_population,
            peers.rea_sample,
            peers.layernas,
        )
        for name in peers.names
        if name != "tpe" or evaluations <= TPE_PEER_MAX_EVALUATIONS
    }


def budget_row(
    truth: GroundTruth,
    quantile: float,
    budget: float,
    chosen: int | None,
    evaluations: int,
    peers: PeerSettings = PeerSettings(),
    baselines: dict[str, tuple] | None = None,
) -> dict:
    """One entry of the report's ``budgets``: the pick scored against the truth, and the peers
    (``baselines_for`` with the same evaluations, computed here unless given)."""
    baselines = baselines or baselines_for(truth, budget, evaluations, peers)
    fits = truth.latency <= budget
    best = int(np.flatnonzero(fits)[np.argmax(truth.accuracy[fits])])
    row = {
        "quantile": quantile,
        "budget_ms": budget,
        "chosen_code": None,
        "chosen_true_accuracy": None,
        "chosen_true_latency_ms": None,
        "violates_budget": None,
        "true_best_accuracy": float(truth.accuracy[best]),
        "true_best_code": truth.codes[best],
        "regret": None,
        "evaluations": evaluations,
    } | {f"{name}_regret": baselines[name][0] if name in baselines else None for name in PEERS}
    if chosen is not None:
        row |= {
            "chosen_code": truth.codes[chosen],
            "chosen_true_accuracy": float(truth.accuracy[chosen]),
            "chosen_true_latency_ms": float(truth.latency[chosen]),
            "violates_budget": bool(truth.latency[chosen] > budget),
            "regret": float(truth.accuracy[best] - truth.accuracy[chosen]),
        }
    return row


def _mean(values: list) -> float | None:
    """The mean of the values a peer has (None: left out of every row)."""
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def estimator_networks(space: Nb201Space, estimator: EstimatorSettings) -> tuple[list, list]:
    """The estimator's context networks and the networks its block table evaluates (block indices)."""
    sizes = [len(OPS)] * len(EDGES)
    flops_table = analytic_costs(space, "flops")
    flops = tuple(np.array([flops_table.blocks[(i, op)] for op in OPS]) for i in range(len(EDGES)))
    contexts = choose_contexts(
        estimator,
        sizes,
        tuple(OPS.index(b) for b in space.base),
        flops,
        is_valid=lambda s: space.is_connected([OPS[j] for j in s]),
    )
    return contexts, swap_networks(contexts, sizes)


def _correlations(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    return float(stats.spearmanr(predicted, truth).statistic), float(stats.kendalltau(predicted, truth).statistic)


def _mape(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(predicted - truth) / truth) * 100)


def run_nb201_bench(settings: BenchSettings) -> tuple[dict, Path]:
    """Evaluate one variant; write ``report.json`` and return it with its path."""
    started = time.perf_counter()
    latency_table = read_network_table(settings.latency_csv, settings.hardware)
    truth = load_ground_truth(nb201_accuracies(settings.dataset), latency_table)
    space = Nb201Space.from_dict({"dataset": settings.dataset, "base": settings.base})
    sizes = [len(OPS)] * len(EDGES)
    contexts, networks = estimator_networks(space, settings.estimator)
    accuracy_oracle = CountingOracle(nb201_accuracies(settings.dataset), f"NAS-Bench-201 {settings.dataset}")
    latency_oracle = CountingOracle(latency_table, f"{settings.hardware} latency")
    measured = {s: accuracy_oracle.evaluate(truth.codes[truth.index(s)]) for s in networks}
    measured_latency = {s: latency_oracle.evaluate(truth.codes[truth.index(s)]) for s in networks}
    values, offset = block_values(contexts, sizes, measured)
    latency_values, latency_offset = block_values(contexts, sizes, measured_latency)

    table = BlockTable(
        slots=EDGES,
        choices=(OPS,) * len(EDGES),
        accuracy=values,
        accuracy_offset=offset,
        costs={LATENCY: latency_values},
        cost_offsets={LATENCY: latency_offset},
        rules=(NB201_CONNECTIVITY,),
    )
    selections = truth.selections
    prediction = fit_prediction(settings.predictor, space, table, measured)
    predicted = prediction.predict_all(selections)
    predicted_latency = latency_offset + sum(latency_values[i][selections[:, i]] for i in range(len(EDGES)))

    spearman_all, kendall_all = _correlations(predicted, truth.accuracy)
    spearman_valid, kendall_valid = _correlations(predicted[truth.valid], truth.accuracy[truth.valid])
    rows, solve_seconds = [], 0.0
    prior = None
    if settings.method == "loop" and settings.prior != "trained":
        prior = proxy_table(space, settings.prior, contexts, networks, table)
    context = SearchContext(
        settings, truth, table, prediction, measured, measured_latency, accuracy_oracle.evaluations, prior
    )
    for q in settings.quantiles:
        budget = float(np.quantile(truth.latency, q))
        solve_started = time.perf_counter()
        picked = bench_method(settings.method)(context, budget)
        solve_seconds += time.perf_counter() - solve_started
        chosen, evaluations, extra = picked.chosen, picked.evaluations, picked.extra
        baselines = picked.baselines or baselines_for(truth, budget, evaluations, settings.peer_settings)
        rows.append(budget_row(truth, q, budget, chosen, evaluations, settings.peer_settings, baselines) | extra)

    regrets = [r["regret"] for r in rows if r["regret"] is not None]
    report = {
        "method": settings.method,
        "dataset": settings.dataset,
        "hardware": settings.hardware,
        "estimator": settings.estimator.kind,
        "sample_fraction": settings.estimator.sample_fraction if settings.estimator.kind == "sampled" else None,
        "predictor": settings.predictor,
        "objective": prediction.objective,
        "base": settings.base,
        "contexts": len(contexts),
        "evaluations": max(r["evaluations"] for r in rows),  # per budget; the rows have each one
        "latency_lookups": latency_oracle.evaluations,
        "spearman_all": spearman_all,
        "kendall_all": kendall_all,
        "spearman_valid": spearman_valid,
        "kendall_valid": kendall_valid,
        "latency_mape": _mape(predicted_latency, truth.latency),
        "latency_mape_valid": _mape(predicted_latency[truth.valid], truth.latency[truth.valid]),
        "solve_seconds": solve_seconds,
        "budgets": rows,
        "mean_regret": float(np.mean(regrets)) if regrets else None,
        "max_regret": float(np.max(regrets)) if regrets else None,
        **{f"mean_{name}_regret": _mean([r[f"{name}_regret"] for r in rows]) for name in PEERS},
        "tpe_seeds": settings.tpe_seeds if "tpe" in settings.peers else None,
        "violations": sum(bool(r["violates_budget"]) for r in rows),
        "rounds": [r.get("rounds") for r in rows] if any("rounds" in r for r in rows) else None,
        "refine": asdict(settings.refine) if settings.method == "loop" else None,
        "prior": settings.prior if settings.method == "loop" else None,
        "layernas": asdict(settings.layernas) if "layernas" in (settings.method, *settings.peers) else None,
        "random_seeds": settings.seeds,
        "wall_seconds": time.perf_counter() - started,
    }
    out_dir = (
        settings.output_dir
        / "bench"
        / (
            f"nb201-{settings.method}-{settings.dataset}-{settings.hardware}-{settings.estimator.kind}-{settings.predictor}-"
            f"{datetime.now():%Y%m%d-%H%M%S-%f}"
        )
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    return report, write_atomically(out_dir / "report.json", json.dumps(report, indent=2))


def _oneshot_pick(table: BlockTable, prediction: Prediction, budget: float, truth: GroundTruth) -> int | None:
    try:
        point = prediction.best({LATENCY: budget})
    except InfeasibleBudgetError:
        return None  # every network is predicted over the budget
    return truth.index(table.index_of(point.blocks))


def proxy_table(space: Nb201Space, proxy: str, contexts, networks, trained: BlockTable) -> BlockTable:
    """The block table of a training-free proxy over the same networks (no network evaluation), with the
    trained table's costs and rules."""
    from blocknas.workers.proxy_scores import proxy_score

    sizes = [len(OPS)] * len(EDGES)
    scores = {s: proxy_score(proxy.removeprefix("proxy_"), space, [OPS[j] for j in s]) for s in networks}
    values, offset = block_values(contexts, sizes, scores)
    return replace(trained, accuracy=values, accuracy_offset=offset)


def _calibrated(
    settings: BenchSettings, truth: GroundTruth, prior: BlockTable, budget: float, evaluate
) -> tuple[BlockTable, dict]:
    """The proxy table in accuracy units: ``settings.calibration`` networks verified first (the proxy's best
    within the budget and others spread down its ranking), accuracy regressed on the proxy's prediction."""
    fits = np.flatnonzero(truth.valid & (truth.latency <= budget))
    predicted = prior.accuracy_offset + sum(prior.accuracy[i][truth.selections[fits, i]] for i in range(len(EDGES)))
    order = fits[np.argsort(-predicted)]
    ranks = sorted({min(len(order) - 1, int(r)) for r in np.geomspace(1, max(2, len(order)), settings.calibration) - 1})
    chosen = [tuple(int(j) for j in truth.selections[order[r]]) for r in ranks]
    measured = evaluate(chosen)
    x = np.array([prior.predict_accuracy(s) for s in chosen])
    y = np.array([measured[s] for s in chosen])
    slope = float(np.polyfit(x, y, 1)[0]) if len(set(x.tolist())) > 1 else 0.0
    slope = max(slope, 1e-6)  # the proxy orders networks; a negative fit on a few points would invert it
    intercept = float(np.mean(y - slope * x))
    scaled = replace(
        prior,
        accuracy=tuple(v * slope for v in prior.accuracy),
        accuracy_offset=intercept + slope * prior.accuracy_offset,
    )
    return scaled, measured


def _loop_pick(
    settings: BenchSettings,
    truth: GroundTruth,
    table: BlockTable,
    budget: float,
    measured: dict,
    measured_latency: dict,
    prior: BlockTable | None = None,
) -> tuple[int | None, dict]:
    """One verify-and-refit loop for one budget, starting from the block table's networks, or (``prior``:
    a proxy's table) from a few networks that calibrate it, so that the table costs no evaluations."""
    started = time.perf_counter()
    accuracy_oracle = CountingOracle(dict(zip(truth.codes, truth.accuracy.tolist(), strict=True)), "accuracy")
    latency_oracle = CountingOracle(dict(zip(truth.codes, truth.latency.tolist(), strict=True)), "latency")

    def code(selection):
        return truth.codes[truth.index(selection)]

    if prior is not None:
        table, measured = _calibrated(
            settings, truth, prior, budget, lambda chosen: {s: accuracy_oracle.evaluate(code(s)) for s in chosen}
        )
        measured_latency = {s: latency_oracle.evaluate(code(s)) for s in measured}
    paid_before = 0 if prior is not None else len(measured)  # the calibration is in the oracles' counts

    result = refine(
        settings.refine,
        table,
        SurrogateModel.additive(table.accuracy_offset, table.accuracy),
        {LATENCY: SurrogateModel.additive(table.cost_offsets[LATENCY], table.costs[LATENCY])},
        {LATENCY},
        [{LATENCY: budget}],
        Verified(dict(measured), {s: {LATENCY: v} for s, v in measured_latency.items()}),
        len(measured),
        evaluate=lambda cands: {c.selection: accuracy_oracle.evaluate(code(c.selection)) for c in cands},
        measure_costs=lambda cands: {c.selection: {LATENCY: latency_oracle.evaluate(code(c.selection))} for c in cands},
    )
    pick = result.points[0].pick
    return (truth.index(pick) if pick is not None else None), {
        "evaluations": paid_before + accuracy_oracle.evaluations,
        "latency_lookups": paid_before + latency_oracle.evaluations,
        "rounds": result.rounds,
        "stopped": result.stopped,
        "rejected_over_budget": len(result.rejected),
        "loop_seconds": time.perf_counter() - started,
    }


@dataclass(frozen=True)
class SearchContext:
    """What a search method is given: the bench's settings, the ground truth (for counted lookups of
    baselines), the block table and predictor built from the measured networks."""

    settings: BenchSettings
    truth: GroundTruth
    table: BlockTable
    prediction: Prediction
    measured: dict
    measured_latency: dict
    table_evaluations: int  # network evaluations the block table cost
    prior: BlockTable | None = None  # loop with bench.prior: a proxy's block table (no evaluations)


@dataclass(frozen=True)
class Picked:
    chosen: int | None  # the index of the picked cell in the ground truth; None: nothing fits
    evaluations: int  # network evaluations the method paid for this budget
    extra: dict = field(default_factory=dict)  # method-specific columns of the report row
    baselines: dict | None = None  # random / REA already computed at this many evaluations


# What ``bench.method`` measures: ``oneshot`` and ``loop`` are the block table (``search=blocks``) without and
# with the refine loop; every other name is a whole-network method of the shared registry
# (``blocknas.orchestrator.search.methods.SEARCH_METHODS``: built-in, entry point or import path), or the
# import path of a function ``(SearchContext, budget) -> Picked`` that knows the bench's ground truth.
BLOCK_TABLE_METHODS = ("oneshot", "loop")


def bench_method(name: str):
    """``(SearchContext, budget) -> Picked`` for ``bench.method=name``; ``RegistryError`` for an unknown name."""
    if name == "oneshot":
        return oneshot
    if name == "loop":
        return loop
    if looks_like_import_path(name) and name not in SEARCH_METHODS:
        found = import_object(name)
        if callable(found) and not hasattr(found, "Settings"):  # a bench method of one's own: one function
            return found
    method = SEARCH_METHODS.get(name, "bench.method")
    if not method.whole_networks:
        raise RegistryError(f"bench.method={name} is the block table: use bench.method=oneshot or loop")
    return _baseline(method.name)


def oneshot(context: SearchContext, budget: float) -> Picked:
    """MathNAS: the block table and one solve."""
    return Picked(_oneshot_pick(context.table, context.prediction, budget, context.truth), context.table_evaluations)


def loop(context: SearchContext, budget: float) -> Picked:
    """The refine loop: solve, verify the picks, refit, until no better network is found."""
    chosen, extra = _loop_pick(
        context.settings,
        context.truth,
        context.table,
        budget,
        context.measured,
        context.measured_latency,
        context.prior,
    )
    return Picked(chosen, extra["evaluations"], extra)


def _baseline(name: str):
    def pick(context: SearchContext, budget: float) -> Picked:
        settings = context.settings
        peers = settings.peer_settings
        peers = replace(peers, names=tuple(dict.fromkeys((*peers.names, name))))  # itself, also when not a peer
        baselines = baselines_for(context.truth, budget, settings.evaluations, peers)
        if name not in baselines:  # tpe beyond the peer limit: run it as asked, however long it takes
            baselines[name] = baseline_regret(context.truth, budget, settings.evaluations, peers.tpe_seeds, name)
        regret, chosen, used = baselines[name]
        return Picked(chosen, used, {"regret": regret, "regret_is_mean_over_seeds": name != "layernas"}, baselines)

    return pick


def _cell(value: float | None) -> str:
    return f"{value:>7.2f}" if value is not None else f"{'-':>7}"


def format_report(report: dict) -> str:
    peers = [name for name in PEERS if report.get(f"mean_{name}_regret") is not None]
    lines = [
        f"NAS-Bench-201 {report['dataset']} on {report['hardware']}: method {report['method']}, estimator "
        f"{report['estimator']}, predictor {report['predictor']}, {report['evaluations']} network evaluations "
        f"({report['contexts']} context{'s' if report['contexts'] > 1 else ''}), "
        f"{report['latency_lookups']} latency lookups",
        f"  accuracy rank correlation, all 15,625 cells: Spearman {report['spearman_all']:.3f}, "
        f"Kendall {report['kendall_all']:.3f}",
        f"  connected cells only:                        Spearman {report['spearman_valid']:.3f}, "
        f"Kendall {report['kendall_valid']:.3f}",
        f"  latency MAPE {report['latency_mape']:.1f} % (connected cells {report['latency_mape_valid']:.1f} %), "
        f"solve {report['solve_seconds']:.3f} s",
        f"  {'quantile':>8} {'budget ms':>10} {'chosen':>7} {'true acc':>8} {'lat ms':>8} {'viol':>5} "
        f"{'best':>7} {'regret':>7}" + "".join(f" {name:>7}" for name in peers),
    ]
    for r in report["budgets"]:
        chosen = r["chosen_code"] or "-"
        acc = f"{r['chosen_true_accuracy']:8.2f}" if r["chosen_code"] else f"{'-':>8}"
        lat = f"{r['chosen_true_latency_ms']:8.3f}" if r["chosen_code"] else f"{'-':>8}"
        regret = f"{r['regret']:7.2f}" if r["regret"] is not None else f"{'-':>7}"
        lines.append(
            f"  {r['quantile']:>8.2f} {r['budget_ms']:>10.3f} {chosen:>7} {acc} {lat} "
            f"{'yes' if r['violates_budget'] else 'no':>5} {r['true_best_accuracy']:>7.2f} {regret}"
            + "".join(f" {_cell(r[f'{name}_regret'])}" for name in peers)
        )
    if report["mean_regret"] is not None:
        compared = ", ".join(f"{name} {report[f'mean_{name}_regret']:.2f}" for name in peers)
        lines.append(
            f"  mean regret {report['mean_regret']:.2f} ({compared or 'no peers'}), "
            f"worst {report['max_regret']:.2f}, budget violations {report['violations']}"
        )
    return "\n".join(lines)
