"""Replace-one-block scoring: the parent with one sub-block swapped, against the parent itself.

A block's score is the mean per-token KL divergence ``KL(parent || child)`` of the next-token
distributions on the ``score`` split (Puzzle's best-ranking score), with the child's LM loss beside it; a
network's predicted score is the sum over its blocks. The parent's stream before the swapped layer is
reused, so a swap in layer i runs only layers i..L-1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import torch
from torch.nn import functional as F

from blocknas.workers.llm.decoder import Decoder, DecoderLayer, SubBlock
from blocknas.workers.llm.parents import lm_loss


@dataclass(frozen=True)
class BlockScore:
    layer: int
    variant: str
    kl_div: float  # mean per-token KL(parent || parent with this block), nats
    lm_loss: float  # the swapped model's next-token loss, nats


@dataclass(frozen=True)
class ParentReference:
    """What every swap of one parent on one scoring set compares with: computed once."""

    tokens: torch.Tensor
    streams: list[torch.Tensor]
    log_probs: torch.Tensor
    lm_loss: float


def parent_reference(parent: Decoder, tokens: torch.Tensor) -> ParentReference:
    with torch.no_grad():
        streams = parent.eval().hidden_states(tokens)
        logits = parent.head(streams[-1])
    return ParentReference(tokens, streams, F.log_softmax(logits.float(), dim=-1), float(lm_loss(logits, tokens)))


def kl_from_parent(reference: ParentReference, logits: torch.Tensor) -> float:
    child = F.log_softmax(logits.float(), dim=-1)
    return float(F.kl_div(child, reference.log_probs, log_target=True, reduction="none").sum(-1).mean())


def score_swap(parent: Decoder, reference: ParentReference, layer: int, block: SubBlock) -> BlockScore:
    """The parent with sub-block ``block`` (an attention or FFN variant) in ``layer``, scored."""
    layers = cast(list[DecoderLayer], list(parent.layers[layer:]))
    return score_through(reference, layer, block, reference.streams[layer], layers, parent.head)


def score_through(
    reference: ParentReference,
    layer: int,
    block: SubBlock,
    stream: torch.Tensor,
    layers: Iterable[DecoderLayer],
    head: Callable[[torch.Tensor], torch.Tensor],
) -> BlockScore:
    """``score_swap`` from what it reads: the parent's stream into ``layer`` on the scoring windows, its layers
    from ``layer`` on (the first gets ``block``; an iterator may load each only when it is reached, as
    ``blocknas.workers.llm.shards`` does) and its head."""
    with torch.no_grad():
        layers = iter(layers)
        h = next(layers).with_block(block, stream)
        for later in layers:
            h = later(h)
        logits = head(h)
    return BlockScore(layer, block.variant, kl_from_parent(reference, logits), float(lm_loss(logits, reference.tokens)))


def score_network(model: Decoder, reference: ParentReference) -> tuple[float, float]:
    """A whole (assembled) network's KL against the parent and its LM loss on the reference's tokens."""
    with torch.no_grad():
        logits = model.eval()(reference.tokens)
    return kl_from_parent(reference, logits), float(lm_loss(logits, reference.tokens))


def tokens_per_second(model: Decoder, tokens: torch.Tensor, repeats: int = 3) -> float:
    """Prefill throughput: tokens of ``tokens`` ``[batch, length]`` processed per second (after a warm-up)."""
    with torch.no_grad():
        model.eval()(tokens)
        started = time.perf_counter()
        for _ in range(repeats):
            model(tokens)
    return tokens.numel() * repeats / (time.perf_counter() - started)
