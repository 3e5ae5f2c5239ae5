"""Every MathNAS variant (estimator x predictor/objective) on NAS-Bench-201, for several datasets and devices.

    .venv/bin/python benchmarks/nb201_variants.py --latency-csv ../shared/data/nb201_latency_ms.csv \
        [--datasets cifar10 cifar100 imagenet16] [--devices raspi4 fpga pixel3 gold_6226 titanxp_1] [--seeds 100]

Runs ``blocknas bench nb201`` in-process for each combination (each writes its report.json under
outputs/bench/), prints a markdown table per variant and dataset averaged over devices, and as its last
line one JSON object with every row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from blocknas.orchestrator.bench.nb201 import BenchSettings, run_nb201_bench
from blocknas.orchestrator.estimation import ESTIMATORS, PREDICTORS, EstimatorSettings

KEYS = (
    "kendall_all",
    "spearman_all",
    "kendall_valid",
    "spearman_valid",
    "latency_mape_valid",
    "mean_regret",
    "max_regret",
    "mean_random_regret",
    "violations",
    "evaluations",
    "solve_seconds",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-csv", type=Path, required=True)
    parser.add_argument("--datasets", nargs="+", default=["cifar10", "cifar100", "imagenet16"])
    parser.add_argument("--devices", nargs="+", default=["raspi4", "fpga", "pixel3", "gold_6226", "titanxp_1"])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs"))
    args = parser.parse_args()

    rows = []
    for dataset in args.datasets:
        for device in args.devices:
            for estimator in ESTIMATORS:
                for predictor in PREDICTORS:
                    settings = BenchSettings(
                        dataset,
                        device,
                        args.latency_csv,
                        EstimatorSettings(estimator),
                        predictor,
                        args.seeds,
                        (0.25, 0.5, 0.75),
                        "nor_conv_3x3",
                        args.output_dir,
                    )
                    report, _ = run_nb201_bench(settings)
                    rows.append({k: report[k] for k in ("dataset", "hardware", "estimator", "predictor", *KEYS)})

    print(
        "| dataset | estimator | predictor | evals | Kendall all | Spearman all | Spearman valid | "
        "latency MAPE valid % | mean regret | worst regret | random regret | violations | solve s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for dataset in args.datasets:
        for estimator in ESTIMATORS:
            for predictor in PREDICTORS:
                group = [
                    r for r in rows if (r["dataset"], r["estimator"], r["predictor"]) == (dataset, estimator, predictor)
                ]

                def mean(key, group=group):
                    return float(np.mean([r[key] for r in group]))

                print(
                    f"| {dataset} | {estimator} | {predictor} | {group[0]['evaluations']} | "
                    f"{mean('kendall_all'):.3f} | {mean('spearman_all'):.3f} | {mean('spearman_valid'):.3f} | "
                    f"{mean('latency_mape_valid'):.1f} | {mean('mean_regret'):.2f} | "
                    f"{max(r['max_regret'] for r in group):.2f} | {mean('mean_random_regret'):.2f} | "
                    f"{sum(r['violations'] for r in group)}/{3 * len(group)} | {mean('solve_seconds'):.3f} |"
                )
    print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
