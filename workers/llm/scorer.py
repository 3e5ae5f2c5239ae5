"""The ``bld`` scorer: a network job of the LLM space is the parent with one sub-block swapped; that block is
distilled (BLD) and the swapped parent scored against the parent (replace-one-block KL, LM loss). The
distilled block is stored as safetensors under ``blocks_dir()``, addressed by what it depends on, so whole
children (the refine loop's verifications, ``assemble_child``) are assembled from the very blocks scored.

Its ``accuracy`` is minus the KL divergence (nats per token), so block values (against the parent, the base
network) are ``-KL`` and a network's predicted accuracy is minus its summed block KL, the objective
Puzzle's MIP minimises. ``loss`` is the swapped parent's LM loss, ``train_loss`` the block's held-out
normalized MSE after distillation.

A job that swaps one block holds one layer of the parent, not the parent: the parent's layers and its
residual streams on the distill and score windows are written once, by one streaming pass, as
content-addressed safetensors shards beside the blocks (``parent_shards``, ``blocknas.workers.llm.shards``);
the job distils from its layer's weights and the streams around it, and scores by running the later layers
one at a time from their shards. Whole children (several blocks swapped) are assembled from the parent,
loaded once per worker process and device. ``scorer.device``: the streams, the distillation and the scoring
all run there; distilled blocks are stored from the CPU, so a block distilled on a GPU is reused on a CPU.
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


def _windows(encode, settings: BldSettings):
    """The token windows BLD trains on and the ones blocks are scored on."""
    from blocknas.workers.llm.text import windows

    distill = windows("distill", encode, settings.context, settings.distill_windows, settings.seed + 1, settings.text)
    return distill, windows("score", encode, settings.context, settings.score_windows, source=settings.text)


def _prepared(space, settings: BldSettings, device="cpu"):
    """The whole parent, its streams and its scoring reference on ``device``, once per process: what a whole
    child (several blocks swapped) is assembled from and scored against. A single block's job reads only its
    layer's shards (``parent_shards``)."""
    import copy

    import torch

    from blocknas.workers.llm.distillation import parent_streams
    from blocknas.workers.llm.scoring import parent_reference

    device = torch.device(device)
    key = (space.parent_kind, space.parent_settings, settings, str(device))
    with _lock:
        if key not in _references:
            parent, encode = space.load_parent()
            if device.type != "cpu":  # a copy: the process's CPU parent stays for costs and exports
                parent = copy.deepcopy(parent).to(device)
            distill, score = _windows(encode, settings)
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


def _parent_identity(space) -> list:
    return [
        space.parent_kind,
        asdict(cast(Any, space.parent_settings)) or None,  # a kind without settings: None
        *([fingerprint] if (fingerprint := space.fingerprint()) else []),  # a folder's files
    ]


def block_path(space, settings: BldSettings, slot: int, variant: str) -> Path:
    """The content address of one distilled block: the parent, the text, the BLD settings, slot, variant."""
    identity = {
        "parent": _parent_identity(space),
        "text": _text_hash(settings),
        "settings": {k: v for k, v in asdict(settings).items() if k != "text"},  # the text: by its content
        "slot": space.slots[slot].name,
        "variant": variant,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
    return blocks_dir() / f"{space.slots[slot].name}-{variant}-{digest}.safetensors"


def shards_path(space, settings: BldSettings, device="cpu") -> Path:
    """The content address of the parent's shards (``blocknas.workers.llm.shards``): the parent, the text and
    the windows read from it, and the kind of device the streams were computed on."""
    import torch

    windows = ("context", "distill_windows", "score_windows", "seed")
    identity = {
        "parent": _parent_identity(space),
        "text": _text_hash(settings),
        "windows": {k: getattr(settings, k) for k in windows},
        "device": torch.device(device).type,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
    return blocks_dir() / "parents" / digest


def parent_shards(space, settings: BldSettings, device="cpu"):
    """The parent's shards for these windows: read as they are, or written now by one streaming pass (the
    only step of a block job that loads the whole parent; jobs beside it wait for it on a file lock)."""
    import copy
    import fcntl

    import torch

    from blocknas.workers.llm.shards import ParentShards, write_shards

    shards = ParentShards(shards_path(space, settings, device))
    if shards.complete:
        return shards
    shards.directory.parent.mkdir(parents=True, exist_ok=True)
    with open(shards.directory.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if shards.complete:
            return shards
        parent, encode = space.load_parent()
        distill, score = _windows(encode, settings)
        device = torch.device(device)
        if device.type != "cpu":  # a copy: the process's CPU parent stays where it is
            parent = copy.deepcopy(parent).to(device)
        return write_shards(parent, distill.to(device), score.to(device), shards.directory)


@functools.cache
def _text_hash(settings: BldSettings) -> str:
    return text_fingerprint(settings)[1]


def _save_block(block, path: Path) -> None:
    """Under a temporary name first, so a reader never sees half a file."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    save_file({k: v.detach().cpu().contiguous() for k, v in block.state_dict().items()}, str(partial))
    partial.replace(path)


def distilled_block(space, settings: BldSettings, slot: int, variant: str, device="cpu"):
    """The distilled sub-block ``variant`` of ``slot`` on ``device``: loaded from ``block_path``
    (safetensors), or distilled now from the parent's shards and stored there; with its record (BLD's
    result, its replace-one-block score and costs) when distilled here."""
    from safetensors.torch import load_file

    from blocknas.workers.llm.costs import CostSettings, sub_block_costs
    from blocknas.workers.llm.decoder import SubBlock
    from blocknas.workers.llm.distillation import precision
    from blocknas.workers.llm.library import BlockRecord
    from blocknas.workers.llm.shards import distill_from_shards, score_from_shards

    shards = parent_shards(space, settings, device)
    path = block_path(space, settings, slot, variant)
    if path.exists():
        block = SubBlock(shards.config, variant).to(shards.dtype)
        block.load_state_dict(load_file(str(path)))
        return block.to(device).eval(), None
    layer = slot // 2
    with precision(device, settings.precision):
        block, distilled = distill_from_shards(shards, layer, variant, settings.distill(), device)
        score = score_from_shards(shards, layer, block, device)
    _save_block(block, path)
    return block, BlockRecord(distilled, score, sub_block_costs(block, shards.config, CostSettings()))


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
    from blocknas.workers.llm.scoring import score_network
    from blocknas.workers.llm.shards import score_from_shards

    swapped = [(i, c) for i, (c, b) in enumerate(zip(choices, space.base, strict=True)) if c != b]
    if not swapped:
        return {"accuracy": 0.0, "loss": parent_shards(space, settings, device).lm_loss, "train_loss": 0.0}
    if len(swapped) == 1:  # one block: its layer's shards and the later layers one at a time, not the parent
        slot, variant = swapped[0]
        block, record = distilled_block(space, settings, slot, variant, device)
        if record is not None:
            return {
                "accuracy": -record.score.kl_div,
                "loss": record.score.lm_loss,
                "train_loss": record.distillation.final_loss,
            }
        with precision(device, settings.precision):
            score = score_from_shards(parent_shards(space, settings, device), slot // 2, block, device)
        return {"accuracy": -score.kl_div, "loss": score.lm_loss}
    _, _, reference = _prepared(space, settings, device)
    child = assemble_child(space, choices, settings, device)
    with precision(device, settings.precision):
        kl, loss = score_network(child, reference)
    return {"accuracy": -kl, "loss": loss}
