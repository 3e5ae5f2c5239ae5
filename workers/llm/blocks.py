"""Child sub-blocks initialised from the parent's, as Puzzle does before blockwise local distillation.

- fewer key-value heads: each new head is the mean of the parent's heads it groups (queries unchanged);
- a narrower FFN: the parent's most important intermediate channels, importance being the mean magnitude
  of the channel's activation on calibration inputs times the norm of its output weights;
- a linear replacement: the least-squares linear map from the normed input to the parent sub-block's output;
- a no-op: nothing to initialise or train.
"""

from __future__ import annotations

import copy
from typing import cast

import torch

from blocknas.workers.llm.decoder import Attention, DecoderConfig, Linear, SubBlock, SwiGLU, ffn_size_of, kv_heads_of


def child_sub_block(parent: SubBlock, config: DecoderConfig, variant: str, inputs: torch.Tensor) -> SubBlock:
    """A sub-block of ``variant`` for the parent's ``parent`` sub-block; ``inputs`` ``[windows, length,
    hidden]`` are calibration inputs of that sub-block (the residual stream before it)."""
    if variant == parent.variant:
        return copy.deepcopy(parent)
    child = SubBlock(config, variant).to(next(parent.parameters()).dtype)  # the parent's (e.g. bfloat16)
    if child.noop:
        return child
    child.norm.load_state_dict(parent.norm.state_dict())
    with torch.no_grad():
        if isinstance(child.op, Attention):
            _fewer_kv_heads(cast(Attention, parent.op), child.op)
        elif isinstance(child.op, SwiGLU):
            _important_channels(cast(SwiGLU, parent.op), child.op, parent.norm(inputs))
        elif isinstance(child.op, Linear):
            normed = parent.norm(inputs)
            flat_in, flat_out = normed.reshape(-1, normed.shape[-1]), parent.op(normed).reshape(-1, normed.shape[-1])
            solution = torch.linalg.lstsq(flat_in.double(), flat_out.double()).solution
            child.op.proj.weight.copy_(solution.T.to(child.op.proj.weight.dtype))
    return child


def _fewer_kv_heads(parent: Attention, child: Attention) -> None:
    if parent.kv_heads % child.kv_heads:
        raise ValueError(f"{parent.kv_heads} key-value heads do not average into {child.kv_heads}")
    group, head_dim = parent.kv_heads // child.kv_heads, parent.head_dim
    for name in ("q_proj", "o_proj", "q_norm", "k_norm"):  # queries, output and per-head q/k norms unchanged
        if hasattr(parent, name):
            getattr(child, name).load_state_dict(getattr(parent, name).state_dict())
    for name in ("k_proj", "v_proj"):
        for kind, tensor in getattr(parent, name).named_parameters():
            pooled = tensor.view(child.kv_heads, group, head_dim, -1).mean(dim=1)
            getattr(getattr(child, name), kind).copy_(pooled.reshape(getattr(getattr(child, name), kind).shape))


def _important_channels(parent: SwiGLU, child: SwiGLU, normed: torch.Tensor) -> None:
    size = child.down_proj.in_features
    activation = torch.nn.functional.silu(parent.gate_proj(normed)) * parent.up_proj(normed)
    importance = activation.abs().reshape(-1, activation.shape[-1]).mean(dim=0) * parent.down_proj.weight.norm(dim=0)
    keep = importance.topk(size).indices.sort().values
    for name in ("gate_proj", "up_proj"):
        for kind, tensor in getattr(parent, name).named_parameters():
            getattr(getattr(child, name), kind).copy_(tensor[keep])
    child.down_proj.weight.copy_(parent.down_proj.weight[:, keep])
    if parent.down_proj.bias is not None:
        child.down_proj.bias.copy_(parent.down_proj.bias)


def variant_names(
    config: DecoderConfig, kv_heads: list[int] | None = None, ffn_fractions: list[float] | None = None
) -> tuple[list[str], list[str]]:
    """Puzzle's space for one layer: attention (parent GQA, fewer KV heads, linear, no-op) and FFN (the
    given fractions of the intermediate size, linear, no-op). Defaults: every divisor of the parent's KV
    heads; 100, 87, 75, 50, 25, 20 and 10 %."""
    heads = kv_heads or [k for k in range(config.kv_heads, 0, -1) if config.kv_heads % k == 0]
    fractions = ffn_fractions or [1.0, 0.87, 0.75, 0.5, 0.25, 0.2, 0.1]
    sizes = sorted({max(1, round(config.intermediate * f)) for f in fractions}, reverse=True)
    for k in heads:
        if k < 1 or config.heads % k or k > config.kv_heads:
            raise ValueError(
                f"attention with {k} key-value heads: use a divisor of the parent's "
                f"{config.kv_heads} that splits its {config.heads} query heads"
            )
    return (
        [f"attn_kv{k}" for k in heads] + ["attn_linear", "attn_noop"],
        [f"ffn_{s}" for s in sizes] + ["ffn_linear", "ffn_noop"],
    )


def is_attention(variant: str) -> bool:
    return variant.startswith("attn_")


__all__ = ["child_sub_block", "variant_names", "is_attention", "kv_heads_of", "ffn_size_of"]
