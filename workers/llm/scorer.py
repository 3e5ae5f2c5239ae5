"""The ``bld`` scorer: a network job of the LLM space is the parent with one sub-block swapped; that block is
distilled (BLD) and the swapped parent scored against the parent (replace-one-block KL, LM loss). The
distilled block is stored as safetensors under ``blocks_dir()``, addressed by what it depends on, so whole
children (the refine loop's verifications, ``assemble_child``) are assembled from the very blocks scored.

Its ``accuracy`` is minus the KL divergence (nats per token), so block values (against the parent, the base
network) are ``-KL`` and a network's predicted accuracy is minus its summed block KL, the objective
Puzzle's MIP minimises. ``loss`` is the swapped parent's LM loss, ``train_loss`` the block's held-out
normalized MSE after distillation. The parent's streams and its scoring reference are computed once per
worker process and device (``scorer.device``: the parent, its streams, the distillation and the scoring all
run there; distilled blocks are stored from the CPU, so a block distilled on a GPU is reused on a CPU).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from blocknas.workers.llm.text import TextSettings
from blocknas.workers.records import MAX_STEPS


@dataclass(frozen=True)
class BldSettings:
    steps: int = 100
    lr: float = 1e-4
    batch: int = 8
    context: int = 128  # tokens per window
    distill_windows: int = 64
    score_windows: int = 16
    seed: int = 0
    text: TextSettings = TextSettings()  # where the distill, score and eval text comes from
    precision: str = "float32"  # bfloat16: BLD, scoring and verification in bfloat16 autocast on the device

    def __post_init__(self) -> None:
        if min(self.context, self.distill_windows, self.score_windows) < 2 or self.steps < 0 or self.batch < 1:
            raise ValueError(
                "scorer: context, distill_windows and score_windows must be >= 2, steps >= 0 and batch >= 1"
            )
        if not self.lr > 0:
            raise ValueError(f"scorer.lr must be > 0, got {self.lr}")
        if self.steps > MAX_STEPS:
            raise ValueError(f"scorer.steps must be at most {MAX_STEPS:,}, got {self.steps}")
        if self.precision not in ("float32", "bfloat16"):
            raise ValueError(f"scorer.precision must be float32 or bfloat16, got {self.precision!r}")

    def distill(self):
        from blocknas.workers.llm.distillation import DistillSettings

        return DistillSettings(steps=self.steps, batch=self.batch, lr=self.lr, seed=self.seed)


def text_fingerprint(settings: BldSettings) -> tuple[str, str]:
    """(data name, content hash) of the text the scorer reads (``blocknas.workers.llm.text``)."""
    from blocknas.workers.llm import text

    return text.text_fingerprint(settings.text)


def check_text(space, settings: BldSettings) -> None:
    """Refuse, before any job runs, text that is missing, unreadable or too short for the windows asked of
    the ``distill`` and ``score`` splits, tokenized by the parent's own tokenizer."""
    from blocknas.workers.llm.text import windows

    encode = space.tokenizer()[0]
    windows("distill", encode, settings.context, settings.distill_windows, settings.seed + 1, settings.text)
    windows("score", encode, settings.context, settings.score_windows, source=settings.text)


_references: dict = {}
_lock = threading.Lock()


def _prepared(space, settings: BldSettings, device="cpu"):
    import copy

    import torch

    from blocknas.workers.llm.distillation import parent_streams
    from blocknas.workers.llm.scoring import parent_reference
    from blocknas.workers.llm.text import windows

    device = torch.device(device)
    key = (space.parent_kind, space.parent_settings, settings, str(device))
    with _lock:
        if key not in _references:
            parent, encode = space.load_parent()
            if device.type != "cpu":  # a copy: the process's CPU parent stays for costs and exports
                parent = copy.deepcopy(parent).to(device)
            distill = windows(
                "distill", encode, settings.context, settings.distill_windows, settings.seed + 1, settings.text
            )
            score = windows("score", encode, settings.context, settings.score_windows, source=settings.text)
            _references[key] = (
                parent,
                parent_streams(parent, distill.to(device)),
                parent_reference(parent, score.to(device)),
            )
        return _references[key]


def blocks_dir() -> Path:
    """Where distilled blocks are kept: ``BLOCKNAS_LLM_BLOCKS``, else ``.blocknas/llm_blocks`` under
    ``BLOCKNAS_HOME`` (or the directory blocknas runs from, which local Ray workers share)."""
    if explicit := os.environ.get("BLOCKNAS_LLM_BLOCKS"):
        return Path(explicit)
    return Path(os.environ.get("BLOCKNAS_HOME") or os.getcwd()) / ".blocknas" / "llm_blocks"


def block_path(space, settings: BldSettings, slot: int, variant: str) -> Path:
    """The content address of one distilled block: the parent, the text, the BLD settings, slot, variant."""
    identity = {
        "parent": [
            space.parent_kind,
            asdict(cast(Any, space.parent_settings)) or None,  # a kind without settings: None
            *([fingerprint] if (fingerprint := space.fingerprint()) else []),  # a folder's files
        ],
        "text": _text_hash(settings),
        "settings": {k: v for k, v in asdict(settings).items() if k != "text"},  # the text: by its content
        "slot": space.slots[slot].name,
        "variant": variant,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
    return blocks_dir() / f"{space.slots[slot].name}-{variant}-{digest}.safetensors"


@functools.cache
def _text_hash(settings: BldSettings) -> str:
    return text_fingerprint(settings)[1]


def distilled_block(space, settings: BldSettings, slot: int, variant: str, device="cpu"):
    """The distilled sub-block ``variant`` of ``slot`` on ``device``: loaded from ``block_path``
    (safetensors), or distilled now and stored there (written to a temporary name first, so a reader never
    sees half a file); with its record when distilled here."""
    from safetensors.torch import load_file, save_file

    from blocknas.workers.llm.decoder import SubBlock
    from blocknas.workers.llm.distillation import precision
    from blocknas.workers.llm.library import measure_block

    parent, streams, reference = _prepared(space, settings, device)
    path = block_path(space, settings, slot, variant)
    if path.exists():
        block = SubBlock(parent.config, variant).to(parent.embed_tokens.weight.dtype)
        block.load_state_dict(load_file(str(path)))
        return block.to(device).eval(), None
    with precision(device, settings.precision):
        block, record = measure_block(parent, slot // 2, variant, streams, reference, settings.distill())
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    save_file({k: v.detach().cpu().contiguous() for k, v in block.state_dict().items()}, str(partial))
    partial.replace(path)
    return block, record


def assemble_child(space, choices, settings: BldSettings, device="cpu"):
    """The child network of ``choices`` (one variant per slot) from the parent and the distilled blocks
    (distilling any not stored yet), on ``device``; save it with ``blocknas.workers.llm.decoder.save_decoder``."""
    from blocknas.workers.llm.library import assemble

    parent, _, _ = _prepared(space, settings, device)
    blocks = {
        (slot // 2, c): distilled_block(space, settings, slot, c, device)[0]
        for slot, (c, b) in enumerate(zip(choices, space.base, strict=True))
        if c != b
    }
    return assemble(parent, space.layers_of(choices), blocks).to(device)


def evaluate(space, choices, settings: BldSettings, device="cpu") -> dict:
    """One block swapped: that block's BLD and replace-one-block score. More (a whole child, as the refine
    loop verifies it): the assembled child's KL against the parent and LM loss on the same scoring set."""
    from blocknas.workers.llm.distillation import precision
    from blocknas.workers.llm.scoring import score_network, score_swap

    swapped = [(i, c) for i, (c, b) in enumerate(zip(choices, space.base, strict=True)) if c != b]
    parent, _, reference = _prepared(space, settings, device)
    if not swapped:
        return {"accuracy": 0.0, "loss": reference.lm_loss, "train_loss": 0.0}
    if len(swapped) == 1:
        slot, variant = swapped[0]
        block, record = distilled_block(space, settings, slot, variant, device)
        if record is not None:
            return {
                "accuracy": -record.score.kl_div,
                "loss": record.score.lm_loss,
                "train_loss": record.distillation.final_loss,
            }
        with precision(device, settings.precision):
            score = score_swap(parent, reference, slot // 2, block)
        return {"accuracy": -score.kl_div, "loss": score.lm_loss}
    child = assemble_child(space, choices, settings, device)
    with precision(device, settings.precision):
        kl, loss = score_network(child, reference)
    return {"accuracy": -kl, "loss": loss}
