"""The project's search space: 3 slots on 8x8 digits, each choosing among the project's own blocks."""

from functools import partial

from torch import nn

from blocknas import TorchSlot, TorchSpace
from digits_nas.blocks import Bottleneck, ConvBlock, SqueezeExcite


def make_space(width: int = 16, slots: int = 3, classes: int = 10) -> TorchSpace:
    candidates = {
        "skip": nn.Identity,
        "conv": partial(ConvBlock, width),
        "se": partial(SqueezeExcite, width),
        "bottleneck": partial(Bottleneck, width),
    }
    return TorchSpace(
        name="digits_blocks",
        input_shape=(1, 8, 8),
        num_classes=classes,
        stem=lambda: nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()),
        slots=[TorchSlot(f"s{i}", candidates) for i in range(slots)],
        head=lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes)),
    )
