"""Compose the Hydra config and turn it into validated, typed settings.

The config tree ships inside the package as ``blocknas.conf`` (the repository's ``conf/`` folder), so it
never claims a user's own ``conf`` package. ``--config-dir DIR`` puts a user's config tree in front of it:
its groups' options (``DIR/space/mine.yaml``, ``DIR/experiment/mine.yaml``) join the packaged ones, and
its own primary config (``--config-name NAME``) may replace ``config``.

Every mistake in a config or an override surfaces here as ``ConfigError``, before anything is written:
unknown keys (with the near misses and the valid keys), wrong types, values out of range, a scorer that
does not fit the space.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from blocknas.orchestrator.compose_cache import composed
from blocknas.orchestrator.estimation import EstimatorSettings
from blocknas.orchestrator.hashing import content_hash
from blocknas.orchestrator.predictors import PREDICTORS
from blocknas.orchestrator.search.methods import SEARCH_METHODS
from blocknas.orchestrator.settings import (
    ClusterSettings,
    ConfigError,
    RefineSettings,
    RunSettings,
    SchedulerSettings,
    ScorerSettings,
    SearchSettings,
    SolverSettings,
    TrackingSettings,
)
from blocknas.orchestrator.targets.kinds import TARGET_KINDS, TargetSpec, target_from_config
from blocknas.workers.registry import RegistryError, did_you_mean
from blocknas.workers.typed import SettingsError, check_keys

CONFIG_MODULE = "blocknas.conf"
TOP_LEVEL_KEYS = [
    "name",
    "paths",
    "space",
    "scorer",
    "data",
    "targets",
    "cluster",
    "resources",
    "storage",
    "tracking",
    "solver",
    "refine",
    "search",
    "scheduler",
]
SECTION_KEYS = {
    "paths": ["root", "state_dir", "output_dir"],
    "cluster": ["address", "num_cpus", "max_retries", "object_store_mb", "lease_seconds"],
    "resources": ["cpus_per_block", "gpus_per_block"],
    "storage": ["url"],
    "tracking": ["uri", "artifact_location", "block_runs"],
    "solver": ["budgets", "max_points", "predictor"],
}
if not OmegaConf.has_resolver("abspath"):
    OmegaConf.register_new_resolver("abspath", lambda p: str(Path(p).expanduser().resolve()))


@dataclass(frozen=True)
class ConfigSource:
    """Where the config tree comes from: the packaged one, or a user's ``--config-dir`` in front of it."""

    config_dir: str | None = None
    config_name: str = "config"


def _cluster_settings(cluster: dict, resources: dict) -> ClusterSettings:
    cpus_per_block = _positive(_require(resources, "cpus_per_block", float, "resources"), "resources.cpus_per_block")
    num_cpus = cluster.get("num_cpus")
    # Bounds of what a machine or Ray can mean: a local instance's logical CPUs (Ray accepts any number),
    # retries, memory, and a lease its driver can renew (every lease_seconds / 4, over the network).
    cpus = os.cpu_count() or 1
    if num_cpus is not None:
        num_cpus = _within(
            _require(cluster, "num_cpus", int, "cluster"),
            1,
            64 * cpus,
            "cluster.num_cpus",
            f"64 x this machine's {cpus} CPUs",
        )
        if cpus_per_block > num_cpus:
            raise ConfigError(f"resources.cpus_per_block={cpus_per_block} exceeds cluster.num_cpus={num_cpus}")
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return ClusterSettings(
        address=cluster.get("address") or None,
        num_cpus=num_cpus,
        cpus_per_block=_within(cpus_per_block, 0, 4096, "resources.cpus_per_block", "what a node can have"),
        gpus_per_block=_within(
            _require(resources, "gpus_per_block", float, "resources"),
            0,
            64,
            "resources.gpus_per_block",
            "what a node can have",
        ),
        max_retries=_within(
            _require(cluster, "max_retries", int, "cluster"),
            0,
            100,
            "cluster.max_retries",
            "a block that failed 100 times will fail again",
        ),
        object_store_mb=_within(
            _require(cluster, "object_store_mb", int, "cluster"),
            64,
            memory_mb,
            "cluster.object_store_mb",
            f"this machine's {memory_mb} MB of memory",
        ),
        lease_seconds=_within(
            _require(cluster, "lease_seconds", float, "cluster"),
            1.0,
            86400.0,
            "cluster.lease_seconds",
            "a lease must outlast the network round trips that "
            "renew it, and a dead driver's be taken over within a day",
        ),
    )


def _solver_settings(solver: dict, target_names: set[str]) -> SolverSettings:
    budgets = {}
    for key, value in (solver.get("budgets") or {}).items():
        if value is None:
            continue
        if key not in target_names:
            raise ConfigError(
                f"solver.budgets.{key}: no hardware target named {key!r}"
                f"{did_you_mean(key, target_names)}; targets: {sorted(target_names)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise ConfigError(f"solver.budgets.{key} must be a number, got {value!r}")
        budgets[key] = float(value)
    max_points = _positive(_require(solver, "max_points", int, "solver"), "solver.max_points")
    predictor = solver.get("predictor", "linear")
    try:  # an import path or entry point is resolved now: not after every block was trained
        PREDICTORS.get(predictor, "solver.predictor")
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    return SolverSettings(budgets, max_points, predictor)


def _tracking_settings(tracking: dict, trains: bool) -> TrackingSettings:
    uri = _url(
        tracking["uri"],
        "tracking.uri",
        "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the environment",
    )
    block_runs = tracking.get("block_runs", "auto")
    if block_runs not in ("auto", "per_block", "batched"):
        raise ConfigError(f"tracking.block_runs must be auto, per_block or batched, got {block_runs!r}")
    return TrackingSettings(
        uri,
        str(tracking.get("artifact_location") or ""),
        block_runs == "per_block" or (block_runs == "auto" and trains),
    )


def _search_settings(cfg: dict | None) -> SearchSettings:
    values = dict(cfg or {})
    name = values.pop("method", "blocks")
    seed = values.pop("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"search.seed must be an integer, got {seed!r}")
    try:
        method = SEARCH_METHODS.get(name, "search.method")
    except RegistryError as exc:
        raise ValueError(f"{exc}; pick one with search=<name>") from exc
    return SearchSettings(method.name, method.settings(values, "search"), seed, method.whole_networks)


def _scheduler_settings(cfg: dict | None) -> SchedulerSettings:
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - {"poll_seconds", "cron", "watch"})
    if unknown:
        raise ConfigError(f"unknown scheduler settings {unknown}; known: cron, poll_seconds, watch")
    poll = cfg.get("poll_seconds", 5.0)
    if isinstance(poll, bool) or not isinstance(poll, int | float) or not 0 < poll < math.inf:
        raise ConfigError(f"scheduler.poll_seconds must be a number > 0, got {poll!r}")
    cron = cfg.get("cron")
    if cron:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(str(cron), timezone="UTC")
        except ValueError as exc:
            raise ConfigError(f"scheduler.cron {cron!r} is not a crontab expression: {exc}") from exc
    watch = {str(k): str(v) for k, v in (cfg.get("watch") or {}).items()}
    return SchedulerSettings(float(poll), str(cron) if cron else None, watch)


def compose_config(overrides: list[str], source: ConfigSource = ConfigSource()) -> DictConfig:
    """Compose the primary config (``config``, or ``source.config_name``) with Hydra overrides."""
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException

    overrides = list(overrides)
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            if source.config_dir:
                _search_first(source.config_dir)
            return compose(config_name=source.config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(_composition_message(exc, overrides, source)) from exc


def _search_first(config_dir: str) -> None:
    """Put the user's tree in front of the packaged one: its options (and its primary config) win by name.

    ``hydra.searchpath`` would only append it, so a packaged option of the same name would silently shadow
    the user's; this uses the config loader of the compose API (Hydra 1.3, pinned; tested)."""
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra

    directory = Path(config_dir).expanduser().resolve()
    if not directory.is_dir():
        raise ConfigError(f"--config-dir {config_dir}: no such directory")
    loader = GlobalHydra.instance().config_loader()
    loader.config_search_path.prepend("blocknas --config-dir", f"file://{directory}", SearchPathQuery(provider="main"))
    loader.repository.initialize_sources(loader.config_search_path)


def _groups_from_paths(extra: list[Path]) -> dict[str, list[str]]:
    """Group options by listing the config trees' folders (the packaged tree plus ``extra`` ones)."""
    from importlib import resources

    roots = [resources.files(CONFIG_MODULE), *extra]
    groups: dict[str, set[str]] = {}
    for root in roots:
        for entry in root.iterdir():
            if entry.is_dir() and not entry.name.startswith(("_", ".")):
                names = {p.name.rsplit(".", 1)[0] for p in entry.iterdir() if p.name.endswith(".yaml")}
                groups.setdefault(entry.name, set()).update(names)
    return {g: sorted(o) for g, o in sorted(groups.items())}


def _composition_message(exc: Exception, overrides: list[str], source: ConfigSource) -> str:
    message = str(exc).split("Config search path:")[0].strip()
    groups = _groups_from_paths([Path(source.config_dir).expanduser().resolve()] if source.config_dir else [])
    missing_option = re.match(r"In '[^']*': Could not find '([^']+)/([^']+)'|Could not find '([^']+)/([^']+)'", message)
    if missing_option:
        group, option = (
            (missing_option.group(1), missing_option.group(2))
            if missing_option.group(1)
            else (missing_option.group(3), missing_option.group(4))
        )
        options = groups.get(group, [])
        return (
            f"{group}={option}: no such option in config group {group!r}{did_you_mean(option, options)}; "
            f"options: {', '.join(options) or 'none'}"
        )
    if message.startswith("Could not override") or "Key '" in message and "is not in struct" in message:
        key = message.split("'")[1] if "'" in message else "?"
        if "." not in key:
            return (
                f"unknown config group or key {key!r}{did_you_mean(key, list(groups) + TOP_LEVEL_KEYS)}; "
                f"groups: {', '.join(groups)}; `blocknas config show` prints the whole config"
            )
        return _unknown_key_message(key, overrides, source)
    return message


def _unknown_key_message(key: str, overrides: list[str], source: ConfigSource) -> str:
    """Name the near misses among the keys of the section the override points into."""
    parent, _, leaf = key.rpartition(".")
    clean = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith(key)]
    try:
        cfg = OmegaConf.to_container(compose_config(clean, source), resolve=False)
        for part in parent.split("."):
            cfg = cfg[part]
        valid = sorted(cfg) if isinstance(cfg, dict) else []
    except (ConfigError, KeyError, TypeError):
        valid = []
    text = f"unknown config key {key!r}{did_you_mean(leaf, valid).replace(chr(39), chr(39) + parent + '.', 1)}"
    if valid:
        text += f"; valid keys of {parent}: {', '.join(valid)}"
    return text + _moved_key_hint(key)


def _moved_key_hint(key: str) -> str:
    if key.lstrip("+") == "scorer.dataset":
        return (
            "; the data of a training scorer is its own config group now: data=mnist, data=digits, data=npz "
            "data.path=..., data=csv ..., data=image_folder ... (`blocknas plugins` lists the loaders)"
        )
    return ""


def load_settings(overrides: list[str], source: ConfigSource = ConfigSource(), check_space: bool = True) -> RunSettings:
    """Compose and validate. ``check_space=False`` (commands that only touch the store) skips building the
    search space, which imports torch and may import the user's code."""
    cfg = composed(
        list(overrides),
        source.config_name,
        source.config_dir,
        CONFIG_MODULE,
        lambda: compose_config(overrides, source),
    )
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as exc:
        raise ConfigError(f"{exc.full_key} must be set (it has no default): {exc.full_key}=...") from exc
    except OmegaConfBaseException as exc:
        raise ConfigError(f"could not resolve the config: {exc}") from exc
    return settings_from_dict(resolved, OmegaConf.to_yaml(cfg, resolve=True), check_space)


def _require(section: dict, key: str, kind: type, where: str):
    value = section.get(key)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}.{key} must be a {kind.__name__}, got {value!r}")
    if kind is float and value != value:  # NaN
        raise ConfigError(f"{where}.{key} must be a number, got nan")
    return value


def _within(value, low, high, where: str, why: str):
    if not low <= value <= high:  # NaN fails every comparison
        raise ConfigError(f"{where} must be between {low:g} and {high:g} ({why}), got {value}")
    return value


def _positive(value, where: str, allow_zero: bool = False):
    if not value >= 0 or (value == 0 and not allow_zero):  # NaN fails every comparison
        raise ConfigError(f"{where} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value


def _check_sections(cfg: dict) -> None:
    try:
        check_keys(cfg, TOP_LEVEL_KEYS, "config")
        for section, keys in SECTION_KEYS.items():
            check_keys(cfg.get(section) or {}, keys, section)
    except SettingsError as exc:
        raise ConfigError(str(exc).replace("'config.", "'")) from exc


EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _experiment_name(cfg: dict) -> str:
    name = str(cfg.get("name") or "")
    if not EXPERIMENT_NAME.fullmatch(name):
        raise ConfigError(
            f"name must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit "
            f"(it names a directory under paths.output_dir), got {name[:120]!r}"
        )
    return name


def _estimator(scorer_cfg: dict) -> EstimatorSettings:
    try:
        return EstimatorSettings(
            str(scorer_cfg.get("estimator", "avg_context")),
            float(scorer_cfg.get("sample_fraction", 0.05)),
            int(scorer_cfg.get("sample_seed", 0)),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"scorer.{exc}") from exc


def _targets(targets_cfg: dict, space_kind: str | None, space) -> tuple[TargetSpec, ...]:
    """``targets.*``, each checked against the space (``space`` None: a command that builds none)."""
    targets = tuple(_target(tname, tcfg) for tname, tcfg in targets_cfg.items())
    if not targets:
        raise ConfigError(
            "targets is empty: configure at least one hardware target (`blocknas config show` prints the defaults)"
        )
    for target in targets:
        kind = TARGET_KINDS.get(target.kind)
        if kind.spaces and space_kind not in kind.spaces:
            raise ConfigError(
                f"targets.{target.name}: kind {target.kind} works on space.kind "
                f"{' or '.join(kind.spaces)}, not {space_kind!r}"
            )
        if kind.needs_modules and space is not None and not space.builds_modules:
            raise ConfigError(
                f"targets.{target.name}: measured targets time the space's blocks in torch, which this space "
                "does not build; give this space's costs as a network_table target (a per-network CSV) instead"
            )
    return targets


def _refine_and_search(cfg: dict, solver: SolverSettings, first_target: str) -> tuple[RefineSettings, SearchSettings]:
    """``refine.*`` and ``search.*``: two ways to spend evaluations, checked against each other and the solver."""
    try:
        refine = RefineSettings.from_dict(cfg.get("refine"))
        search = _search_settings(cfg.get("search"))
    except (TypeError, ValueError, SettingsError) as exc:
        raise ConfigError(str(exc)) from exc
    if refine.rounds and solver.predictor != "linear":
        raise ConfigError(
            "refine.rounds > 0 learns on top of the linear block table: set solver.predictor=linear "
            "(or refine.rounds=0 to keep the flops predictor without refinement)"
        )
    if search.whole_networks and not solver.budgets:
        raise ConfigError(
            f"search={search.method} searches within budgets: set at least one, e.g. "
            f"+solver.budgets.{first_target}=..."
            + ("; LayerNAS buckets the first one's cost" if search.method == "layernas" else "")
        )
    if search.whole_networks and refine.rounds:
        raise ConfigError(
            f"search={search.method} and refine.rounds > 0 are two ways to spend the evaluations: "
            "set refine.rounds=0, or search=blocks"
        )
    return refine, search


def settings_from_dict(cfg: dict, config_yaml: str, check_space: bool = True) -> RunSettings:
    _check_sections(cfg)
    name = _experiment_name(cfg)

    space_cfg = cfg["space"]
    scorer_cfg = dict(cfg["scorer"])
    cluster = _cluster_settings(cfg["cluster"], cfg["resources"])
    scorer_kind, scorer_settings, trains = _scorer(scorer_cfg, space_cfg.get("kind"))
    data = cfg.get("data") if trains else None
    if trains:
        _check_data(data)
    space = _space(space_cfg, scorer_kind, trains) if check_space else None
    if trains and space is not None:
        _check_data_fits(data, space, scorer_settings)
    space_definition = dict(space_cfg)
    if space is not None and hasattr(space, "fingerprint") and (fingerprint := space.fingerprint()):
        # A user's own modules, a parent model's files: they go into every job hash, and workers check them.
        space_definition["fingerprint"] = fingerprint
    device = scorer_cfg.get("device", "auto")
    if device not in ("cpu", "cuda", "auto"):
        raise ConfigError(f"scorer.device must be cpu, cuda or auto, got {device!r}")
    estimator = _estimator(scorer_cfg)
    targets = _targets(cfg.get("targets") or {}, space_cfg.get("kind"), space)
    solver = _solver_settings(cfg["solver"], {t.name for t in targets})
    storage_url = _storage_url(cfg["storage"]["url"])
    refine, search = _refine_and_search(cfg, solver, targets[0].name)
    science = {
        "name": name,
        "space": space_cfg,
        "scorer": scorer_cfg,
        "targets": cfg.get("targets"),
        "solver": cfg["solver"],
        "refine": cfg.get("refine"),
    }
    if search.method != "blocks":  # only then: configs from before search.* keep their hashes
        science["search"] = {"method": search.method, "seed": search.seed, **asdict(search.settings)}
    if trains:
        science["data"] = data
    return RunSettings(
        name=name,
        space=space,
        space_definition=space_definition,
        scorer=ScorerSettings(
            scorer_kind, scorer_settings, trains, data, device, estimator, *_objective(scorer_cfg, trains, space_cfg)
        ),
        targets=targets,
        solver=solver,
        cluster=cluster,
        storage_url=storage_url,
        tracking=_tracking_settings(cfg["tracking"], trains),
        output_dir=Path(cfg["paths"]["output_dir"]),
        state_dir=Path(cfg["paths"]["state_dir"]),
        config_yaml=config_yaml,
        config_hash=content_hash(science),
        refine=refine,
        search=search,
        scheduler=_scheduler_settings(cfg.get("scheduler")),
    )


SECRET_QUERY_KEYS = {"password", "passwd", "pwd", "sslpassword", "token", "access_token", "secret", "api_key"}
SECRET_KEY_PARTS = ("pass", "pwd", "secret", "token", "api_key", "apikey", "credential")


def _secret_key(key: str) -> bool:
    key = key.lower()
    return key in SECRET_QUERY_KEYS or any(part in key for part in SECRET_KEY_PARTS)


def redacted(value: str) -> str:
    """``value`` safe to print whatever its shape: anything before an ``@`` of the address and every
    secret-looking query value replaced by ``***`` (also where the URL is malformed)."""
    from urllib.parse import parse_qsl

    base, sep, query = str(value).partition("?")
    scheme, colon_slashes, rest = base.rpartition("://") if "://" in base else ("", "", base)
    if "@" in rest.split("/", 1)[0] or ("@" in rest and "/" not in rest):
        rest = "***@" + rest.rsplit("@", 1)[1]
    pairs = parse_qsl(query, keep_blank_values=True)
    query = "&".join(f"{k}={'***' if _secret_key(k) else v}" for k, v in pairs) if pairs else query
    return f"{scheme}{colon_slashes}{rest}{sep}{query}"[:200]


def _url(value, key: str, hint: str = "") -> str:
    """A URL that holds no secret: no password before the host, none in the query string (any case)."""
    from urllib.parse import parse_qsl

    value = str(value)
    address = value.split("://", 1)[-1].split("/", 1)[0]
    secrets = sorted({k for k, _ in parse_qsl(value.partition("?")[2]) if _secret_key(k)})
    if secrets or ":" in address.rpartition("@")[0]:
        where = f"the query parameter {secrets[0]!r}" if secrets else "a password before the host"
        raise ConfigError(
            f"{key} must not contain a secret (it has {where}), since URLs are logged and stored; "
            f"{hint or 'pass it through the environment'}"
        )
    if "://" not in value and not value.startswith(("sqlite:", "file:")):
        raise ConfigError(
            f"{key} must be a URL such as sqlite:///path or postgresql+psycopg://..., got {redacted(value)!r}"
        )
    return value


def _storage_url(value) -> str:
    """A store URL of a supported database whose driver is installed: SQLite, or PostgreSQL (psycopg)."""
    from sqlalchemy.engine import make_url

    url = _url(value, "storage.url", "set it in the PGPASSWORD environment variable")
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except Exception:  # noqa: BLE001 - SQLAlchemy's ArgumentError and friends: all mean a malformed URL
        raise ConfigError(
            f"storage.url is not a database URL: {redacted(url)!r}; use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB"
        ) from None
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"storage.url: {backend} is not supported; use sqlite:///PATH (embedded) or "
            "postgresql+psycopg://USER@HOST:PORT/DB (clusters)"
        )
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as exc:
        raise ConfigError(
            f"storage.url needs the {parsed.drivername} driver, which is not installed ({exc.name}); "
            "for PostgreSQL use postgresql+psycopg://... with pip install '.[postgres]'"
        ) from None
    return url


def _scorer(scorer_cfg: dict, space_kind: str | None) -> tuple[str, object, bool]:
    """The scorer's registered name, its typed settings, and whether it trains networks."""
    from blocknas.workers.scoring import COMMON_KEYS, SCORERS
    from blocknas.workers.typed import field_names

    kind = scorer_cfg.get("kind")
    try:
        entry = SCORERS.get(kind, "scorer.kind")
        if entry.spaces and space_kind not in entry.spaces:
            raise ConfigError(
                f"scorer.kind={kind} works on space.kind {' or '.join(entry.spaces)}, not "
                f"{space_kind!r}" + (" (space=nb201)" if "nb201" in entry.spaces else "")
            )
        estimator = scorer_cfg.get("estimator", "avg_context")
        if entry.estimators and estimator not in entry.estimators:
            raise ConfigError(
                f"scorer.kind={kind} works with scorer.estimator={' or '.join(entry.estimators)}, not {estimator!r}"
            )
        if entry.settings is not None:
            check_keys(scorer_cfg, [*COMMON_KEYS, *field_names(entry.settings)], "scorer")
        settings = entry.parse_settings({k: v for k, v in scorer_cfg.items() if k not in COMMON_KEYS})
    except (RegistryError, SettingsError) as exc:
        message = str(exc)
        raise ConfigError(
            message + (_moved_key_hint("scorer.dataset") if "'scorer.dataset'" in message else "")
        ) from exc
    return kind, settings, entry.trains


def _objective(scorer_cfg: dict, trains: bool, space_cfg: dict) -> tuple[str, str]:
    """``scorer.objective`` (a key of the scorer's result) and ``scorer.direction``: a block's value."""
    name, direction = scorer_cfg.get("objective", "accuracy"), scorer_cfg.get("direction", "maximize")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", name):
        raise ConfigError(f"scorer.objective must name a key of the scorer's result (e.g. loss), got {name!r}")
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"scorer.direction must be maximize or minimize, got {direction!r}")
    if (name, direction) == ("accuracy", "minimize"):
        raise ConfigError("scorer.objective=accuracy is maximised: scorer.direction=maximize (or another objective)")
    if name != "accuracy" and (not trains or space_cfg.get("kind") == "llm"):
        raise ConfigError(
            f"scorer.objective={name}: only a scorer that trains networks of a cnn or torch space returns "
            f"other metrics; scorer.kind={scorer_cfg.get('kind')} returns accuracy (leave scorer.objective out)"
        )
    return name, direction


def _check_data(data: dict | None) -> None:
    from blocknas.workers.data import DataError, data_settings

    if not isinstance(data, dict) or "kind" not in data:
        raise ConfigError("data must name a dataset: data=mnist, data=digits, data=npz data.path=..., ...")
    try:
        data_settings(data)
    except (DataError, RegistryError) as exc:
        raise ConfigError(str(exc)) from exc


def _check_data_fits(data_cfg: dict, space, scorer_settings) -> None:
    """Load the data (once per process) and check it against the space and the scorer's split sizes."""
    from blocknas.workers.data import DataError, check_fits, load_dataset
    from blocknas.workers.spaces.torch_space import TorchSpace

    try:
        data = load_dataset(data_cfg)
        check_fits(data, space.input_shape[1:], space.num_classes, "torch" if isinstance(space, TorchSpace) else "")
    except (DataError, RegistryError) as exc:
        raise ConfigError(str(exc)) from exc
    wanted = getattr(scorer_settings, "train_size", 0) + getattr(scorer_settings, "val_size", 0)
    if wanted > len(data.labels):
        raise ConfigError(
            f"scorer.train_size + scorer.val_size = {wanted} exceeds the {len(data.labels)} "
            f"examples of dataset {data.name!r}"
        )


def _space(space_cfg: dict, scorer_kind: str, trains: bool):
    from blocknas.workers.spaces import SearchSpaceError, space_from_dict

    try:
        space = space_from_dict(space_cfg)
    except SettingsError as exc:
        raise ConfigError(str(exc)) from exc
    except (SearchSpaceError, TypeError, ValueError) as exc:
        message = str(exc)
        raise ConfigError(
            message if message.startswith(("space", "unknown config key")) else f"space: {message}"
        ) from exc
    kind = space_cfg.get("kind")
    if trains and not space.builds_modules:
        raise ConfigError(
            f"scorer.kind={scorer_kind} trains networks, but space.kind={kind} builds none "
            "(it is tabular); for space.kind=nb201 use scorer=nb201_tabular"
        )
    return space


def _target(name: str, tcfg: dict) -> TargetSpec:
    if not isinstance(tcfg, dict):
        raise ConfigError(f"targets.{name} must be a mapping with kind and metric, got {tcfg!r}")
    try:
        return target_from_config(name, tcfg)
    except (RegistryError, SettingsError) as exc:
        raise ConfigError(str(exc)) from exc
