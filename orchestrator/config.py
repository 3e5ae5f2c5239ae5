"""Compose the Hydra config from ``conf/`` and turn it into validated, typed settings.

Every mistake in a config or an override surfaces here as ``ConfigError``, before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from orchestrator.estimation import PREDICTORS, EstimatorSettings
from orchestrator.hashing import content_hash
from orchestrator.refine import RefineSettings
from workers.costs import ANALYTIC_METRICS
from workers.records import TrainSettings
from workers.spaces import CnnSpace, SearchSpaceError, Space, space_from_dict
from workers.tabular import NB201_FILES

TARGET_KINDS = ("analytic", "measured", "network_table")
TABLE_METRICS = ("latency_ms", "energy_mj", "memory_mib")

if not OmegaConf.has_resolver("abspath"):
    OmegaConf.register_new_resolver("abspath", lambda p: str(Path(p).expanduser().resolve()))


class ConfigError(ValueError):
    """The composed configuration is invalid; the message names the key and how to fix it."""


@dataclass(frozen=True)
class TargetSpec:
    name: str
    kind: str
    metric: str
    warmup: int = 0
    repeats: int = 0
    threads: int = 1
    file: str | None = None  # network_table: per-network CSV, one row per network
    column: str | None = None  # network_table: the column holding this target's values
    key_column: str = "code"  # network_table: the column holding the network key

    def definition(self) -> dict:
        if self.kind == "network_table":
            return {"kind": self.kind, "metric": self.metric, "file": self.file, "column": self.column,
                    "key_column": self.key_column}
        return {"kind": self.kind, "metric": self.metric, "warmup": self.warmup, "repeats": self.repeats,
                "threads": self.threads}


@dataclass(frozen=True)
class ClusterSettings:
    address: str | None
    num_cpus: int | None
    cpus_per_block: float
    gpus_per_block: float
    max_retries: int
    object_store_mb: int
    lease_seconds: float = 60.0


@dataclass(frozen=True)
class RunSettings:
    name: str
    space: Space
    space_definition: dict
    scorer_kind: str
    dataset: str
    train: TrainSettings | None  # None for tabular scorers
    estimator: EstimatorSettings
    predictor: str
    device: str
    targets: tuple[TargetSpec, ...]
    cluster: ClusterSettings
    storage_url: str
    tracking_uri: str
    artifact_location: str
    block_runs: bool  # one MLflow run per block (else batched on the parent run)
    budgets: dict[str, float]
    max_points: int
    output_dir: Path
    config_yaml: str
    config_hash: str
    refine: RefineSettings = RefineSettings()
    scheduler: dict | None = None  # conf/scheduler: validated by orchestrator.scheduler when it starts


def compose_config(overrides: list[str]) -> DictConfig:
    """Compose ``conf/config.yaml`` with command-line overrides (Hydra syntax)."""
    try:
        with initialize_config_module(config_module="conf", version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_composition_message(exc)) from exc


def _composition_message(exc: Exception) -> str:
    message = str(exc).split("Config search path:")[0].strip()
    if message.startswith("Could not override"):
        key = message.split("'")[1] if "'" in message else "?"
        group = key.split(".")[0]
        message = (
            f"unknown config key {key!r}: check its spelling against conf/{group}/ "
            f"(a key that is meant to be new takes a leading '+', e.g. +{key}=...)"
        )
    return message


def load_settings(overrides: list[str]) -> RunSettings:
    cfg = compose_config(overrides)
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"could not resolve the config: {exc}") from exc
    return settings_from_dict(resolved, OmegaConf.to_yaml(cfg, resolve=True))


def _require(section: dict, key: str, kind: type, where: str):
    value = section.get(key)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}.{key} must be a {kind.__name__}, got {value!r}")
    return value


def _positive(value, where: str, allow_zero: bool = False):
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{where} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value


def settings_from_dict(cfg: dict, config_yaml: str) -> RunSettings:
    name = str(cfg.get("name") or "")
    if not name or "/" in name:
        raise ConfigError(f"name must be a non-empty experiment name without '/', got {name!r}")

    space_cfg = cfg["space"]
    scorer = cfg["scorer"]
    cluster_cfg = cfg["cluster"]
    resources = cfg["resources"]
    cpus_per_block = _positive(_require(resources, "cpus_per_block", float, "resources"), "resources.cpus_per_block")
    train = _scorer(scorer, space_cfg.get("kind"), cpus_per_block)  # first: the space may follow its dataset
    try:
        space = space_from_dict(space_cfg)
    except (SearchSpaceError, TypeError, ValueError) as exc:
        raise ConfigError(f"space: {exc}") from exc
    device = scorer.get("device", "auto")
    if device not in ("cpu", "cuda", "auto"):
        raise ConfigError(f"scorer.device must be cpu, cuda or auto, got {device!r}")
    try:
        estimator = EstimatorSettings(str(scorer.get("estimator", "avg_context")),
                                      float(scorer.get("sample_fraction", 0.05)), int(scorer.get("sample_seed", 0)))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"scorer.{exc}") from exc

    targets = tuple(_target(tname, tcfg) for tname, tcfg in (cfg.get("targets") or {}).items())
    if not targets:
        raise ConfigError("targets is empty: configure at least one hardware target (see conf/targets/)")
    for target in targets:
        if target.kind == "measured" and not isinstance(space, CnnSpace):
            raise ConfigError(
                f"targets.{target.name}: measured targets time the space's blocks in torch, which only the cnn "
                "space builds; give this space's costs as a network_table target (a per-network CSV) instead"
            )

    num_cpus = cluster_cfg.get("num_cpus")
    if num_cpus is not None:
        num_cpus = _positive(_require(cluster_cfg, "num_cpus", int, "cluster"), "cluster.num_cpus")
    cluster = ClusterSettings(
        address=cluster_cfg.get("address") or None,
        num_cpus=num_cpus,
        cpus_per_block=cpus_per_block,
        gpus_per_block=_positive(
            _require(resources, "gpus_per_block", float, "resources"), "resources.gpus_per_block", allow_zero=True
        ),
        max_retries=_positive(_require(cluster_cfg, "max_retries", int, "cluster"), "cluster.max_retries", True),
        object_store_mb=_positive(_require(cluster_cfg, "object_store_mb", int, "cluster"), "cluster.object_store_mb"),
        lease_seconds=_positive(_require(cluster_cfg, "lease_seconds", float, "cluster"), "cluster.lease_seconds"),
    )
    if num_cpus is not None and cpus_per_block > num_cpus:
        raise ConfigError(f"resources.cpus_per_block={cpus_per_block} exceeds cluster.num_cpus={num_cpus}")

    solver = cfg["solver"]
    names = {t.name for t in targets}
    budgets = {}
    for key, value in (solver.get("budgets") or {}).items():
        if value is None:
            continue
        if key not in names:
            raise ConfigError(f"solver.budgets.{key}: no hardware target named {key!r}; targets: {sorted(names)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"solver.budgets.{key} must be a number, got {value!r}")
        budgets[key] = float(value)
    max_points = _positive(_require(solver, "max_points", int, "solver"), "solver.max_points")
    predictor = solver.get("predictor", "linear")
    if predictor not in PREDICTORS:
        raise ConfigError(f"solver.predictor must be one of {PREDICTORS}, got {predictor!r}")

    storage_url = str(cfg["storage"]["url"])
    tracking_uri = str(cfg["tracking"]["uri"])
    for key, value in (("storage.url", storage_url), ("tracking.uri", tracking_uri)):
        if "://" not in value and not value.startswith(("sqlite:", "file:")):
            raise ConfigError(f"{key} must be a URL such as sqlite:///path or postgresql+psycopg://..., got {value!r}")
    if ":" in (storage_url.split("@")[0].split("//", 1)[-1]) and "@" in storage_url:
        raise ConfigError("storage.url must not contain a password; set it in the PGPASSWORD environment variable")

    block_runs = cfg["tracking"].get("block_runs", "auto")
    if block_runs not in ("auto", "per_block", "batched"):
        raise ConfigError(f"tracking.block_runs must be auto, per_block or batched, got {block_runs!r}")
    try:
        refine = RefineSettings.from_dict(cfg.get("refine"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc
    if refine.rounds and predictor != "linear":
        raise ConfigError("refine.rounds > 0 learns on top of the linear block table: set solver.predictor=linear "
                          "(or refine.rounds=0 to keep the flops predictor without refinement)")
    science = {"name": name, "space": space_cfg, "scorer": scorer, "targets": cfg.get("targets"), "solver": solver,
               "refine": cfg.get("refine")}
    return RunSettings(
        name=name,
        space=space,
        space_definition=space_cfg,
        scorer_kind=scorer["kind"],
        dataset=scorer["dataset"],
        train=train,
        estimator=estimator,
        predictor=predictor,
        device=device,
        targets=targets,
        cluster=cluster,
        storage_url=storage_url,
        tracking_uri=tracking_uri,
        artifact_location=str(cfg["tracking"].get("artifact_location") or ""),
        block_runs=block_runs == "per_block" or (block_runs == "auto" and scorer["kind"] != "tabular"),
        budgets=budgets,
        max_points=max_points,
        output_dir=Path(cfg["paths"]["output_dir"]),
        config_yaml=config_yaml,
        config_hash=content_hash(science),
        refine=refine,
        scheduler=cfg.get("scheduler"),
    )


def _scorer(scorer: dict, space_kind: str | None, cpus_per_block: float) -> TrainSettings | None:
    """Validate the scorer against the space; the training settings of a training scorer."""
    kind = scorer.get("kind")
    if kind == "tabular":
        if space_kind != "nb201" or scorer.get("benchmark") != "nb201":
            raise ConfigError("scorer.kind=tabular needs scorer.benchmark=nb201 and space.kind=nb201 (space=nb201)")
        if scorer.get("dataset") not in NB201_FILES:
            raise ConfigError(f"scorer.dataset must be one of {sorted(NB201_FILES)} for NAS-Bench-201, "
                              f"got {scorer.get('dataset')!r}")
        return None
    if kind != "swap_in":
        raise ConfigError(f"scorer.kind {kind!r} is not supported; expected 'swap_in' or 'tabular'")
    if space_kind != "cnn":
        raise ConfigError("scorer.kind=swap_in trains cnn spaces; for space.kind=nb201 use scorer=nb201_tabular")
    if scorer.get("dataset") != "mnist":
        raise ConfigError(f"scorer.dataset {scorer.get('dataset')!r} is not supported; expected 'mnist'")
    try:
        train = TrainSettings(
            steps=_require(scorer, "steps", int, "scorer"),
            batch_size=_require(scorer, "batch_size", int, "scorer"),
            lr=_require(scorer, "lr", float, "scorer"),
            weight_decay=_require(scorer, "weight_decay", float, "scorer"),
            seed=_require(scorer, "seed", int, "scorer"),
            train_size=_require(scorer, "train_size", int, "scorer"),
            val_size=_require(scorer, "val_size", int, "scorer"),
            threads=max(1, int(cpus_per_block)),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if train.train_size + train.val_size > 5000:
        raise ConfigError(
            f"scorer.train_size + scorer.val_size = {train.train_size + train.val_size} exceeds the 5000 "
            "MNIST digits available"
        )
    return train


def _target(name: str, tcfg: dict) -> TargetSpec:
    if not isinstance(tcfg, dict):
        raise ConfigError(f"targets.{name} must be a mapping with kind and metric, got {tcfg!r}")
    kind, metric = tcfg.get("kind"), tcfg.get("metric")
    if kind not in TARGET_KINDS:
        raise ConfigError(f"targets.{name}.kind must be one of {TARGET_KINDS}, got {kind!r}")
    if kind == "analytic":
        if metric not in ANALYTIC_METRICS:
            raise ConfigError(f"targets.{name}.metric must be one of {ANALYTIC_METRICS} for analytic targets")
        return TargetSpec(name, kind, metric)
    where = f"targets.{name}"
    if kind == "network_table":
        if metric not in TABLE_METRICS:
            raise ConfigError(f"{where}.metric must be one of {TABLE_METRICS} for network_table targets")
        for key in ("file", "column"):
            if not isinstance(tcfg.get(key), str) or not tcfg[key]:
                raise ConfigError(f"{where}.{key} must be set for a network_table target (the per-network CSV "
                                  "and the column holding this target's values)")
        return TargetSpec(name, kind, metric, file=str(Path(tcfg["file"]).expanduser().resolve()),
                          column=tcfg["column"], key_column=str(tcfg.get("key_column", "code")))
    if metric != "latency_ms":
        raise ConfigError(f"targets.{name}.metric must be latency_ms for measured targets, got {metric!r}")
    return TargetSpec(
        name,
        kind,
        metric,
        warmup=_positive(_require(tcfg, "warmup", int, where), f"{where}.warmup", allow_zero=True),
        repeats=_positive(_require(tcfg, "repeats", int, where), f"{where}.repeats"),
        threads=_positive(_require(tcfg, "threads", int, where), f"{where}.threads"),
    )

