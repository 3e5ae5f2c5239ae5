"""Puzzle's MIP child against three peers at equal distillation tokens, on a real (tiny) decoder.

    .venv/bin/python benchmarks/puzzle_peers.py [--layers 6] [--bld-steps 150] [--global-steps 40] [--seed 0]

The parent, its BLD library and the exact MIP are those of ``benchmarks/puzzle_llm.py``. At 75 % and 50 % of
the parent's non-embedding parameters, and at 1.3x its measured prefill tokens/s, each method builds a child:

- ``mip``: blocknas, Puzzle's way: the MIP's choice of BLD-distilled blocks;
- ``uniform``: one attention and one FFN variant in every layer (the same BLD blocks), the best within budget;
- ``minitron``: width pruning as Minitron does it: the same FFN width and KV heads in every layer, FFN
  channels kept by activation importance and KV heads averaged by group, no blockwise distillation (the
  widest such child within budget);
- ``shortgpt``: block removal as ShortGPT does it: whole layers dropped, those whose output is most like
  their input (Block Influence, 1 - cosine, lowest first), until within budget.

Then every child is distilled globally (KL on logits + cosine on hidden states) so that all have used the
same number of training tokens: the MIP and uniform children's blocks saw ``bld_steps x 8 x 128`` tokens
per layer in BLD (every layer in parallel, one pass over the stream), so they get ``--global-steps``
steps, and Minitron and ShortGPT the steps that add the BLD tokens. Measured on the held-out ``eval`` split
(KL against the parent, LM loss). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import torch
from puzzle_llm import library_table  # noqa: I001 - a sibling script of benchmarks/

from blocknas.solvers import best_within_budgets
from blocknas.workers.llm.blocks import child_sub_block, variant_names
from blocknas.workers.llm.decoder import LayerVariant
from blocknas.workers.llm.distillation import DistillSettings, parent_streams
from blocknas.workers.llm.global_distillation import GlobalDistillSettings, distill_globally
from blocknas.workers.llm.library import assemble, measure_block, puzzle_library
from blocknas.workers.llm.parents import TinyParentSettings, train_tiny_parent
from blocknas.workers.llm.scoring import parent_reference, score_network, tokens_per_second
from blocknas.workers.llm.text import ByteTokenizer, windows

CONTEXT, BLD_BATCH, GLOBAL_BATCH = 128, 8, 4


def minitron(parent, streams, layers: list[LayerVariant]):
    """Width pruning: every sub-block initialised from the parent's (importance, group means), no BLD."""
    blocks = {}
    for i, variant in enumerate(layers):
        for part, name in (("attention", variant.attention), ("ffn", variant.ffn)):
            own = getattr(parent.layers[i], part)
            if name != own.variant:
                with torch.no_grad():  # the FFN's input: the stream after the layer's attention
                    inputs = streams[i] if part == "attention" else streams[i] + parent.layers[i].attention(streams[i])
                blocks[i, name] = child_sub_block(own, parent.config, name, inputs)
    return assemble(parent, layers, blocks)


def block_influence(parent, streams) -> list[float]:
    """ShortGPT's Block Influence of each layer: 1 - the mean cosine of its input and output states."""
    cosine = torch.nn.functional.cosine_similarity
    return [float(1 - cosine(streams[i], streams[i + 1], dim=-1).mean()) for i in range(parent.config.layers)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--steps", type=int, default=300, help="training steps of the tiny parent")
    parser.add_argument("--bld-steps", type=int, default=150)
    parser.add_argument("--global-steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    torch.manual_seed(args.seed)
    parent = train_tiny_parent(TinyParentSettings(layers=args.layers, steps=args.steps, seed=args.seed))
    encode = ByteTokenizer().encode
    distill_tokens = windows("distill", encode, CONTEXT, 64, seed=1)
    streams = parent_streams(parent, distill_tokens)
    reference = parent_reference(parent, windows("score", encode, CONTEXT, 16))
    evaluation = parent_reference(parent, windows("eval", encode, CONTEXT, 16))
    attention, ffn = variant_names(parent.config)
    blocks, records = {}, []
    for layer, variant in itertools.product(range(args.layers), attention + ffn):
        blocks[layer, variant], record = measure_block(
            parent, layer, variant, streams, reference, DistillSettings(steps=args.bld_steps, lr=1e-3)
        )
        records.append(record)
    library = puzzle_library(records, reference.lm_loss)
    table = library_table(library)
    stat = {name: {i: library[f"layer_{i}"] for i in range(args.layers)} for name in ("num_params", "runtime_ms")}

    def cost(layers: list[LayerVariant], name: str) -> float:
        return sum(stat[name][i][v.name]["stats"][name] for i, v in enumerate(layers))

    parent_layers = [parent.config.parent_layer()] * args.layers
    parent_cost = {name: cost(parent_layers, name) for name in stat}
    influence = block_influence(parent, streams)
    bld_tokens = args.bld_steps * BLD_BATCH * CONTEXT
    peer_steps = args.global_steps + bld_tokens // (GLOBAL_BATCH * CONTEXT)
    uniform_layers = [[LayerVariant(a, f)] * args.layers for a in attention for f in ffn]
    width_layers = [
        [LayerVariant(a, f)] * args.layers
        for a in attention
        for f in ffn
        if not (a.endswith(("_noop", "_linear")) or f.endswith(("_noop", "_linear")))
    ]

    def shortgpt_layers(fits) -> list[LayerVariant]:
        layers = list(parent_layers)
        for i in sorted(range(args.layers), key=influence.__getitem__):
            if fits(layers):
                break
            layers[i] = LayerVariant("attn_noop", "ffn_noop")
        return layers

    def finish(child, steps: int, bld: int = 0) -> dict:
        """Globally distilled for ``steps``; ``bld``: the tokens its blocks saw before (BLD)."""
        before = score_network(child, evaluation)
        distill_globally(parent, child, distill_tokens, GlobalDistillSettings(steps=steps, seed=args.seed))
        kl, loss = score_network(child, evaluation)
        return {
            "kl_before": before[0],
            "kl": kl,
            "lm_loss": loss,
            "tokens": bld + steps * GLOBAL_BATCH * CONTEXT,
            "layers": [v.name for v in child.variants],
            "params": sum(p.numel() for layer in child.layers for p in layer.parameters()),
            "tokens_per_s": tokens_per_second(child, evaluation.tokens),
        }

    results = {}
    for name, budget in (
        ("75% params", {"num_params": 0.75 * parent_cost["num_params"]}),
        ("50% params", {"num_params": 0.5 * parent_cost["num_params"]}),
        ("1.3x prefill", {"runtime_ms": parent_cost["runtime_ms"] / 1.3}),
    ):
        (metric, limit), *_ = budget.items()

        def fits(layers, metric=metric, limit=limit) -> bool:
            return cost(layers, metric) <= limit

        point = best_within_budgets(table, budget)
        mip_layers = [LayerVariant.parse(block.split(":", 1)[-1]) for block in point.blocks]
        uniform = min(
            (layers for layers in uniform_layers if fits(layers)),
            key=lambda layers: score_network(assemble(parent, layers, blocks), reference)[0],
        )
        fitting = [layers for layers in width_layers if fits(layers)]  # none: width alone cannot get there
        width = max(fitting, key=lambda layers: cost(layers, "num_params")) if fitting else None
        results[name] = {
            "mip": finish(assemble(parent, mip_layers, blocks), args.global_steps, bld_tokens),
            "uniform": finish(assemble(parent, uniform, blocks), args.global_steps, bld_tokens),
            "minitron": finish(minitron(parent, streams, width), peer_steps) if width else None,
            "shortgpt": finish(minitron(parent, streams, shortgpt_layers(fits)), peer_steps),
        }

    print(
        f"tiny parent: {args.layers} layers, eval LM loss {evaluation.lm_loss:.4f}, "
        f"{tokens_per_second(parent, evaluation.tokens):.0f} prefill tokens/s; BLD {args.bld_steps} steps, "
        f"global distillation {args.global_steps} steps (peers {peer_steps}); {time.perf_counter() - started:.0f} s"
    )
    print("| budget | method | KL before / after global distillation | LM loss | params | tokens/s | tokens |")
    print("|---|---|---|---|---|---|---|")
    for name, row in results.items():
        for method, r in row.items():
            if r is None:
                print(f"| {name} | {method} | no child of this kind fits the budget | | | | |")
                continue
            print(
                f"| {name} | {method} | {r['kl_before']:.4f} / {r['kl']:.4f} | {r['lm_loss']:.4f} | {r['params']} | "
                f"{r['tokens_per_s']:.0f} | {r['tokens']:,} |"
            )
    print(
        json.dumps({"results": results, "parent_lm_loss": evaluation.lm_loss, "seconds": time.perf_counter() - started})
    )


if __name__ == "__main__":
    main()
