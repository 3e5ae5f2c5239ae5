"""What the pipeline asks of a search space: a protocol, so that a space of any kind (registered in ``SPACES``,
by entry point or import path) is used the same way, and what it can do is a method, not a ``hasattr``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Slot(Protocol):
    name: str

    @property
    def choices(self) -> tuple[str, ...]: ...

    def key(self, choice: str) -> str:
        """The block's stable string key, ``slot:choice``."""
        ...


@runtime_checkable
class SearchSpace(Protocol):
    """``m`` slots of ``n`` candidate blocks. ``builds_modules``: its networks are torch modules (trained,
    profiled per block); otherwise networks are looked up or scored by a scorer that knows the space.
    ``connectivity``: a structural rule the solver enforces (NAS-Bench-201's paths), or None."""

    name: str
    builds_modules: bool
    connectivity: tuple | None

    @property
    def slots(self) -> Sequence[Slot]: ...

    @property
    def base(self) -> tuple[str, ...]:
        """The base network: each slot's reference block."""
        ...

    @property
    def num_networks(self) -> int: ...

    def network_key(self, choices: Sequence[str]) -> str:
        """A network's stable string key."""
        ...

    def is_network(self, choices: Sequence[str]) -> bool:
        """Whether ``choices`` make a real network (NAS-Bench-201: the cell's output is connected)."""
        ...


@runtime_checkable
class ModuleSpace(SearchSpace, Protocol):
    """A space whose networks are torch modules (``builds_modules``): built, trained, profiled per block."""

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One input with its batch dimension, ``(1, C, H, W)``."""
        ...

    def build_stem(self) -> Any: ...

    def build_head(self) -> Any: ...

    def build_block(self, index: int, choice: str) -> Any: ...

    def build_network(self, choices: Sequence[str]) -> Any: ...

    def slot_input_shape(self, index: int) -> tuple[int, ...]: ...

    def head_input_shape(self) -> tuple[int, ...]: ...


@runtime_checkable
class TabularSpace(SearchSpace, Protocol):
    """A space that is looked up, not built (NAS-Bench-201, a language model's sub-blocks): its costs come per
    block choice and for what every network shares."""

    def edge_cost(self, choice: str, metric: str) -> float: ...

    def fixed_cost(self, metric: str) -> float: ...
