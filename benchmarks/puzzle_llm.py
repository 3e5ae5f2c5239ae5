"""Puzzle on a real (tiny) decoder: MIP children against uniform pruning at the same parameter budget.

    .venv/bin/python benchmarks/puzzle_llm.py [--layers 4] [--steps 300] [--bld-steps 150] [--children 10] [--seed 0]

A byte-level Llama decoder is trained on the standard library's sources (``distill`` split); every
(layer, attention or FFN variant) is distilled (decoupled BLD), scored by replace-one-block KL on the
``score`` split and costed; the library (Puzzle's JSON format) is read back by ``targets add``'s importer
and solved by blocknas's exact MIP. Then, on the held-out ``eval`` split:

- at 75 % and 50 % of the parent's non-embedding parameters: the MIP child against the best uniform
  pruning (one attention and one FFN variant in every layer, the same BLD-trained blocks) within the same
  budget, both assembled and measured (KL against the parent, LM loss);
- ranking: Spearman correlation of predicted (summed block KL) and measured KL over ``--children``
  exact Pareto points spread over the parameter range;
- speed: prefill and KV-cached decode tokens/s of the parent and of the fastest measured child whose LM
  loss is within 5 % of the parent's, and both continuations of a fixed prompt (greedy).

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from scipy.stats import spearmanr

from blocknas.orchestrator.deploy.fronts import library_accuracy, with_target
from blocknas.orchestrator.storage import RegisteredTarget
from blocknas.orchestrator.targets.files import read_target_file
from blocknas.orchestrator.targets.registry import version_of
from blocknas.solvers import best_within_budgets
from blocknas.solvers.pareto import spread_front
from blocknas.workers.llm.blocks import variant_names
from blocknas.workers.llm.decoder import LayerVariant
from blocknas.workers.llm.distillation import DistillSettings, parent_streams
from blocknas.workers.llm.library import assemble, measure_block, puzzle_library
from blocknas.workers.llm.parents import TinyParentSettings, train_tiny_parent
from blocknas.workers.llm.scoring import parent_reference, score_network, tokens_per_second
from blocknas.workers.llm.text import ByteTokenizer, windows


def library_table(library: dict):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "block_library.json"
        path.write_text(json.dumps(library))
        definition = read_target_file(path).as_json() | {"objective": "kl_div"}
    entry = RegisteredTarget("tiny", version_of(definition), "table", definition, datetime.now(UTC))
    return with_target(library_accuracy(entry), entry)


def decode_tokens_per_second(model, prompt: torch.Tensor, new_tokens: int = 64) -> float:
    started = time.perf_counter()
    model.generate(prompt, new_tokens)
    return prompt.shape[0] * new_tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300, help="training steps of the tiny parent")
    parser.add_argument("--bld-steps", type=int, default=150)
    parser.add_argument("--children", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="the parent's initialisation and data order")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    parent = train_tiny_parent(TinyParentSettings(layers=args.layers, steps=args.steps, seed=args.seed))
    encode = ByteTokenizer().encode
    streams = parent_streams(parent, windows("distill", encode, 128, 64, seed=1))
    reference = parent_reference(parent, windows("score", encode, 128, 16))
    evaluation = parent_reference(parent, windows("eval", encode, 128, 16))
    attention, ffn = variant_names(parent.config)
    blocks, records = {}, []
    settings = DistillSettings(steps=args.bld_steps, lr=1e-3)
    for layer, variant in itertools.product(range(args.layers), attention + ffn):
        blocks[layer, variant], record = measure_block(parent, layer, variant, streams, reference, settings)
        records.append(record)
    library = puzzle_library(records, reference.lm_loss)
    table = library_table(library)
    prepared = time.perf_counter() - started

    def measure(layers: list[LayerVariant]) -> dict:
        child = assemble(parent, layers, blocks)
        kl, loss = score_network(child, evaluation)
        params = sum(library[f"layer_{i}"][v.name]["stats"]["num_params"] for i, v in enumerate(layers))
        predicted = sum(library[f"layer_{i}"][v.name]["metrics"]["kl_div"] for i, v in enumerate(layers))
        return {
            "layers": [v.name for v in layers],
            "params": params,
            "predicted_kl": predicted,
            "kl": kl,
            "lm_loss": loss,
            "model": child,
        }

    parent_params = sum(max(v["stats"]["num_params"] for v in layer.values()) for layer in library.values())
    rows = {
        "parent": {
            "params": parent_params,
            "lm_loss": evaluation.lm_loss,
            "tokens_per_s": tokens_per_second(parent, evaluation.tokens),
        }
    }
    for share in (0.75, 0.5):
        budget = share * parent_params
        point = best_within_budgets(table, {"num_params": budget})
        mip = measure([LayerVariant.parse(name.split(":", 1)[-1]) for name in point.blocks])
        uniform = [
            measure([LayerVariant(a, f)] * args.layers)
            for a in attention
            for f in ffn
            if library["layer_0"][LayerVariant(a, f).name]["stats"]["num_params"] * args.layers <= budget
        ]
        best_uniform = min(uniform, key=lambda r: r["kl"])
        rows[f"{share:.0%} params"] = {
            "budget": budget,
            "mip": mip,
            "uniform": best_uniform,
            "uniform_candidates": len(uniform),
        }

    front = spread_front(table, "num_params", {}, args.children)
    children = [measure([LayerVariant.parse(name.split(":", 1)[-1]) for name in p.blocks]) for p in front]
    rho = float(spearmanr([c["predicted_kl"] for c in children], [c["kl"] for c in children]).statistic)
    close = [c for c in children if c["lm_loss"] <= 1.05 * evaluation.lm_loss]
    fastest = max(close, key=lambda c: tokens_per_second(c["model"], evaluation.tokens)) if close else None
    speed = {
        "child_tokens_per_s": tokens_per_second(fastest["model"], evaluation.tokens) if fastest else None,
        "child_params": fastest["params"] if fastest else None,
    }
    prompt = torch.tensor([ByteTokenizer().encode("def read_config(path):\n    ")] * 8)
    speed["parent_decode_tokens_per_s"] = decode_tokens_per_second(parent, prompt)
    texts = {"parent": ByteTokenizer().decode(parent.generate(prompt[:1], 60)[0].tolist())}
    if fastest:
        speed["child_decode_tokens_per_s"] = decode_tokens_per_second(fastest["model"], prompt)
        texts["child"] = ByteTokenizer().decode(fastest["model"].generate(prompt[:1], 60)[0].tolist())

    print(
        f"tiny parent: {args.layers} layers, {parent_params:.0f} non-embedding params, eval LM loss "
        f"{evaluation.lm_loss:.4f}; library of {len(records)} blocks built in {prepared:.1f} s"
    )
    print("| budget | MIP child KL / LM loss | best uniform KL / LM loss (of n within budget) |")
    print("|---|---|---|")
    for name, row in rows.items():
        if name != "parent":
            m, u = row["mip"], row["uniform"]
            print(
                f"| {name} | {m['kl']:.4f} / {m['lm_loss']:.4f} ({m['params']:.0f}) | {u['kl']:.4f} / "
                f"{u['lm_loss']:.4f} ({u['params']:.0f}; of {row['uniform_candidates']}) |"
            )
    print(f"ranking: Spearman {rho:.3f} over {len(children)} front children (predicted vs measured KL)")
    if fastest:
        print(
            f"speed: parent {rows['parent']['tokens_per_s']:.0f} tokens/s, fastest child within 5 % of the "
            f"parent's LM loss {speed['child_tokens_per_s']:.0f} tokens/s "
            f"({speed['child_tokens_per_s'] / rows['parent']['tokens_per_s']:.2f}x, {fastest['params']:.0f} params); "
            f"decode (8 sequences, KV cache) {speed['parent_decode_tokens_per_s']:.0f} against "
            f"{speed['child_decode_tokens_per_s']:.0f} tokens/s"
        )
    for name, text in texts.items():
        print(f"{name} continues the prompt: {text!r}")

    def plain(value):
        return {k: plain(v) for k, v in value.items() if k != "model"} if isinstance(value, dict) else value

    print(
        json.dumps(
            {
                "rows": plain(rows),
                "spearman": rho,
                "children": [plain(c) for c in children],
                "speed": speed,
                "texts": texts,
                "seconds": time.perf_counter() - started,
            }
        )
    )


if __name__ == "__main__":
    main()
