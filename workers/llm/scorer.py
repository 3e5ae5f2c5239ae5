"""The ``bld`` scorer: a network job of the LLM space is the parent with one sub-block swapped; that block is
distilled (BLD) and the swapped parent scored against the parent (replace-one-block KL, LM loss).

Its ``accuracy`` is minus the KL divergence (nats per token), so block values (against the parent, the base
network) are ``-KL`` and a network's predicted accuracy is minus its summed block KL, the objective
Puzzle's MIP minimises. ``loss`` is the swapped parent's LM loss, ``train_loss`` the block's held-out
normalized MSE after distillation. The parent's streams and its scoring reference are computed once per
worker process.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class BldSettings:
    steps: int = 100
    lr: float = 1e-4
    batch: int = 8
    context: int = 128  # tokens per window
    distill_windows: int = 64
    score_windows: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.context, self.distill_windows, self.score_windows) < 2 or self.steps < 0 or self.batch < 1:
            raise ValueError("scorer: context, distill_windows and score_windows must be >= 2, steps >= 0 and "
                             "batch >= 1")
        if not self.lr > 0:
            raise ValueError(f"scorer.lr must be > 0, got {self.lr}")

    def distill(self):
        from workers.llm.distillation import DistillSettings

        return DistillSettings(steps=self.steps, batch=self.batch, lr=self.lr, seed=self.seed)


def text_fingerprint(settings: BldSettings) -> tuple[str, str]:
    """(data name, content hash) of the text the scorer reads: the split files' paths and sizes."""
    import sys

    from workers.llm.text import SPLITS, split_files

    digest = hashlib.sha256()
    for split in SPLITS:
        for path in split_files(split):
            digest.update(f"{split}:{path.name}:{path.stat().st_size}\n".encode())
    return f"python{sys.version_info.major}.{sys.version_info.minor}-stdlib", digest.hexdigest()


_references: dict = {}
_lock = threading.Lock()


def _prepared(space, settings: BldSettings):
    from workers.llm.distillation import parent_streams
    from workers.llm.scoring import parent_reference
    from workers.llm.text import windows

    key = (space.parent_kind, space.tiny, settings)
    with _lock:
        if key not in _references:
            parent, encode = space.load_parent()
            streams = parent_streams(parent, windows("distill", encode, settings.context, settings.distill_windows,
                                                     seed=settings.seed + 1))
            reference = parent_reference(parent, windows("score", encode, settings.context, settings.score_windows))
            _references[key] = (parent, streams, reference)
        return _references[key]


def evaluate(space, choices, settings: BldSettings) -> dict:
    from workers.llm.library import measure_block

    swapped = [(i, c) for i, (c, b) in enumerate(zip(choices, space.base, strict=True)) if c != b]
    if len(swapped) > 1:
        raise ValueError(f"the bld scorer scores the parent with one sub-block swapped, this network swaps "
                         f"{len(swapped)}: use scorer.estimator=base")
    parent, streams, reference = _prepared(space, settings)
    if not swapped:
        return {"accuracy": 0.0, "loss": reference.lm_loss, "train_loss": 0.0}
    slot, variant = swapped[0]
    _, record = measure_block(parent, slot // 2, variant, streams, reference, settings.distill())
    return {"accuracy": -record.score.kl_div, "loss": record.score.lm_loss,
            "train_loss": record.distillation.final_loss}

