"""Scorers: turn a network job into a measured result. A registry (the ``scorer`` config group's ``kind``).

Two shapes of scorer, registered the same way for built-ins and third parties (``SCORERS.register``, an
entry point of the ``blocknas.scorers`` group, or an import path in ``scorer.kind``):

- a **training scorer** ``evaluate(model, data, settings, device) -> {"accuracy": %, ...}``: blocknas
  builds the job's network from the space (seeded), loads the data, and calls it in the Ray worker;
  ``data`` is a ``blocknas.workers.data.Dataset`` (``data.split(train_size, val_size, seed)`` gives tensors).
  Optional keys of the result: ``loss``, ``train_loss``. A plain function found by entry point or import
  path is a training scorer; give it a ``Settings`` dataclass attribute to have its settings typed.
- a **lookup scorer** ``evaluate(space, choices, settings) -> {"accuracy": %}`` answers from a table
  (NAS-Bench-201), without data or torch; one registered with ``uses_device=True`` (``bld``) is called
  ``evaluate(space, choices, settings, device)`` with the job's ``scorer.device``.

Built-ins: ``swap_in`` (MathNAS swap-in: AdamW training on the data), ``tabular`` (NAS-Bench-201),
``bld`` (Puzzle's blockwise local distillation and replace-one-block scoring, ``blocknas.workers.llm.scorer``) and
the training-free ``proxy_params``, ``proxy_synflow``, ``proxy_grad_norm``, ``proxy_naswot``
(``blocknas.workers.proxies``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from blocknas.workers import proxies
from blocknas.workers.llm import scorer as llm_scorer
from blocknas.workers.records import NetworkJob, NetworkResult, TrainSettings
from blocknas.workers.registry import Registry
from blocknas.workers.typed import SettingsError, from_mapping

if TYPE_CHECKING:  # a space module loads torch: only where a network is scored
    from blocknas.workers.spaces.protocol import ModuleSpace

COMMON_KEYS = ("kind", "device", "estimator", "sample_fraction", "sample_seed", "objective", "direction")
ACCURACY = ("accuracy", "maximize")  # the objective unless scorer.objective names another key of the result


@dataclass(frozen=True)
class ScorerEntry:
    evaluate: Callable
    settings: type | None = None  # a dataclass of the scorer's own settings; None: taken as a free mapping
    trains: bool = True  # training scorer (needs a torch space and data) or lookup scorer
    spaces: tuple[str, ...] = field(default=())  # space kinds it accepts; empty: any space that builds modules
    estimators: tuple[str, ...] = field(default=())  # estimator kinds it accepts; empty: any
    # a lookup scorer's data: settings -> (name, content hash), so changed data never reuses old results
    fingerprint: Callable | None = None
    uses_device: bool = False  # a lookup scorer that runs torch on the job's device (a 4th argument)
    check: Callable | None = None  # (space, settings) -> None, raising ValueError: its input, before jobs run

    def parse_settings(self, values: dict, where: str = "scorer"):
        if self.settings is None:
            return dict(values)
        return from_mapping(self.settings, values, where)


def _adapt(name: str, obj) -> ScorerEntry:
    if isinstance(obj, ScorerEntry):
        return obj
    if not callable(obj):
        raise SettingsError(f"scorer {name!r} is {type(obj).__name__}, not a function or a ScorerEntry")
    return ScorerEntry(obj, getattr(obj, "Settings", None))


SCORERS: Registry[ScorerEntry] = Registry("scorer", _adapt)


def _swap_in(model, data, settings: TrainSettings, device) -> dict:
    from blocknas.workers.training import train_and_evaluate

    outcome = train_and_evaluate(
        model, data.split(settings.train_size, settings.val_size, settings.seed), settings, device
    )
    return {
        "accuracy": outcome.accuracy,
        "loss": outcome.loss,
        "train_loss": outcome.train_loss,
        "curve": outcome.curve,
    }


@dataclass(frozen=True)
class TabularSettings:
    benchmark: str = "nb201"
    dataset: str = "cifar10"

    def __post_init__(self) -> None:
        from blocknas.workers.tabular import NB201_FILES

        if self.benchmark != "nb201":
            raise ValueError(f"scorer.benchmark must be nb201, got {self.benchmark!r}")
        if self.dataset not in NB201_FILES:
            raise ValueError(
                f"scorer.dataset must be one of {sorted(NB201_FILES)} for NAS-Bench-201, got {self.dataset!r}"
            )


def _tabular(space, choices, settings: TabularSettings) -> dict:
    from blocknas.workers.tabular import nb201_accuracies

    return {"accuracy": nb201_accuracies(settings.dataset)[space.network_key(choices)]}


def _proxy_scorer(name: str):
    """The lookup-style scorer of proxy ``name``: ``evaluate(space, choices, settings, device)``."""

    def evaluate(space, choices, settings: proxies.ProxySettings, device="cpu") -> dict:
        from blocknas.workers.proxy_scores import proxy_score  # torch: in the worker only

        return {"accuracy": proxy_score(name, space, choices, settings, device)}

    evaluate.__name__ = f"proxy_{name}"
    return evaluate


SCORERS.register("swap_in", ScorerEntry(_swap_in, TrainSettings))
SCORERS.register("tabular", ScorerEntry(_tabular, TabularSettings, trains=False, spaces=("nb201",)))
for _proxy in proxies.PROXIES:
    SCORERS.register(
        f"proxy_{_proxy}",
        ScorerEntry(
            _proxy_scorer(_proxy),
            proxies.ProxySettings,
            trains=False,
            fingerprint=proxies.minibatch_fingerprint,
            uses_device=True,
            check=lambda space, _settings, name=_proxy: proxies.check_input(name, space),
        ),
    )
SCORERS.register(
    "bld",
    ScorerEntry(
        llm_scorer.evaluate,
        llm_scorer.BldSettings,
        trains=False,
        spaces=("llm",),
        estimators=("base",),
        fingerprint=llm_scorer.text_fingerprint,
        uses_device=True,
        check=llm_scorer.check_text,
    ),
)


def score_network(job: NetworkJob) -> NetworkResult:
    """Run the job's scorer in this (worker) process: a lookup, or build, train and evaluate the network."""
    from blocknas.workers.costs import analytic_costs
    from blocknas.workers.spaces import space_from_dict

    entry = SCORERS.get(job.scorer)
    space = space_from_dict(job.space)
    started = time.perf_counter()
    if not entry.trains:
        if entry.uses_device:
            from blocknas.workers.training import resolve_device

            device = resolve_device(job.device)
            metrics = entry.evaluate(space, job.choices, job.settings, device)
        else:
            device, metrics = None, entry.evaluate(space, job.choices, job.settings)
        params, flops = (analytic_costs(space, m).total(job.choices) for m in ("params", "flops"))
        seconds = time.perf_counter() - started
        return _result(metrics, seconds, int(params), int(flops), str(device or "table"), False, job.objective)
    import torch

    from blocknas.workers.data import load_dataset
    from blocknas.workers.profiling import count_flops, count_params
    from blocknas.workers.training import resolve_device, seed_everything

    seed = job.settings.get("seed", 0) if isinstance(job.settings, dict) else getattr(job.settings, "seed", 0)
    seed_everything(seed, job.threads)
    modules = cast("ModuleSpace", space)  # a training scorer's space builds torch modules (checked with the config)
    model = modules.build_network(job.choices)
    params, flops = count_params(model), count_flops(model, modules.input_shape)
    data = load_dataset(job.data)
    device = resolve_device(job.device)
    torch.manual_seed(seed)  # re-seed after profiling so the initialisation does not depend on it
    model = modules.build_network(job.choices)
    started = time.perf_counter()
    metrics = entry.evaluate(model, data, job.settings, device)
    return _result(metrics, time.perf_counter() - started, params, flops, str(device), objective=job.objective)


class ScorerResultError(TypeError):
    """A scorer returned what cannot be stored: no numeric ``accuracy``, or a training scorer's accuracy
    outside 0..100 percent (a fraction, most often). The run stops at the first one (nothing else is right)."""


def check_result(metrics, trains: bool, objective: tuple[str, str] = ACCURACY) -> float:
    """The block value of a scorer's result: its ``accuracy``, or the key ``scorer.objective`` names (negated
    when minimised: blocknas maximises values); ``ScorerResultError`` says what is wrong and how to fix it."""
    if tuple(objective) != ACCURACY:
        name, direction = objective
        value = metrics.get(name) if isinstance(metrics, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            keys = ", ".join(sorted(metrics)) if isinstance(metrics, dict) else type(metrics).__name__
            raise ScorerResultError(
                f"scorer.objective={name}: the scorer's result must hold a finite number under {name!r}, got "
                f"{value!r} (its keys: {keys})"
            )
        return float(value) if direction == "maximize" else -float(value)
    accuracy = metrics.get("accuracy") if isinstance(metrics, dict) else None
    if isinstance(accuracy, bool) or not isinstance(accuracy, int | float):
        raise ScorerResultError(f"a scorer must return a dict with a numeric 'accuracy' (percent), got {metrics!r}")
    if not math.isfinite(accuracy):
        raise ScorerResultError(f"the scorer returned accuracy {accuracy}: it must be a finite number (percent)")
    if trains and 0 < accuracy < 1:
        raise ScorerResultError(
            f"the scorer returned accuracy {accuracy:g}, which blocknas reads as {accuracy:g} %: return percent "
            f"(accuracy * 100 = {accuracy * 100:g}), the unit every block table, front and target is in"
        )
    if trains and not 0 <= accuracy <= 100:
        raise ScorerResultError(f"the scorer returned accuracy {accuracy:g}: a training scorer's is 0..100 percent")
    return float(accuracy)


def _result(
    metrics,
    seconds: float,
    params: int,
    flops: int,
    device: str,
    trains: bool = True,
    objective: tuple[str, str] = ACCURACY,
) -> NetworkResult:
    accuracy = check_result(metrics, trains, objective)

    def optional(key: str) -> float | None:
        value = metrics.get(key)
        return None if value is None else float(value)

    curve = metrics.get("curve") or {}
    if not isinstance(curve, dict):
        raise TypeError(
            f"a scorer's 'curve' must be a dict {{metric: [(step, value), ...]}}, got {type(curve).__name__}"
        )
    return NetworkResult(
        accuracy=accuracy,
        loss=optional("loss"),
        train_loss=optional("train_loss"),
        train_seconds=seconds,
        params=params,
        flops=flops,
        device=device,
        curve={str(k): [(int(s), float(v)) for s, v in points] for k, points in curve.items()},
    )
