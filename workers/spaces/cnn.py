"""A chain-structured CNN search space: a fixed stem, ``m`` block slots, a fixed classifier head.

Every slot has fixed input/output channels and stride, so each candidate block is interchangeable at its
slot and its cost depends only on the slot, which is what makes block costs additive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from blocknas.workers.spaces._blocks import build_block
from blocknas.workers.typed import check_keys

CNN_KEYS = [
    "kind",
    "name",
    "input_channels",
    "input_size",
    "num_classes",
    "stem_channels",
    "stem_stride",
    "head_channels",
    "base",
    "slots",
]
SLOT_KEYS = ["name", "in_channels", "out_channels", "stride", "choices"]


class SearchSpaceError(ValueError):
    """The search-space definition is invalid."""


@dataclass(frozen=True)
class SlotSpec:
    name: str
    in_channels: int
    out_channels: int
    stride: int
    choices: tuple[str, ...]

    def key(self, choice: str) -> str:
        return f"{self.name}:{choice}"


@dataclass(frozen=True)
class CnnSpace:
    name: str
    input_channels: int
    input_size: int
    num_classes: int
    stem_channels: int
    stem_stride: int
    slots: tuple[SlotSpec, ...]
    head_channels: int | None = None  # a 1x1 conv to this many features before pooling; None: pool directly
    base_choices: tuple[str, ...] | None = None  # the base network N~; None: each slot's first choice
    connectivity = None  # no structural rule: every chain of blocks is a valid network
    builds_modules = True  # its networks are torch modules: trainable, profiled and timed per block

    @classmethod
    def from_dict(cls, spec: dict) -> CnnSpace:
        """Build and validate a space from its config (``conf/space/*.yaml``)."""
        check_keys(spec, CNN_KEYS, "space")
        for i, s in enumerate(spec.get("slots") or []):
            if isinstance(s, dict):
                check_keys(s, SLOT_KEYS, f"space.slots[{i}]")
        try:
            slots = tuple(
                SlotSpec(
                    name=str(s["name"]),
                    in_channels=int(s["in_channels"]),
                    out_channels=int(s["out_channels"]),
                    stride=int(s.get("stride", 1)),
                    choices=tuple(str(c) for c in s["choices"]),
                )
                for s in spec["slots"]
            )
            space = cls(
                name=str(spec["name"]),
                input_channels=int(spec["input_channels"]),
                input_size=int(spec["input_size"]),
                num_classes=int(spec["num_classes"]),
                stem_channels=int(spec["stem_channels"]),
                stem_stride=int(spec.get("stem_stride", 1)),
                slots=slots,
                head_channels=int(spec["head_channels"]) if spec.get("head_channels") else None,
                base_choices=tuple(str(c) for c in spec["base"]) if spec.get("base") else None,
            )
        except KeyError as exc:
            raise SearchSpaceError(f"search space is missing the field {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise SearchSpaceError(f"space: {exc}") from exc
        space.validate()
        return space

    def validate(self) -> None:
        if not self.slots:
            raise SearchSpaceError(f"space {self.name!r} has no slots")
        for name in ("input_channels", "input_size", "num_classes", "stem_channels", "stem_stride"):
            if getattr(self, name) < 1:
                raise SearchSpaceError(f"space.{name} must be a positive integer, got {getattr(self, name)}")
        if self.head_channels is not None and self.head_channels < 1:
            raise SearchSpaceError(f"space.head_channels must be a positive integer, got {self.head_channels}")
        channels = self.stem_channels
        names = set()
        for slot in self.slots:
            if slot.name in names or ":" in slot.name:
                raise SearchSpaceError(f"slot name {slot.name!r} is repeated or contains ':'")
            names.add(slot.name)
            if slot.in_channels != channels:
                raise SearchSpaceError(
                    f"slot {slot.name!r} takes {slot.in_channels} channels but the previous stage gives "
                    f"{channels}; set in_channels: {channels}"
                )
            if len(slot.choices) < 1 or len(set(slot.choices)) != len(slot.choices):
                raise SearchSpaceError(f"slot {slot.name!r} needs at least one choice and no repeats")
            for choice in slot.choices:
                try:
                    build_block(choice, slot.in_channels, slot.out_channels, slot.stride)
                except ValueError as exc:
                    raise SearchSpaceError(f"slot {slot.name!r}: {exc}") from exc
            channels = slot.out_channels
        if self.base_choices is not None and (
            len(self.base_choices) != len(self.slots)
            or any(b not in s.choices for b, s in zip(self.base_choices, self.slots, strict=False))
        ):
            raise SearchSpaceError(f"space.base must name one choice of each of the {len(self.slots)} slots")

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """Shape (batch 1) of the images the network takes."""
        return (1, self.input_channels, self.input_size, self.input_size)

    @property
    def base(self) -> tuple[str, ...]:
        return self.base_choices or tuple(s.choices[0] for s in self.slots)

    @staticmethod
    def is_network(choices) -> bool:
        """Whether ``choices`` make a real network: every choice of blocks does."""
        return True

    @staticmethod
    def network_key(choices: tuple[str, ...] | list[str]) -> str:
        """A network's key in per-network tables: its blocks joined by commas."""
        return ",".join(choices)

    @property
    def num_networks(self) -> int:
        return math.prod(len(slot.choices) for slot in self.slots)

    def slot_input_shape(self, index: int) -> tuple[int, int, int, int]:
        """Shape (batch 1) of the tensor entering slot ``index``."""
        size = _downsample(self.input_size, self.stem_stride)
        for slot in self.slots[:index]:
            size = _downsample(size, slot.stride)
        return (1, self.slots[index].in_channels, size, size)

    def build_block(self, index: int, choice: str) -> nn.Module:
        slot = self.slots[index]
        if choice not in slot.choices:
            raise SearchSpaceError(f"{choice!r} is not a choice of slot {slot.name!r}: {slot.choices}")
        return build_block(choice, slot.in_channels, slot.out_channels, slot.stride)

    def build_stem(self) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(self.input_channels, self.stem_channels, 3, self.stem_stride, 1, bias=False),
            nn.BatchNorm2d(self.stem_channels),
            nn.ReLU(inplace=True),
        )

    def build_head(self) -> nn.Module:
        channels = self.slots[-1].out_channels
        layers: list[nn.Module] = []
        if self.head_channels:
            # A fixed feature layer before pooling keeps every network's classifier reasonably strong, so
            # that dropping blocks (skip) degrades accuracy more additively.
            layers += [
                nn.Conv2d(channels, self.head_channels, 1, bias=False),
                nn.BatchNorm2d(self.head_channels),
                nn.ReLU(inplace=True),
            ]
            channels = self.head_channels
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, self.num_classes))

    def head_input_shape(self) -> tuple[int, int, int, int]:
        size = _downsample(self.input_size, self.stem_stride)
        for slot in self.slots:
            size = _downsample(size, slot.stride)
        return (1, self.slots[-1].out_channels, size, size)

    def build_network(self, choices: tuple[str, ...] | list[str]) -> nn.Sequential:
        if len(choices) != len(self.slots):
            raise SearchSpaceError(f"expected {len(self.slots)} choices, got {len(choices)}")
        blocks = [self.build_block(i, c) for i, c in enumerate(choices)]
        return nn.Sequential(self.build_stem(), *blocks, self.build_head())


def _downsample(size: int, stride: int) -> int:
    return (size + stride - 1) // stride
