"""Train networks from the Pareto fronts of a finished run and compare with their predicted accuracy.

    python benchmarks/verify_predictions.py [--summary PATH] [--count 6] [--seeds 1] [HYDRA OVERRIDES...]

Uses the same scorer settings as the run (same data split, steps and seed), so the only difference
between prediction and measurement is what the additive block model misses. Prints a table and, as
its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from blocknas.orchestrator.config import load_settings
from blocknas.workers.records import NetworkJob
from blocknas.workers.scoring import score_network


def latest_summary(output_dir: Path, name: str) -> Path:
    candidates = sorted((output_dir / name).glob("run-*/summary.json"))
    if not candidates:
        sys.exit(f"no run summary under {output_dir / name}; run `blocknas run` first")
    return candidates[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path)
    parser.add_argument("--count", type=int, default=6, help="distinct front networks to train")
    parser.add_argument("--seeds", type=int, default=1, help="training seeds per network (1: the run's seed)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    settings = load_settings(args.overrides)
    summary = json.loads((args.summary or latest_summary(settings.output_dir, settings.name)).read_text())
    points = {}
    for target in summary["targets"].values():
        for point in target["pareto"]:
            points.setdefault(tuple(point["blocks"]), point["predicted_accuracy"])
    chosen = list(points.items())
    # spread the sample over the accuracy range of the fronts
    chosen.sort(key=lambda kv: kv[1])
    picks = [chosen[int(k)] for k in np.linspace(0, len(chosen) - 1, min(args.count, len(chosen)))]

    rows = []
    print(f"{'predicted':>9} {'measured':>9} {'error':>7}  network")
    for blocks, predicted in picks:
        choices = tuple(b.split(":", 1)[1] for b in blocks)
        measured = []
        for seed_offset in range(args.seeds):
            train = dataclasses.replace(settings.scorer.settings, seed=settings.scorer.settings.seed + seed_offset)
            result = score_network(
                NetworkJob(
                    "verify",
                    settings.space_definition,
                    choices,
                    train,
                    "cpu",
                    settings.scorer.kind,
                    settings.scorer.data or {},
                )
            )
            measured.append(result.accuracy)
        mean = float(np.mean(measured))
        rows.append({"blocks": list(blocks), "predicted": predicted, "measured": measured, "error": mean - predicted})
        print(f"{predicted:9.2f} {mean:9.2f} {mean - predicted:+7.2f}  {' '.join(blocks)}", flush=True)
    errors = np.array([r["error"] for r in rows])
    pred, meas = np.array([r["predicted"] for r in rows]), np.array([np.mean(r["measured"]) for r in rows])
    from scipy.stats import spearmanr

    result = {
        "networks": len(rows),
        "seeds": args.seeds,
        "mean_abs_error": round(float(np.abs(errors).mean()), 3),
        "max_abs_error": round(float(np.abs(errors).max()), 3),
        "mean_error": round(float(errors.mean()), 3),
        "spearman": round(float(spearmanr(pred, meas).statistic), 3) if len(rows) > 2 else None,
        "rows": rows,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
