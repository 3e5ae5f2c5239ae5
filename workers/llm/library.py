"""One LLM block job (distil, score, cost one sub-block variant of one layer), the library they make in
Puzzle's own JSON format, and children assembled from the trained blocks.

``measure_block`` is the unit a Ray task runs; ``puzzle_library`` turns the records of every (layer,
variant) into ``{"layer_<i>": {"<attention>+<ffn>": {"stats": {...}, "metrics": {...}}}}`` as NVlabs/puzzle
ships it (the cross product of each layer's attention and FFN variants; stats and KL add up over the two
sub-blocks, as decoupled BLD scores them), which ``blocknas targets add --file`` reads and
``blocknas pick`` solves. ``assemble`` builds the chosen child from the trained sub-blocks.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

from blocknas.workers.llm.blocks import is_attention
from blocknas.workers.llm.costs import CostSettings, sub_block_costs
from blocknas.workers.llm.decoder import Decoder, LayerVariant, SubBlock, ffn_size_of, kv_heads_of
from blocknas.workers.llm.distillation import DistillResult, DistillSettings, distill_sub_block
from blocknas.workers.llm.scoring import BlockScore, ParentReference, score_swap


@dataclass(frozen=True)
class BlockRecord:
    distillation: DistillResult
    score: BlockScore
    costs: dict[str, float]

    @property
    def key(self) -> tuple[int, str]:
        return self.score.layer, self.score.variant


def measure_block(
    parent: Decoder,
    layer: int,
    variant: str,
    streams,
    reference: ParentReference,
    distill: DistillSettings | None = None,
    costs: CostSettings | None = None,
) -> tuple[SubBlock, BlockRecord]:
    block, distilled = distill_sub_block(parent, layer, variant, streams, distill or DistillSettings())
    record = BlockRecord(
        distilled,
        score_swap(parent, reference, layer, block),
        sub_block_costs(block, parent.config, costs or CostSettings()),
    )
    return block, record


def puzzle_library(records: list[BlockRecord], parent_lm_loss: float) -> dict:
    """Puzzle's block-library JSON of the measured sub-blocks (every layer's attention x FFN variants)."""
    by_layer: dict[int, dict[str, BlockRecord]] = {}
    for record in records:
        layer, variant = record.key
        if variant in by_layer.setdefault(layer, {}):
            raise ValueError(f"layer {layer} variant {variant} measured twice")
        by_layer[layer][variant] = record
    library = {}
    for layer in sorted(by_layer):
        measured = by_layer[layer]
        attention = [v for v in measured if is_attention(v)]
        ffn = [v for v in measured if not is_attention(v)]
        if not attention or not ffn:
            raise ValueError(f"layer {layer} needs at least one attention and one FFN variant measured")
        library[f"layer_{layer}"] = {
            LayerVariant(a, f).name: _combined(measured[a], measured[f], parent_lm_loss) for a in attention for f in ffn
        }
    return library


def _combined(attention: BlockRecord, ffn: BlockRecord, parent_lm_loss: float) -> dict:
    lm_loss = parent_lm_loss + (attention.score.lm_loss - parent_lm_loss) + (ffn.score.lm_loss - parent_lm_loss)
    return library_entry(
        attention.score.variant,
        ffn.score.variant,
        attention.costs,
        ffn.costs,
        attention.score.kl_div + ffn.score.kl_div,
        lm_loss,
    )


def library_entry(
    attention: str,
    ffn: str,
    attention_costs: Mapping[str, float],
    ffn_costs: Mapping[str, float],
    kl_div: float,
    lm_loss: float | None = None,
) -> dict:
    """One layer variant of Puzzle's block-library format: every cost summed over the two sub-blocks and
    apart (``attention_<cost>``, ``ffn_<cost>``), the KV heads and FFN width, and the scores."""
    stats = {name: float(attention_costs[name] + ffn_costs[name]) for name in attention_costs}
    stats |= {f"attention_{n}": float(v) for n, v in attention_costs.items()}
    stats |= {f"ffn_{n}": float(v) for n, v in ffn_costs.items()}
    stats |= {"num_kv_heads": kv_heads_of(attention) or 0, "ffn_intermediate_size": ffn_size_of(ffn) or 0}
    metrics = {"kl_div": float(kl_div)} | ({"lm_loss": float(lm_loss)} if lm_loss is not None else {})
    return {"stats": stats, "metrics": metrics}


def assemble(parent: Decoder, layers: list[LayerVariant], blocks: Mapping[tuple[int, str], SubBlock]) -> Decoder:
    """The child whose layer i is ``layers[i]``: the parent's embeddings, norm and head, every sub-block
    the parent's own where the variant is the parent's, else the trained block of ``blocks``."""
    child = Decoder(parent.config, layers).to(parent.embed_tokens.weight.dtype)  # in the parent's dtype
    child.embed_tokens.load_state_dict(parent.embed_tokens.state_dict())
    child.norm.load_state_dict(parent.norm.state_dict())
    if not parent.config.tie_embeddings:
        child.lm_head.load_state_dict(parent.lm_head.state_dict())
    for i, (variant, target) in enumerate(zip(layers, child.layers, strict=True)):
        for part, name in (("attention", variant.attention), ("ffn", variant.ffn)):
            source = getattr(parent.layers[i], part)
            if source.variant != name:
                if (i, name) not in blocks:
                    raise KeyError(f"layer {i}: no trained block for {name}; measure it first")
                source = blocks[i, name]
            getattr(target, part).load_state_dict(copy.deepcopy(source.state_dict()))
    return child.eval()
