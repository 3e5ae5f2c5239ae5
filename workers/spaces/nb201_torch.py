"""The NAS-Bench-201 network as PyTorch modules (Dong & Yang, ICLR 2020), for scores computed from the
network itself (training-free proxies), checked against the tabular space's FLOPs and parameters.

Macro skeleton: a 3x3 stem convolution with BatchNorm; three stages of ``cells_per_stage`` cells (16, 32,
64 channels) with a residual reduction block between stages (ReLU-conv3x3/2-BN, ReLU-conv3x3-BN, and a
2x2 average pool plus 1x1 convolution as the shortcut); BatchNorm, ReLU, global average pooling and a
linear classifier. A cell is a DAG of 4 nodes: node j sums the operations on its edges from every earlier
node; the cell's output is node 3. Operations: ``none`` (zero), ``skip_connect`` (identity),
``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU-conv-BN, no bias), ``avg_pool_3x3`` (stride 1, padding 1).
"""

from __future__ import annotations

import torch
from torch import nn

from blocknas.workers.spaces.nb201 import EDGES, OPS, Nb201Space

# (target node, source node) of each edge, in the order of EDGES ("1<-0", "2<-0", ...)
EDGE_NODES = tuple((int(e[0]), int(e[-1])) for e in EDGES)


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(c_out)
    )


def operation(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name in ("nor_conv_1x1", "nor_conv_3x3"):
        return relu_conv_bn(channels, channels, int(name[-1]))
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 operation {name!r}; one of {OPS}")


class Cell(nn.Module):
    def __init__(self, choices: tuple[str, ...], channels: int):
        super().__init__()
        self.edges = nn.ModuleList(operation(c, channels) for c in choices)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            nodes.append(
                sum(op(nodes[source]) for op, (t, source) in zip(self.edges, EDGE_NODES, strict=True) if t == target)
            )
        return nodes[3]


class ReductionBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = relu_conv_bn(c_in, c_out, 3, stride=2)
        self.conv_b = relu_conv_bn(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class Nb201Network(nn.Module):
    def __init__(self, space: Nb201Space, choices: tuple[str, ...] | list[str]):
        super().__init__()
        if len(choices) != len(EDGES) or any(c not in OPS for c in choices):
            raise ValueError(f"a NAS-Bench-201 cell is {len(EDGES)} operations among {OPS}, got {choices!r}")
        c = space.channels
        layers: list[nn.Module] = [nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)]
        for stage in range(3):
            if stage:
                layers.append(ReductionBlock(c, 2 * c))
                c *= 2
            layers.extend(Cell(tuple(choices), c) for _ in range(space.cells_per_stage))
        layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, space.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_nb201_network(space: Nb201Space, choices: tuple[str, ...] | list[str]) -> Nb201Network:
    return Nb201Network(space, choices)


def input_shape(space: Nb201Space, batch: int = 1) -> tuple[int, int, int, int]:
    return (batch, 3, space.input_size, space.input_size)
