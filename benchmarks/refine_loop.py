"""Issue 4's goal table: the verify-and-refit loop against its peers (random, REA, TPE, LayerNAS) on NAS-Bench-201.

    .venv/bin/python benchmarks/refine_loop.py --latency-csv ../shared/data/nb201_latency_ms.csv \
        [--datasets ...] [--devices ...] [--seeds 100] [--methods loop random rea] [--max-evaluations 60]
        [--rounds 200 --patience 200] [--prior proxy_synflow|trained|...]

Runs ``blocknas bench nb201 bench.method=M`` in-process for each dataset and device (budgets at the 25/50/75 %
latency quantiles; each writes its report.json under outputs/bench/). The loop gets at most
``--max-evaluations`` network evaluations per budget, the block table's included; the baselines get as many
as the loop used on each budget (``random_regret``, ``rea_regret``, ``tpe_regret``, ``layernas_regret`` of its
rows) and, run as methods themselves, exactly ``--max-evaluations``. Prints one markdown row per method and
dataset (mean over devices and budgets) and, as its last line, one JSON object with every report's summary.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from blocknas.orchestrator.bench.nb201 import PEERS, BenchSettings, run_nb201_bench
from blocknas.orchestrator.estimation import EstimatorSettings
from blocknas.orchestrator.pipeline.refine import RefineSettings


def _mean(values):
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _cell(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-csv", type=Path, required=True)
    parser.add_argument("--datasets", nargs="+", default=["cifar10", "cifar100", "imagenet16"])
    parser.add_argument("--devices", nargs="+", default=["raspi4", "fpga", "pixel3", "gold_6226", "titanxp_1"])
    parser.add_argument("--methods", nargs="+", default=["loop", "random", "rea"])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--max-evaluations", type=int, default=60)
    parser.add_argument("--patience", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--prior", default="proxy_synflow", help="the loop's table: a proxy's, or trained")
    parser.add_argument("--output-dir", type=Path, default=Path("outputs"))
    args = parser.parse_args()

    refine = RefineSettings(rounds=args.rounds, k=2, max_evaluations=args.max_evaluations, patience=args.patience)
    reports = []
    for method in args.methods:
        for dataset in args.datasets:
            for device in args.devices:
                settings = BenchSettings(
                    dataset,
                    device,
                    args.latency_csv,
                    EstimatorSettings("avg_context"),
                    "linear",
                    args.seeds,
                    (0.25, 0.5, 0.75),
                    "nor_conv_3x3",
                    args.output_dir,
                    method=method,
                    evaluations=args.max_evaluations,
                    refine=refine,
                    prior=args.prior,
                )
                started = time.perf_counter()
                report, _ = run_nb201_bench(settings)
                report["wall_seconds"] = time.perf_counter() - started
                reports.append(report)
                print(
                    f"{method} {dataset} {device}: mean regret {report['mean_regret']:.2f}, "
                    f"violations {report['violations']}, {report['wall_seconds']:.0f} s",
                    flush=True,
                )

    print(
        "| method | dataset | evaluations per budget (mean / max) | mean regret | worst regret | "
        + " | ".join(f"{p}, same evals" for p in PEERS)
        + " | violations | wall s per budget |"
    )
    print("|---|---|---|---|---|" + "---|" * len(PEERS) + "---|---|")
    summary = []
    for method in args.methods:
        for dataset in [*args.datasets, "all"]:
            group = [r for r in reports if r["method"] == method and dataset in (r["dataset"], "all")]
            rows = [b for r in group for b in r["budgets"]]
            entry = {
                "method": method,
                "dataset": dataset,
                "mean_evaluations": float(np.mean([b["evaluations"] for b in rows])),
                "max_evaluations": int(max(b["evaluations"] for b in rows)),
                "mean_regret": float(np.mean([b["regret"] for b in rows])),
                "worst_regret": float(max(b["regret"] for b in rows)),
                **{f"{p}_regret": _mean([b[f"{p}_regret"] for b in rows]) for p in PEERS},
                "violations": int(sum(bool(b["violates_budget"]) for b in rows)),
                "budgets": len(rows),
                "wall_seconds_per_budget": float(sum(r["wall_seconds"] for r in group) / len(rows)),
            }
            summary.append(entry)
            print(
                f"| {method} | {dataset} | {entry['mean_evaluations']:.1f} / {entry['max_evaluations']} | "
                f"{entry['mean_regret']:.2f} | {entry['worst_regret']:.2f} | "
                + "".join(f"{_cell(entry[f'{p}_regret'])} | " for p in PEERS)
                + f"{entry['violations']}/{entry['budgets']} | "
                f"{entry['wall_seconds_per_budget']:.1f} |"
            )
    print(json.dumps({"summary": summary, "refine": refine.__dict__, "seeds": args.seeds, "prior": args.prior}))


if __name__ == "__main__":
    main()
