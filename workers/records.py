"""Plain job and result records exchanged between the orchestrator and the workers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrainSettings:
    """How a block's context network is trained and evaluated (MathNAS swap-in scoring)."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int
    train_size: int
    val_size: int

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "train_size", "val_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"scorer.{name} must be a positive integer, got {getattr(self, name)}")
        if self.steps > MAX_STEPS:
            raise ValueError(
                f"scorer.steps must be at most {MAX_STEPS:,} (a block is trained for minutes, not "
                f"years), got {self.steps}"
            )
        if not self.lr > 0:
            raise ValueError(f"scorer.lr must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"scorer.weight_decay must be >= 0, got {self.weight_decay}")


MAX_STEPS = 10_000_000  # training steps of one block job


@dataclass(frozen=True)
class NetworkJob:
    """Evaluate one network (a context network with one block swapped in): train it, or look it up."""

    network_hash: str
    space: dict  # the search-space definition, as plain data
    choices: tuple[str, ...]  # one candidate block per slot
    settings: object  # the scorer's typed settings (TrainSettings for swap_in), or a plain mapping
    device: str = "cpu"  # "cpu", "cuda" or "auto" (cuda when the task was given a GPU)
    scorer: str = "swap_in"  # a registered scorer (workers.scoring.SCORERS), entry point or import path
    data: dict = field(default_factory=lambda: {"kind": "mnist"})  # the data config (workers.data)
    threads: int = 1  # torch threads of the worker (resources.cpus_per_block)
    objective: tuple[str, str] = ("accuracy", "maximize")  # scorer.objective: the result's key, its direction


@dataclass(frozen=True)
class NetworkResult:
    """What training and evaluating one network measured."""

    accuracy: float  # held-out top-1 accuracy, in percent
    loss: float | None  # held-out mean cross-entropy (None for tabular scorers)
    train_loss: float | None  # mean training loss over the last 10 % of steps
    train_seconds: float
    params: int
    flops: int  # multiply-accumulates of one forward pass at batch size 1
    device: str
    # the training curve: {metric: [(step, value), ...]}, e.g. train_loss and val_accuracy (empty: none)
    curve: dict = field(default_factory=dict)
