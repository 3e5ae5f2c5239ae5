"""Children of a finished LLM run (``experiment=puzzle_tiny`` or ``puzzle_smollm2``), assembled from the
blocks the run stored and measured on the held-out ``eval`` split.

    BLOCKNAS_HOME=DIR .venv/bin/python benchmarks/puzzle_children.py [--global-steps N] experiment=puzzle_smollm2 \
        [overrides...]

with the overrides the run was given. Reads the run's latest summary (its exact params front), then:

- at 75 % and 50 % of the parent's non-embedding parameters: the front's child against the best uniform
  pruning (one attention and one FFN variant in every layer, the same distilled blocks) within the same
  budget, both measured (KL against the parent, LM loss);
- ranking: Spearman correlation of predicted (summed block KL) and measured KL over ``--children`` points
  spread along the front;
- with ``--global-steps N``: every one of those children globally distilled (Puzzle's GKD, N steps on the
  ``distill`` split) and measured again;
- speed: prefill tokens/s of the parent and of the fastest measured child smaller than the parent within 5 % of
  the parent's LM loss (globally distilled or not).

Prints a table and one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from blocknas.orchestrator.config import load_settings
from blocknas.workers.llm.global_distillation import GlobalDistillSettings, distill_globally
from blocknas.workers.llm.scorer import assemble_child
from blocknas.workers.llm.scoring import parent_reference, score_network, tokens_per_second
from blocknas.workers.llm.text import windows

CHILDREN = 10


def main() -> None:
    overrides, global_steps = list(sys.argv[1:]), 0
    if "--global-steps" in overrides:
        at = overrides.index("--global-steps")
        global_steps = int(overrides[at + 1])
        del overrides[at : at + 2]
    settings = load_settings(overrides)
    space, bld = settings.space, settings.scorer.settings
    runs = sorted((settings.output_dir / settings.name).glob("run-*/summary.json"))
    if not runs:
        raise SystemExit(f"no run of {settings.name} under {settings.output_dir}: run `blocknas run` first")
    front = json.loads(Path(runs[-1]).read_text())["targets"]["params"]["pareto"]
    parent, encode = space.load_parent()
    evaluation = parent_reference(parent, windows("eval", encode, bld.context, 16))
    embedding = space.fixed_cost("params")
    parent_params = sum(space.edge_cost(c, "params") for c in space.base)

    def measure(choices: tuple[str, ...]) -> dict:
        child = assemble_child(space, choices, bld)
        kl, loss = score_network(child, evaluation)
        params = sum(space.edge_cost(c, "params") for c in choices)
        return {"params": params, "kl": kl, "lm_loss": loss, "model": child}

    def choices_of(point: dict) -> tuple[str, ...]:
        return tuple(block.split(":", 1)[1] for block in point["blocks"])

    started = time.perf_counter()
    rows = {}
    for share in (0.75, 0.5):
        budget = share * parent_params
        best = max((p for p in front if p["cost"] - embedding <= budget), key=lambda p: p["predicted_accuracy"])
        uniform = [
            measure((a, f) * space.config.layers)
            for a in space.attention
            for f in space.ffn
            if space.config.layers * (space.edge_cost(a, "params") + space.edge_cost(f, "params")) <= budget
        ]
        rows[f"{share:.0%}"] = {
            "budget": budget,
            "mip": measure(choices_of(best)),
            "uniform": min(uniform, key=lambda r: r["kl"]) if uniform else None,
            "uniform_candidates": len(uniform),
        }
    picks = sorted({int(i) for i in np.linspace(0, len(front) - 1, CHILDREN)})
    children = [measure(choices_of(front[i])) | {"predicted_kl": -front[i]["predicted_accuracy"]} for i in picks]
    rho = float(spearmanr([c["predicted_kl"] for c in children], [c["kl"] for c in children]).statistic)
    distilled = []
    if global_steps:
        tokens = windows("distill", encode, bld.context, bld.distill_windows, seed=bld.seed + 1)
        for child in children:
            model = child["model"]
            distill_globally(parent, model, tokens, GlobalDistillSettings(steps=global_steps, seed=bld.seed))
            kl, loss = score_network(model, evaluation)
            distilled.append(
                child
                | {
                    "kl": kl,
                    "lm_loss": loss,
                    "global_steps": global_steps,
                    "before": {"kl": child["kl"], "lm_loss": child["lm_loss"]},
                }
            )
    close = [
        c for c in children + distilled if c["lm_loss"] <= 1.05 * evaluation.lm_loss and c["params"] < parent_params
    ]
    parent_speed = tokens_per_second(parent, evaluation.tokens)
    fastest = max(close, key=lambda c: tokens_per_second(c["model"], evaluation.tokens)) if close else None

    seconds = time.perf_counter() - started
    print(
        f"{settings.name}: {space.config.layers} layers, {parent_params:.0f} non-embedding params, eval LM loss "
        f"{evaluation.lm_loss:.4f}; {len(front)}-point params front; measured in {seconds:.0f} s"
    )
    print("| non-embedding params | front child KL / LM loss (params) | best uniform KL / LM loss (params; of n) |")
    print("|---|---|---|")
    for name, row in rows.items():
        m, u = row["mip"], row["uniform"]
        uniform = (
            f"{u['kl']:.4f} / {u['lm_loss']:.4f} ({u['params']:.0f}; of {row['uniform_candidates']})"
            if u
            else "none within budget"
        )
        print(f"| {name} | {m['kl']:.4f} / {m['lm_loss']:.4f} ({m['params']:.0f}) | {uniform} |")
    print(f"ranking: Spearman {rho:.3f} over {len(children)} front children (predicted vs measured KL)")
    for child in distilled:
        print(
            f"  {child['params']:.0f} params: KL {child['before']['kl']:.4f} -> {child['kl']:.4f}, LM loss "
            f"{child['before']['lm_loss']:.4f} -> {child['lm_loss']:.4f} after {global_steps} GKD steps"
        )
    speed = {"parent_tokens_per_s": parent_speed}
    if fastest:
        speed |= {
            "child_tokens_per_s": tokens_per_second(fastest["model"], evaluation.tokens),
            "child_params": fastest["params"],
            "child_lm_loss": fastest["lm_loss"],
            "child_global_steps": fastest.get("global_steps", 0),
        }
        print(
            f"speed: parent {parent_speed:.0f} prefill tokens/s, fastest child within 5 % of its LM loss "
            f"{speed['child_tokens_per_s']:.0f} ({speed['child_tokens_per_s'] / parent_speed:.2f}x, "
            f"{fastest['params']:.0f} params)"
        )
    else:
        print("speed: no front child smaller than the parent is within 5 % of the parent's LM loss")

    def plain(value):
        return {k: plain(v) for k, v in value.items() if k != "model"} if isinstance(value, dict) else value

    print(
        json.dumps(
            {
                "rows": plain(rows),
                "spearman": rho,
                "children": [plain(c) for c in children],
                "distilled": [plain(c) for c in distilled],
                "speed": speed,
            }
        )
    )


if __name__ == "__main__":
    main()
