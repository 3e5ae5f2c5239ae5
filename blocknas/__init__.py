"""blocknas: blockwise neural architecture search, from block scores to the Pareto front of every target.

The public API is what a user's own space, data loader, scorer or script needs; it is imported lazily, so
``import blocknas`` costs nothing until a name is used::

    from blocknas import TorchSlot, TorchSpace, Dataset, BlockTable, pareto_front

Everything else under ``blocknas.*`` is internal and may change between releases.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_PUBLIC = {
    # a search space of your own (space.kind: torch)
    "TorchSlot": "blocknas.workers.spaces.torch_space",
    "TorchSpace": "blocknas.workers.spaces.torch_space",
    "SearchSpace": "blocknas.workers.spaces.protocol",
    # a data loader of your own (data.kind: package.module:function)
    "Dataset": "blocknas.workers.data",
    "DataError": "blocknas.workers.data",
    # a scorer of your own (scorer.kind: package.module:function)
    "TrainSettings": "blocknas.workers.records",
    # extension points: a Registry per kind, open to entry points of blocknas.<kind>s
    "Registry": "blocknas.workers.registry",
    "RegistryError": "blocknas.workers.registry",
    # solving a performance table of your own
    "BlockTable": "blocknas.solvers.table",
    "ParetoPoint": "blocknas.solvers.pareto",
    "InfeasibleBudgetError": "blocknas.solvers.pareto",
    "pareto_front": "blocknas.solvers.pareto",
    "best_within_budgets": "blocknas.solvers.pareto",
    "solution_pool": "blocknas.solvers.pools",
    # a stored experiment
    "PerformanceStore": "blocknas.orchestrator.storage",
    "network_answer": "blocknas.orchestrator.answers",
}

__all__ = [
    "BlockTable",
    "DataError",
    "Dataset",
    "InfeasibleBudgetError",
    "ParetoPoint",
    "PerformanceStore",
    "Registry",
    "RegistryError",
    "SearchSpace",
    "TorchSlot",
    "TorchSpace",
    "TrainSettings",
    "best_within_budgets",
    "network_answer",
    "pareto_front",
    "solution_pool",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from blocknas.orchestrator.answers import network_answer
    from blocknas.orchestrator.storage import PerformanceStore
    from blocknas.solvers.pareto import InfeasibleBudgetError, ParetoPoint, best_within_budgets, pareto_front
    from blocknas.solvers.pools import solution_pool
    from blocknas.solvers.table import BlockTable
    from blocknas.workers.data import DataError, Dataset
    from blocknas.workers.records import TrainSettings
    from blocknas.workers.registry import Registry, RegistryError
    from blocknas.workers.spaces.protocol import SearchSpace
    from blocknas.workers.spaces.torch_space import TorchSlot, TorchSpace


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'blocknas' has no attribute {name!r}; the public API is: {', '.join(__all__)}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
