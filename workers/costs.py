"""Per-block cost tables for a search space: what the hardware targets read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch

from blocknas.workers.profiling import count_flops, count_params, measure_latency_ms
from blocknas.workers.spaces import Space
from blocknas.workers.spaces.protocol import ModuleSpace, TabularSpace

ANALYTIC_METRICS = ("flops", "params")


@dataclass(frozen=True)
class CostTable:
    """``blocks[(slot_index, choice)]`` is the block's cost; ``fixed`` the stem and head, paid by every net."""

    metric: str
    fixed: float
    blocks: dict[tuple[int, str], float]

    def total(self, choices: tuple[str, ...] | list[str]) -> float:
        return self.fixed + sum(self.blocks[(i, c)] for i, c in enumerate(choices))


def analytic_costs(space: Space, metric: str) -> CostTable:
    """FLOPs (multiply-accumulates) or parameter count of every block, computed, not measured."""
    if metric not in ANALYTIC_METRICS:
        raise ValueError(f"unknown analytic metric {metric!r}; expected one of {ANALYTIC_METRICS}")
    if not space.builds_modules:  # a tabular space computes its costs per edge
        table = cast(TabularSpace, space)
        blocks = {(i, c): table.edge_cost(c, metric) for i, slot in enumerate(space.slots) for c in slot.choices}
        return CostTable(metric, table.fixed_cost(metric), blocks)
    return _module_costs(cast(ModuleSpace, space), metric)


def _module_costs(space: ModuleSpace, metric: str) -> CostTable:

    def cost(module: torch.nn.Module, shape: tuple[int, ...]) -> float:
        return float(count_flops(module, shape) if metric == "flops" else count_params(module))

    fixed = cost(space.build_stem(), space.input_shape) + cost(space.build_head(), space.head_input_shape())
    blocks = {
        (i, choice): cost(space.build_block(i, choice), space.slot_input_shape(i))
        for i, slot in enumerate(space.slots)
        for choice in slot.choices
    }
    return CostTable(metric, fixed, blocks)


def depth_costs(space: ModuleSpace) -> CostTable:
    """Layers with weights (convolutions and linear layers) of every block: a network's depth adds up."""

    def depth(module: torch.nn.Module) -> float:
        return float(sum(isinstance(m, torch.nn.Conv2d | torch.nn.Linear) for m in module.modules()))

    blocks = {
        (i, choice): depth(space.build_block(i, choice))
        for i, slot in enumerate(space.slots)
        for choice in slot.choices
    }
    return CostTable("depth", depth(space.build_stem()) + depth(space.build_head()), blocks)


def measured_latency(space: ModuleSpace, warmup: int, repeats: int, threads: int, device: str = "cpu") -> CostTable:
    """Latency of every block in milliseconds, timed in isolation on its slot's input (batch 1), on
    ``device``.

    A network's latency is then the fixed part (stem + head, timed the same way) plus the sum of its
    blocks, as in Once-for-All's per-block lookup tables.
    """
    torch.manual_seed(0)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fixed = measure_latency_ms(
            space.build_stem(), space.input_shape, warmup, repeats, device=device
        ) + measure_latency_ms(space.build_head(), space.head_input_shape(), warmup, repeats, device=device)
        blocks = {
            (i, choice): measure_latency_ms(
                space.build_block(i, choice), space.slot_input_shape(i), warmup, repeats, device=device
            )
            for i, slot in enumerate(space.slots)
            for choice in slot.choices
        }
    finally:
        torch.set_num_threads(previous_threads)
    return CostTable("latency_ms", fixed, blocks)


def measured_latency_of(
    space_definition: dict, warmup: int, repeats: int, threads: int, device: str = "cpu"
) -> tuple[CostTable, dict]:
    """``measured_latency`` of the space a config defines, built where it runs (a Ray worker), and the
    fingerprint of the machine that timed it (with its GPU's name when timed on one)."""
    from blocknas.workers.machine import machine_fingerprint
    from blocknas.workers.spaces import space_from_dict

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("a measured target with device=cuda was placed on a worker with no CUDA device")
    fingerprint = machine_fingerprint() | ({"gpu": torch.cuda.get_device_name()} if device == "cuda" else {})
    return measured_latency(
        cast(ModuleSpace, space_from_dict(space_definition)), warmup, repeats, threads, device
    ), fingerprint
