"""Hardware-target kinds of a run's config (``targets.NAME.kind``), a registry like every other strategy.

Each kind owns its typed settings (the keys of ``targets.NAME``), what goes into its version besides its
definition (the measuring machine, the file's content), and how its per-block costs are computed:

- ``analytic``: FLOPs or parameters, computed from the space;
- ``measured``: latency, each block timed on a Ray worker, on its CPU or (``device: cuda``) a whole GPU;
- ``network_table``: whole-network measurements from a CSV, turned into block costs by substitution;
- ``llm``: a language-model space's memory with the KV cache (computed), prefill or decode runtime
  (timed on a Ray worker), at a batch and sequence length;
- ``structure``: the network's ``depth`` (layers with weights), for DeepMAD's effectiveness constraint.

A third-party kind is a ``TargetKind`` registered here, by entry point of ``blocknas.target_kinds`` or by
import path. Importing this module loads neither torch nor Ray: ``costs`` imports what it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from blocknas.workers.registry import Registry
from blocknas.workers.typed import from_mapping

ANALYTIC_METRICS = ("flops", "params")  # workers.costs computes them
TABLE_METRICS = ("latency_ms", "energy_mj", "memory_mib")
LLM_METRICS = ("memory_mib", "runtime_ms", "decode_ms", "workload_ms")  # workers.llm.costs computes or measures them


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
    options: tuple[tuple[str, object], ...] = ()  # settings of other kinds (llm: batch, sequence, ...)
    device: str = "cpu"  # measured: where the blocks are timed (cpu or cuda)

    def definition(self) -> dict:
        if self.options:
            return {"kind": self.kind, "metric": self.metric, **dict(self.options)}
        if self.kind == "network_table":
            return {
                "kind": self.kind,
                "metric": self.metric,
                "file": self.file,
                "column": self.column,
                "key_column": self.key_column,
            }
        # the device only when not the CPU: targets defined before it existed keep their versions
        return {
            "kind": self.kind,
            "metric": self.metric,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "threads": self.threads,
        } | ({"device": self.device} if self.device != "cpu" else {})


@dataclass(frozen=True)
class TargetKind:
    settings: type  # a dataclass: the keys of targets.NAME (kind included)
    spec: Callable  # (name, settings) -> TargetSpec
    costs: Callable  # (run settings, plan, target) -> (CostTable, measured_on label or None)
    version_extra: Callable = lambda settings, target, plan: {}  # what its costs depend on besides the definition
    needs_modules: bool = False  # times torch modules: the space must build them
    per_network: bool = False  # its costs are measured per whole network (the refine loop re-measures them)
    spaces: tuple[str, ...] = ()  # the space kinds it costs; empty: any


@dataclass(frozen=True)
class AnalyticSettings:
    kind: str
    metric: str

    def __post_init__(self) -> None:
        if self.metric not in ANALYTIC_METRICS:
            raise ValueError(f"metric must be one of {ANALYTIC_METRICS} for analytic targets, got {self.metric!r}")


@dataclass(frozen=True)
class MeasuredSettings:
    kind: str
    metric: str = "latency_ms"
    warmup: int = 10
    repeats: int = 30
    threads: int = 1
    device: str = "cpu"  # cuda: timed on a whole GPU of the cluster (each sample waits for the kernels)

    def __post_init__(self) -> None:
        if self.metric != "latency_ms":
            raise ValueError(f"metric must be latency_ms for measured targets, got {self.metric!r}")
        if self.warmup < 0 or self.repeats < 1 or self.threads < 1:
            raise ValueError("warmup must be >= 0, repeats and threads >= 1")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")


@dataclass(frozen=True)
class StructureSettings:
    kind: str
    metric: str = "depth"

    def __post_init__(self) -> None:
        if self.metric != "depth":
            raise ValueError(f"metric must be depth for structure targets, got {self.metric!r}")


def _structure_costs(settings, plan, target: TargetSpec):
    from blocknas.workers.costs import depth_costs

    return depth_costs(settings.space), None


@dataclass(frozen=True)
class NetworkTableSettings:
    kind: str
    metric: str
    file: str
    column: str
    key_column: str = "code"

    def __post_init__(self) -> None:
        if self.metric not in TABLE_METRICS:
            raise ValueError(f"metric must be one of {TABLE_METRICS} for network_table targets, got {self.metric!r}")
        if not self.file or not self.column:
            raise ValueError(
                "file and column must be set (the per-network CSV and the column holding this target's values)"
            )


@dataclass(frozen=True)
class LlmTargetSettings:
    """A language-model target (``space.kind: llm``): memory with the KV cache, or runtime measured here: a
    prefill, one decoded token, or a serving workload (``workload_ms``: ``batch`` prompts of ``sequence``
    tokens, then ``generated`` tokens each)."""

    kind: str
    metric: str
    batch: int = 1
    sequence: int = 128
    bytes_per_value: int = 4  # 4: float32 as run here; 2: bf16; 1: FP8
    repeats: int = 5
    threads: int = 1
    generated: int = 0  # workload_ms: the tokens generated after each prompt

    def __post_init__(self) -> None:
        if self.metric not in LLM_METRICS:
            raise ValueError(f"metric must be one of {LLM_METRICS} for llm targets, got {self.metric!r}")
        if min(self.batch, self.sequence, self.bytes_per_value, self.repeats, self.threads) < 1:
            raise ValueError("batch, sequence, bytes_per_value, repeats and threads must be >= 1")
        if (self.metric == "workload_ms") != (self.generated > 0):
            raise ValueError(
                "generated (the tokens each prompt generates) is set for workload_ms targets only, and must be >= 1"
            )


def _llm_spec(name: str, s: LlmTargetSettings) -> TargetSpec:
    options = {"batch": s.batch, "sequence": s.sequence, "bytes_per_value": s.bytes_per_value}
    if s.metric != "memory_mib":
        options |= {"repeats": s.repeats, "threads": s.threads}
    if s.generated:
        options["generated"] = s.generated
    return TargetSpec(name, s.kind, s.metric, repeats=s.repeats, threads=s.threads, options=tuple(options.items()))


def _llm_costs(settings, plan, target: TargetSpec):
    from blocknas.workers.llm.costs import CostSettings, space_costs
    from blocknas.workers.machine import machine_label

    options = dict(target.options)
    costs = CostSettings(
        options["batch"],
        options["sequence"],
        options["bytes_per_value"],
        target.repeats,
        generated=options.get("generated", 0),
    )
    if target.metric == "memory_mib":  # computed, the same everywhere
        return space_costs(settings.space_definition, target.metric, costs)[0], None
    from blocknas.orchestrator.distributed.tasks import measure_on_worker, start_ray

    node, _ = _timing_machine(settings, target)
    start_ray(settings.cluster)
    table, machine = measure_on_worker(
        space_costs, settings.space_definition, target.metric, costs, target.threads, num_cpus=target.threads, node=node
    )
    return table, machine_label(machine)


def _llm_version(settings, target: TargetSpec, plan) -> dict:
    return {} if target.metric == "memory_mib" else {"machine": _timing_machine(settings, target)[1]}


def _analytic_costs(settings, plan, target: TargetSpec):
    from blocknas.workers.costs import analytic_costs

    return analytic_costs(settings.space, target.metric), None


_timing_nodes: dict[tuple[str, int], tuple[str, dict]] = {}


def _timing_machine(settings, target: TargetSpec) -> tuple[str | None, dict]:
    """The node that times a measured target's blocks (None: this machine) and its fingerprint.

    On a local Ray instance the driver's machine is the one that times. On a cluster the node is asked
    (once per process): Ray places a probe with the measurement's resources, the node answers with its
    own fingerprint, and the measurement is pinned to it, so version and label name the same machine.
    """
    from blocknas.workers.machine import machine_fingerprint

    if not settings.cluster.address:
        return None, machine_fingerprint()
    key = (settings.cluster.address, target.threads, target.device)
    if key not in _timing_nodes:
        from blocknas.orchestrator.distributed.tasks import start_ray, timing_node

        start_ray(settings.cluster)
        _require_gpu(settings, target)
        _timing_nodes[key] = timing_node(num_cpus=target.threads, num_gpus=_gpus(target))
    return _timing_nodes[key]


def _gpus(target: TargetSpec) -> int:
    return 1 if target.device == "cuda" else 0  # a whole GPU: a shared one would time its neighbours too


def _require_gpu(settings, target: TargetSpec) -> None:
    if _gpus(target):
        from blocknas.orchestrator.distributed.tasks import require_gpu

        require_gpu(settings.cluster, f"targets.{target.name}.device=cuda")


def _measured_costs(settings, plan, target: TargetSpec):
    from blocknas.orchestrator.distributed.tasks import measure_on_worker, start_ray
    from blocknas.workers.costs import measured_latency_of
    from blocknas.workers.machine import machine_label

    node, _ = _timing_machine(settings, target)
    start_ray(settings.cluster)
    _require_gpu(settings, target)
    table, machine = measure_on_worker(
        measured_latency_of,
        settings.space_definition,
        target.warmup,
        target.repeats,
        target.threads,
        target.device,
        num_cpus=target.threads,
        num_gpus=_gpus(target),
        node=node,
    )
    return table, machine_label(machine)


def _measured_version(settings, target: TargetSpec, plan) -> dict:
    return {"machine": _timing_machine(settings, target)[1]}


def _table_costs(settings, plan, target: TargetSpec):
    from blocknas.orchestrator.targets.network_tables import substitution_costs

    return substitution_costs(settings.space, plan, target), None


def _table_version(settings, target: TargetSpec, plan) -> dict:
    from blocknas.orchestrator.targets.network_tables import file_digest

    # "conversion": block costs from whole networks are never negative (a table stored before that is not reused)
    return {
        "file_sha256": file_digest(target.file),
        "contexts": [list(c) for c in plan.contexts],
        "conversion": "nonnegative",
    }


TARGET_KINDS: Registry[TargetKind] = Registry("target_kind")
TARGET_KINDS.register(
    "analytic", TargetKind(AnalyticSettings, lambda name, s: TargetSpec(name, s.kind, s.metric), _analytic_costs)
)
TARGET_KINDS.register(
    "measured",
    TargetKind(
        MeasuredSettings,
        lambda name, s: TargetSpec(name, s.kind, s.metric, s.warmup, s.repeats, s.threads, device=s.device),
        _measured_costs,
        _measured_version,
        needs_modules=True,
    ),
)
TARGET_KINDS.register(
    "structure",
    TargetKind(
        StructureSettings, lambda name, s: TargetSpec(name, s.kind, s.metric), _structure_costs, needs_modules=True
    ),
)
TARGET_KINDS.register("llm", TargetKind(LlmTargetSettings, _llm_spec, _llm_costs, _llm_version, spaces=("llm",)))
TARGET_KINDS.register(
    "network_table",
    TargetKind(
        NetworkTableSettings,
        lambda name, s: TargetSpec(
            name,
            s.kind,
            s.metric,
            file=str(Path(s.file).expanduser().resolve()),
            column=s.column,
            key_column=s.key_column,
        ),
        _table_costs,
        _table_version,
        per_network=True,
    ),
)


def target_from_config(name: str, config: dict) -> TargetSpec:
    """``targets.NAME`` as a ``TargetSpec`` (``RegistryError`` / ``SettingsError`` name what is wrong)."""
    kind = TARGET_KINDS.get(config.get("kind"), f"targets.{name}.kind")
    return kind.spec(name, from_mapping(kind.settings, config, f"targets.{name}"))
