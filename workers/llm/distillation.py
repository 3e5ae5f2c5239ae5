"""Blockwise local distillation (Puzzle's BLD), decoupled: every child sub-block is trained alone.

The parent's residual stream is computed once (``parent_streams``). A child attention variant of layer i
is trained inside layer i with the parent's FFN after it, an FFN variant with the parent's attention before
it; either way the layer gets the parent's input to layer i and its output is pulled towards the parent's
by the normalized MSE ``MSE(parent_out, child_out) / MSE(parent_out, 0)``. No gradient crosses layers, so
the ``(attention + FFN variants) x layers`` trainings are independent jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch

from blocknas.workers.llm.blocks import child_sub_block, is_attention
from blocknas.workers.llm.decoder import Decoder, DecoderConfig, DecoderLayer, SubBlock


@dataclass(frozen=True)
class DistillSettings:
    steps: int = 200
    batch: int = 8  # windows per step
    lr: float = 1e-4  # Puzzle's AdamW: lr 1e-4, weight decay 0.1, betas 0.9 / 0.95
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    holdout: float = 0.25  # share of the windows kept out of training, for the reported losses
    calibration_tokens: int = 4096  # inputs that initialise the child (channel importance, least squares)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch < 1 or not self.lr > 0 or not 0 < self.holdout < 1:
            raise ValueError(f"invalid distillation settings {self}: steps >= 0, batch >= 1, lr > 0, 0 < holdout < 1")


@dataclass(frozen=True)
class DistillResult:
    layer: int
    variant: str
    initial_loss: float  # held-out normalized MSE of the initialised child
    final_loss: float  # the same after training
    curve: tuple[float, ...]  # training loss per step
    parameters: int


def parent_streams(parent: Decoder, tokens: torch.Tensor) -> list[torch.Tensor]:
    """The parent's residual stream before every layer and after the last (``layers + 1`` tensors)."""
    with torch.no_grad():
        return [h.detach() for h in parent.eval().hidden_states(tokens)]


def normalized_mse(target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    target, output = target.float(), output.float()  # in float32 under bfloat16 autocast too
    return (target - output).pow(2).mean() / target.pow(2).mean().clamp_min(1e-12)


PRECISIONS = ("float32", "bfloat16")


def precision(device, name: str = "float32"):
    """The context BLD, scoring and verification run in: float32, or bfloat16 autocast on ``device`` (CUDA
    or CPU; weights, optimizer state and losses stay float32)."""
    import contextlib

    if name not in PRECISIONS:
        raise ValueError(f"precision {name!r}: use one of {', '.join(PRECISIONS)}")
    if name == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def distill_sub_block(
    parent: Decoder,
    layer: int,
    variant: str,
    streams: list[torch.Tensor],
    settings: DistillSettings = DistillSettings(),
) -> tuple[SubBlock, DistillResult]:
    """The child sub-block ``variant`` of ``layer``, initialised from the parent and trained by BLD."""
    if not 0 <= layer < len(parent.layers):
        raise ValueError(f"layer {layer} is not one of the parent's {len(parent.layers)} layers")
    parent_layer = cast(DecoderLayer, parent.layers[layer])
    return distill_in_layer(parent_layer, parent.config, layer, variant, streams[layer], streams[layer + 1], settings)


def distill_in_layer(
    parent_layer: DecoderLayer,
    config: DecoderConfig,
    layer: int,
    variant: str,
    inputs: torch.Tensor,
    target: torch.Tensor,
    settings: DistillSettings = DistillSettings(),
) -> tuple[SubBlock, DistillResult]:
    """BLD with only what it reads: the parent's layer ``layer``, the residual stream into it (``inputs``) and
    out of it (``target``) on the distill windows. A job that holds these and nothing else of the parent
    (``blocknas.workers.llm.shards``) gets the same block as ``distill_sub_block``."""
    torch.manual_seed(settings.seed)
    parent_layer = parent_layer.requires_grad_(False)
    attention = is_attention(variant)
    with torch.no_grad():  # an FFN variant's input: the parent's attention already applied
        block_inputs = inputs if attention else inputs + parent_layer.attention(inputs)
    calibration = block_inputs[: max(1, settings.calibration_tokens // block_inputs.shape[1])]
    parent_block = cast(SubBlock, parent_layer.attention if attention else parent_layer.ffn)
    child = child_sub_block(parent_block, config, variant, calibration).to(inputs.device)

    def layer_output(child_block: SubBlock, x: torch.Tensor) -> torch.Tensor:
        # an FFN variant's input already holds the parent's attention (computed once above)
        return parent_layer.with_block(child_block, x) if attention else x + child_block(x)

    held = max(1, int(len(inputs) * settings.holdout))
    test = slice(0, held)  # the first windows; training draws from the rest
    if len(inputs) - held < 1:
        raise ValueError(f"{len(inputs)} windows leave none to train on after holding out {held}")

    def held_out_loss() -> float:
        with torch.no_grad():
            return float(normalized_mse(target[test], layer_output(child, block_inputs[test])))

    initial, curve = held_out_loss(), []
    trainable = [p for p in child.parameters() if p.requires_grad]
    if trainable and settings.steps:
        optimizer = torch.optim.AdamW(
            trainable, lr=settings.lr, weight_decay=settings.weight_decay, betas=settings.betas
        )
        generator = torch.Generator().manual_seed(settings.seed)
        count = len(inputs) - held
        child.train()
        for _ in range(settings.steps):
            pick = held + torch.randint(count, (min(settings.batch, count),), generator=generator)
            loss = normalized_mse(target[pick], layer_output(child, block_inputs[pick]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            curve.append(float(loss.detach()))
        child.eval()
    parameters = sum(p.numel() for p in child.parameters())
    return child, DistillResult(layer, variant, initial, held_out_loss(), tuple(curve), parameters)
