"""The parent's layers and activations as safetensors shards, so a block job holds one layer, not the parent.

One streaming pass (``write_shards``) runs the parent once over the distill and the score windows, layer by
layer, and writes into one directory:

- ``layer-<i>.safetensors``: layer ``i``'s weights, in the parent's dtype;
- ``distill-<i>.safetensors`` and ``score-<i>.safetensors``: the residual stream into layer ``i`` on each set
  of windows (``i`` = number of layers: after the last);
- ``head.safetensors``: the final norm and the LM head;
- ``reference.safetensors``: the scoring tokens and the parent's next-token log-probabilities on them;
- ``parent.json``: the decoder's config, its layers' variants, its dtype and LM loss on the scoring windows,
  written last.

The directory's name is the content address of what the shards depend on (``blocknas.workers.llm.scorer``
names it), and it appears whole or not at all: it is written under a temporary name and renamed. A BLD job
then loads its layer and the two streams around it (memory flat in the parent's depth), and a
replace-one-block score runs the layers after the swap one at a time, each loaded when it is reached. The
results equal those of the whole parent in memory: the same weights, activations and operations.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from blocknas.workers.llm.decoder import Decoder, DecoderConfig, DecoderLayer, LayerVariant, RMSNorm, SubBlock
from blocknas.workers.llm.distillation import DistillResult, DistillSettings, distill_in_layer
from blocknas.workers.llm.parents import lm_loss
from blocknas.workers.llm.scoring import BlockScore, ParentReference, score_through

META = "parent.json"


class ParentHead(nn.Module):
    """The parent's final norm and LM head: residual stream -> next-token logits."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.norm = RMSNorm(config.hidden, config.rms_eps)
        self.lm_head = nn.Linear(config.hidden, config.vocab_size, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm(h))


def _save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


def write_shards(parent: Decoder, distill: torch.Tensor, score: torch.Tensor, directory: Path) -> ParentShards:
    """The streaming pass: ``parent`` over the ``distill`` and ``score`` token windows, one layer at a time
    (one stream of each set in memory), into ``directory`` (module docstring). A directory already there (a
    job beside this one wrote it first) is kept as it is."""
    temporary = directory.with_name(f"{directory.name}.{os.getpid()}.partial")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    parent = parent.eval()
    with torch.no_grad():
        h_distill, h_score = parent.embed_tokens(distill), parent.embed_tokens(score)
        for i, layer in enumerate(parent.layers):
            _save({"h": h_distill}, temporary / f"distill-{i}.safetensors")
            _save({"h": h_score}, temporary / f"score-{i}.safetensors")
            _save(dict(layer.state_dict()), temporary / f"layer-{i}.safetensors")
            h_distill, h_score = layer(h_distill), layer(h_score)
        end = len(parent.layers)
        _save({"h": h_distill}, temporary / f"distill-{end}.safetensors")
        _save({"h": h_score}, temporary / f"score-{end}.safetensors")
        del h_distill
        logits = parent.head(h_score)
        head = {"norm.weight": parent.norm.weight, "lm_head.weight": parent.lm_head.weight}
        _save(head, temporary / "head.safetensors")
        _save(
            {"tokens": score, "log_probs": F.log_softmax(logits.float(), dim=-1)}, temporary / "reference.safetensors"
        )
    meta = {
        "config": asdict(parent.config),
        "layers": [v.name for v in parent.variants],
        "dtype": str(parent.embed_tokens.weight.dtype).removeprefix("torch."),
        "lm_loss": float(lm_loss(logits, score)),
    }
    (temporary / META).write_text(json.dumps(meta, indent=2) + "\n")
    try:
        temporary.rename(directory)
    except OSError:  # written by another job meanwhile: theirs is the same
        if not (directory / META).exists():
            raise
        shutil.rmtree(temporary, ignore_errors=True)
    return ParentShards(directory)


@dataclass(frozen=True)
class ParentShards:
    """A directory ``write_shards`` wrote, read a piece at a time."""

    directory: Path

    @property
    def complete(self) -> bool:
        return (self.directory / META).exists()

    @cached_property
    def meta(self) -> dict:
        return json.loads((self.directory / META).read_text())

    @cached_property
    def config(self) -> DecoderConfig:
        return DecoderConfig(**self.meta["config"])

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.meta["dtype"])

    @property
    def layers(self) -> int:
        return len(self.meta["layers"])

    @property
    def lm_loss(self) -> float:
        """The parent's LM loss on the scoring windows."""
        return float(self.meta["lm_loss"])

    def _load(self, name: str, device) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        return load_file(str(self.directory / f"{name}.safetensors"), device=str(torch.device(device)))

    def layer(self, index: int, device="cpu") -> DecoderLayer:
        """The parent's layer ``index`` alone, frozen, on ``device``."""
        layer = DecoderLayer(self.config, LayerVariant.parse(self.meta["layers"][index])).to(self.dtype)
        layer.load_state_dict(self._load(f"layer-{index}", device))
        return layer.to(device).eval().requires_grad_(False)

    def stream(self, split: str, index: int, device="cpu") -> torch.Tensor:
        """The residual stream into layer ``index`` on the ``distill`` or ``score`` windows."""
        return self._load(f"{split}-{index}", device)["h"]

    def head(self, device="cpu") -> ParentHead:
        head = ParentHead(self.config).to(self.dtype)
        head.load_state_dict(self._load("head", device))
        return head.to(device).eval()

    def reference(self, device="cpu") -> ParentReference:
        """What every swap is compared with (without the streams: each score loads the one it starts from)."""
        loaded = self._load("reference", device)
        return ParentReference(loaded["tokens"], [], loaded["log_probs"], self.lm_loss)

    def layers_from(self, index: int, device="cpu") -> Iterator[DecoderLayer]:
        """Layers ``index`` .. last, each loaded when it is reached and dropped after."""
        return (self.layer(i, device) for i in range(index, self.layers))


def distill_from_shards(
    shards: ParentShards, layer: int, variant: str, settings: DistillSettings, device="cpu"
) -> tuple[SubBlock, DistillResult]:
    """BLD of ``variant`` in ``layer`` from the layer's weights and the streams around it, nothing else."""
    inputs, target = shards.stream("distill", layer, device), shards.stream("distill", layer + 1, device)
    return distill_in_layer(shards.layer(layer, device), shards.config, layer, variant, inputs, target, settings)


def score_from_shards(shards: ParentShards, layer: int, block: SubBlock, device="cpu") -> BlockScore:
    """The replace-one-block score of ``block`` in ``layer``, streaming the later layers from their shards."""
    reference = shards.reference(device)
    stream = shards.stream("score", layer, device)
    return score_through(reference, layer, block, stream, shards.layers_from(layer, device), shards.head(device))
