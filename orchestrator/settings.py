"""The settings of a run, as plain data: what the config (``blocknas.orchestrator.config``) validates and every
stage reads. Nothing here composes, validates or runs anything, and nothing of the pipeline is imported, so
any module may import these types without an import cycle."""

from __future__ import annotations

from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blocknas.workers.registry import did_you_mean
from blocknas.workers.typed import from_mapping

if TYPE_CHECKING:
    from blocknas.orchestrator.estimation import EstimatorSettings
    from blocknas.orchestrator.targets.kinds import TargetSpec

INTERACTIONS = ("all", "adjacent", "none")  # solvers.surrogate.interaction_pairs


class ConfigError(ValueError):
    """The composed configuration is invalid; the message names the key and how to fix it."""


@dataclass(frozen=True)
class RefineSettings:
    """``refine.*``: the verify-and-refit loop (orchestrator/pipeline/refine.py)."""

    rounds: int = 0  # 0: no refinement
    k: int = 2  # candidates per budget point and round: k - 1 from the global pool, 1 from the trust region
    max_evaluations: int = 60  # network evaluations in total, the block table's included
    patience: int = 5  # stop after this many rounds without a better pick
    radius: int = 1  # trust region: slots that may differ from the incumbent
    interactions: str = "all"  # slot pairs with learned interactions: all, adjacent, none

    def __post_init__(self) -> None:
        for name in ("rounds", "k", "max_evaluations", "patience", "radius"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "rounds" else 1):
                raise ValueError(f"refine.{name} must be an integer >= {0 if name == 'rounds' else 1}, got {value!r}")
        if self.interactions not in INTERACTIONS:
            hint = did_you_mean(self.interactions, INTERACTIONS)
            raise ValueError(f"refine.interactions must be one of {INTERACTIONS}{hint}, got {self.interactions!r}")

    @classmethod
    def from_dict(cls, cfg: dict | None) -> RefineSettings:
        return from_mapping(cls, cfg, "refine")


@dataclass(frozen=True)
class ClusterSettings:
    """``cluster.*`` and ``resources.*``: where blocks run and what each one takes."""

    address: str | None
    num_cpus: int | None
    cpus_per_block: float
    gpus_per_block: float
    max_retries: int
    object_store_mb: int
    lease_seconds: float = 60.0


@dataclass(frozen=True)
class ScorerSettings:
    """``scorer.*`` (and ``data.*`` for a scorer that trains): what a block's score is and how it is got."""

    kind: str  # the registered scorer (workers.scoring.SCORERS) or an import path
    settings: object  # its typed settings (TrainSettings for swap_in, TabularSettings, ...)
    trains: bool  # it trains networks (else it looks them up)
    data: dict | None  # the data config of a training scorer (workers.data); None for lookup scorers
    device: str  # cpu, cuda or auto
    estimator: EstimatorSettings  # which context networks are scored
    objective: str = "accuracy"  # scorer.objective: the key of the scorer's result that is a block's value
    direction: str = "maximize"  # scorer.direction: maximize or minimize it

    def settings_dict(self) -> dict:
        value = self.settings
        return asdict(value) if is_dataclass(value) else dict(value or {})


@dataclass(frozen=True)
class SolverSettings:
    """``solver.*``: the budgets a run's pick must meet, the point cap of every front, the predictor."""

    budgets: dict[str, float]
    max_points: int
    predictor: str


@dataclass(frozen=True)
class TrackingSettings:
    """``tracking.*``: the MLflow store, and whether each block gets a run of its own."""

    uri: str
    artifact_location: str
    block_runs: bool  # one MLflow run per block (else batched on the parent run)


@dataclass(frozen=True)
class SearchSettings:
    """``search.*``: how a run spends its evaluations (``search=<method>``, conf/search/<method>.yaml): the
    method's name in ``blocknas.orchestrator.search.methods.SEARCH_METHODS``, its own typed settings, a seed."""

    method: str = "blocks"
    settings: Any = None  # the method's Settings dataclass (None: blocks, which has none)
    seed: int = 0
    whole_networks: bool = False  # it searches whole networks (every method but blocks)


@dataclass(frozen=True)
class SchedulerSettings:
    """``scheduler.*``: how often ``blocknas scheduler`` checks the targets, on what cron, which files it watches."""

    poll_seconds: float = 5.0
    cron: str | None = None
    watch: dict[str, str] | None = None


@dataclass(frozen=True)
class RunSettings:
    """One experiment's validated settings: a few small typed groups, each validated where it is built."""

    name: str
    space: object  # a workers.spaces space; None for commands that only touch the store
    space_definition: dict
    scorer: ScorerSettings
    targets: tuple[TargetSpec, ...]
    solver: SolverSettings
    cluster: ClusterSettings
    storage_url: str
    tracking: TrackingSettings
    output_dir: Path
    config_yaml: str
    config_hash: str
    refine: RefineSettings = RefineSettings()
    search: SearchSettings = SearchSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    state_dir: Path | None = None  # paths.state_dir: where blocknas keeps what is not in the store

    @property
    def threads(self) -> int:
        return max(1, int(self.cluster.cpus_per_block))
