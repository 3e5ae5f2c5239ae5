"""Candidate blocks of chain CNN spaces, named by compact strings (``skip``, ``conv_k3``, ``mbconv_k5_e3``).

The string is the block's identity: it is part of the block key in the performance table and in MLflow
run names, so the grammar must stay stable. Besides the grammar, a block is any builder
``builder(in_channels, out_channels, stride) -> nn.Module`` in the ``BLOCKS`` registry (built-in:
``resnet_basic``), an entry point of the ``blocknas.blocks`` group, or an import path such as
``my_pkg.blocks:SqueezeExcite``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from blocknas.workers.registry import Registry, RegistryError, did_you_mean, looks_like_import_path

_PATTERNS = {
    "skip": re.compile(r"^skip$"),
    "conv": re.compile(r"^conv_k(?P<k>\d+)$"),
    "sep": re.compile(r"^sep_k(?P<k>\d+)$"),
    "mbconv": re.compile(r"^mbconv_k(?P<k>\d+)_e(?P<e>\d+)$"),
}
GRAMMAR = (
    "skip | conv_k<K> | sep_k<K> | mbconv_k<K>_e<E> (K odd, E >= 1), a registered block, or an import "
    "path package.module:builder"
)
BLOCKS: Registry = Registry("block")


@dataclass(frozen=True)
class BlockSpec:
    kind: str
    kernel: int = 0
    expansion: int = 1


def decode_block(choice: str) -> BlockSpec:
    """Parse a block string; raise ``ValueError`` naming the grammar when it does not parse."""
    for kind, pattern in _PATTERNS.items():
        match = pattern.match(choice)
        if match is None:
            continue
        kernel = int(match.groupdict().get("k") or 0)
        expansion = int(match.groupdict().get("e") or 1)
        if kind != "skip" and (kernel < 1 or kernel % 2 == 0):
            raise ValueError(f"block {choice!r}: kernel size must be odd and positive")
        if expansion < 1:
            raise ValueError(f"block {choice!r}: expansion must be >= 1")
        return BlockSpec(kind, kernel, expansion)
    raise ValueError(f"unknown block {choice!r}{did_you_mean(choice, BLOCKS.names())}; expected {GRAMMAR}")


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual block (MobileNetV2): expand 1x1, depthwise kxk, project 1x1."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(_conv_bn(cin, hidden, 1, 1))
        layers.append(_conv_bn(hidden, hidden, kernel, stride, groups=hidden))
        layers.append(_conv_bn(hidden, cout, 1, 1, act=False))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        out = self.body(x)
        return x + out if self.residual else out


class ResNetBasic(nn.Module):
    """ResNet's basic block: two 3x3 convolutions and a shortcut (1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, 3, stride), _conv_bn(cout, cout, 3, 1, act=False))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else _conv_bn(cin, cout, 1, stride, act=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


BLOCKS.register("resnet_basic", ResNetBasic)


def _registered_builder(choice: str):
    if choice in BLOCKS or looks_like_import_path(choice):
        return BLOCKS.get(choice)
    return None


def build_block(choice: str, cin: int, cout: int, stride: int) -> nn.Module:
    """Build the module for a block string at a slot with the given channels and stride."""
    if not any(p.match(choice) for p in _PATTERNS.values()):
        try:
            builder = _registered_builder(choice)
        except RegistryError as exc:
            raise ValueError(str(exc)) from exc
        if builder is not None:
            module = builder(cin, cout, stride)
            if not isinstance(module, nn.Module):
                raise ValueError(f"block {choice!r}: its builder returned {type(module).__name__}, not an nn.Module")
            return module
    spec = decode_block(choice)
    if spec.kind == "skip":
        if cin != cout or stride != 1:
            raise ValueError(f"block 'skip' needs in == out channels and stride 1, got {cin}->{cout} stride {stride}")
        return nn.Identity()
    if spec.kind == "conv":
        return _conv_bn(cin, cout, spec.kernel, stride)
    if spec.kind == "sep":
        return nn.Sequential(_conv_bn(cin, cin, spec.kernel, stride, groups=cin), _conv_bn(cin, cout, 1, 1))
    return MBConv(cin, cout, spec.kernel, stride, spec.expansion)
