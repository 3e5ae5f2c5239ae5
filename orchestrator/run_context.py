"""One run's context: what the stages of ``blocknas run`` and ``solve`` (and the read side of an experiment)
share, built once per job (``blocknas.orchestrator.experiments.open_run``) and handed to each stage whole.

Functions below the stages take only the part they read (a space, the solver's settings, a plan)."""

from __future__ import annotations

from dataclasses import dataclass

from blocknas.orchestrator.planning import Plan
from blocknas.orchestrator.settings import RunSettings
from blocknas.orchestrator.storage import PerformanceStore


@dataclass(frozen=True)
class RunContext:
    """An experiment as its stages see it: the validated settings, the store that holds its results and the
    plan (the block measurements and context networks its estimator asks for)."""

    settings: RunSettings
    store: PerformanceStore
    plan: Plan
