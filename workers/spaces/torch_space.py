"""Your own search space in PyTorch (``space.kind: torch``).

A user's module gives a factory that returns a ``TorchSpace``: the slots, each slot's candidate blocks
as named builders of ``nn.Module``s, a stem and a classifier head. A selection (one candidate per slot)
becomes the network ``stem -> block_1 -> ... -> block_m -> head``; blocknas does the rest (planning, Ray
jobs, the table, MLflow, FLOPs/params/latency per block, the solver, the refine loop)::

    # my_project/space.py
    from torch import nn
    from blocknas.workers.spaces import TorchSlot, TorchSpace

    def make_space(width: int = 16) -> TorchSpace:
        return TorchSpace(
            name="my_space", input_shape=(1, 8, 8), num_classes=10,
            stem=lambda: nn.Conv2d(1, width, 3, padding=1),
            slots=[TorchSlot("s0", {"conv": lambda: MyConv(width), "skip": nn.Identity}), ...],
            head=lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)),
        )

and the config names it: ``space: {kind: torch, factory: "my_project.space:make_space", options: {width: 16}}``.
Every candidate of a slot must turn the slot's input into the same output shape (checked when the space
is built, by a forward pass), so that blocks are interchangeable and their costs additive.

Ray workers rebuild the space from the same factory, so the module must be importable there: installed,
or in the directory ``blocknas`` runs from (it is put on the workers' path). The space's structure (the
``repr`` of every module) is its fingerprint: a changed block gives new job hashes, never stale results.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from blocknas.workers.registry import RegistryError, import_object
from blocknas.workers.spaces.cnn import SearchSpaceError
from blocknas.workers.typed import check_keys

Builder = Callable[[], object]  # () -> nn.Module


@dataclass(frozen=True)
class TorchSlot:
    name: str
    candidates: Mapping[str, Builder]

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self.candidates)

    def key(self, choice: str) -> str:
        return f"{self.name}:{choice}"


@dataclass(frozen=True)
class TorchSpace:
    name: str
    input_shape: tuple[int, ...]  # one example (C, H, W); stored with the batch dimension, (1, C, H, W)
    num_classes: int
    slots: tuple[TorchSlot, ...]
    head: Builder
    stem: Builder | None = None
    base_choices: tuple[str, ...] | None = None
    connectivity = None
    builds_modules = True
    _shapes: list = field(default_factory=list, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        shape = tuple(int(d) for d in self.input_shape)
        object.__setattr__(self, "input_shape", shape if len(shape) == 4 else (1, *shape))
        object.__setattr__(self, "slots", tuple(self.slots))
        if self.base_choices is not None:
            object.__setattr__(self, "base_choices", tuple(self.base_choices))
        self._validate()

    def _validate(self) -> None:
        import torch

        if not self.slots:
            raise SearchSpaceError(f"space {self.name!r} has no slots")
        names = [s.name for s in self.slots]
        if len(set(names)) != len(names) or any(":" in n for n in names):
            raise SearchSpaceError(f"space {self.name!r}: slot names must be distinct and without ':': {names}")
        if self.base_choices is not None and (
            len(self.base_choices) != len(self.slots)
            or any(b not in s.choices for b, s in zip(self.base_choices, self.slots, strict=False))
        ):
            raise SearchSpaceError(
                f"space {self.name!r}: base must name one candidate of each of the {len(self.slots)} slots"
            )
        with torch.inference_mode():
            x = self._call(self.build_stem(), torch.zeros(self.input_shape), "the stem")
            for i, slot in enumerate(self.slots):
                if not slot.candidates:
                    raise SearchSpaceError(f"slot {slot.name!r} has no candidate blocks")
                self._shapes.append(tuple(x.shape))
                outputs = {c: tuple(self._call(self.build_block(i, c), x, slot.key(c)).shape) for c in slot.choices}
                if len(set(outputs.values())) > 1:
                    raise SearchSpaceError(
                        f"slot {slot.name!r}: its candidates give different output shapes "
                        f"({', '.join(f'{c}: {list(s)}' for c, s in outputs.items())}); every candidate of a "
                        "slot must map the slot's input to the same shape"
                    )
                x = self._call(self.build_block(i, self.base[i]), x, slot.key(self.base[i]))
            self._shapes.append(tuple(x.shape))
            logits = self._call(self.build_head(), x, "the head")
        if tuple(logits.shape) != (self.input_shape[0], self.num_classes):
            raise SearchSpaceError(
                f"space {self.name!r}: the head gives shape {list(logits.shape)}, expected "
                f"[batch, num_classes] = {[self.input_shape[0], self.num_classes]}"
            )

    @staticmethod
    def _call(module, x, what: str):
        from torch import nn

        if not isinstance(module, nn.Module):
            raise SearchSpaceError(f"{what}: the builder returned {type(module).__name__}, not an nn.Module")
        try:
            return module.eval()(x)
        except Exception as exc:  # noqa: BLE001 - the user's module: say which one failed
            raise SearchSpaceError(f"{what} fails on an input of shape {list(x.shape)}: {exc}") from exc

    @property
    def base(self) -> tuple[str, ...]:
        return self.base_choices or tuple(s.choices[0] for s in self.slots)

    @property
    def num_networks(self) -> int:
        return math.prod(len(slot.choices) for slot in self.slots)

    @staticmethod
    def is_network(choices) -> bool:
        """Whether ``choices`` make a real network: every choice of blocks does."""
        return True

    @staticmethod
    def network_key(choices: Sequence[str]) -> str:
        return ",".join(choices)

    def build_stem(self):
        from torch import nn

        return self.stem() if self.stem is not None else nn.Identity()

    def build_head(self):
        return self.head()

    def build_block(self, index: int, choice: str):
        slot = self.slots[index]
        if choice not in slot.candidates:
            raise SearchSpaceError(f"{choice!r} is not a candidate of slot {slot.name!r}: {slot.choices}")
        return slot.candidates[choice]()

    def build_network(self, choices: Sequence[str]):
        from torch import nn

        if len(choices) != len(self.slots):
            raise SearchSpaceError(f"expected {len(self.slots)} choices, got {len(choices)}")
        return nn.Sequential(
            self.build_stem(), *(self.build_block(i, c) for i, c in enumerate(choices)), self.build_head()
        )

    def slot_input_shape(self, index: int) -> tuple[int, ...]:
        return self._shapes[index]

    def head_input_shape(self) -> tuple[int, ...]:
        return self._shapes[-1]

    def fingerprint(self) -> str:
        """Hash of the structure of every module (stem, each candidate, head): what a job's result depends on."""
        modules = [self.build_stem(), self.build_head()] + [
            self.build_block(i, c) for i, s in enumerate(self.slots) for c in s.choices
        ]
        return structure_hash(modules)


def structure_hash(modules) -> str:
    """sha256 of every module's class path and ``repr`` (its layers and their shapes), in order."""
    digest = hashlib.sha256()
    for module in modules:
        for sub in module.modules():
            digest.update(f"{type(sub).__module__}.{type(sub).__qualname__};".encode())
        digest.update(repr(module).encode())
    return digest.hexdigest()[:16]


TORCH_KEYS = ["kind", "factory", "options", "name", "base", "fingerprint"]


def torch_space_from_dict(spec: dict) -> TorchSpace:
    """The space a ``kind: torch`` config names: ``factory`` (import path) called with ``options``."""
    check_keys(spec, TORCH_KEYS, "space")
    path = spec.get("factory")
    if not isinstance(path, str) or not path:
        raise SearchSpaceError(
            "space.factory must be the import path of a function returning a TorchSpace, "
            "e.g. my_project.space:make_space"
        )
    options = spec.get("options") or {}
    if not isinstance(options, Mapping):
        raise SearchSpaceError(f"space.options must be a mapping of the factory's keyword arguments, got {options!r}")
    try:
        factory = import_object(path)
    except RegistryError as exc:
        raise SearchSpaceError(f"space.factory: {exc}") from exc
    try:
        space = factory(**options)
    except TypeError as exc:
        raise SearchSpaceError(f"space.factory {path} does not take space.options {dict(options)}: {exc}") from exc
    if not isinstance(space, TorchSpace):
        raise SearchSpaceError(f"space.factory {path} returned {type(space).__name__}, not a TorchSpace")
    if spec.get("name"):
        object.__setattr__(space, "name", str(spec["name"]))
    if spec.get("base"):
        base = tuple(str(b) for b in spec["base"])
        space = TorchSpace(space.name, space.input_shape, space.num_classes, space.slots, space.head, space.stem, base)
    expected = spec.get("fingerprint")
    if expected and expected != space.fingerprint():
        raise SearchSpaceError(
            f"space {space.name!r}: this worker's {path} builds other modules (fingerprint "
            f"{space.fingerprint()}) than the driver's ({expected}); install the same version "
            "of the space's code on every node"
        )
    return space
