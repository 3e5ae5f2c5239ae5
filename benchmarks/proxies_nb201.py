"""Training-free proxies against NAS-Bench-201's trained accuracies, and a training-free block table's regret.

    .venv/bin/python benchmarks/proxies_nb201.py [--cells 200] [--datasets cifar10 cifar100 imagenet16]
        [--latency-csv ../shared/data/nb201_latency_ms.csv --devices raspi4 pixel3 ...]

1. Spearman of each proxy (``blocknas.workers.proxies``: params, synflow, grad_norm, naswot) with the true accuracy
   on ``--cells`` cells drawn uniformly (seed 0) from all 15,625 and on the connected ones among them, per
   dataset; the published best is 0.82 (Abdelfattah et al., ICLR 2021, on all cells, CIFAR-10 synflow ~0.74).
2. With ``--latency-csv``: each proxy's block table at **zero network evaluations** (the avg_context
   estimator's 25 networks scored by the proxy instead of trained, latency by substitution), solved under
   the 25/50/75 % latency quantiles of each device with the connectivity rule, and the pick's regret
   against the truth.

Prints markdown tables and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from blocknas.workers.proxies import PROXIES, ProxySettings
from blocknas.workers.proxy_scores import proxy_score
from blocknas.workers.spaces.nb201 import EDGES, OPS, Nb201Space
from blocknas.workers.tabular import nb201_accuracies, read_network_table


def correlations(dataset: str, cells: int) -> dict:
    accuracy = nb201_accuracies(dataset)
    space = Nb201Space.from_dict({"dataset": dataset})
    codes = random.Random(0).sample(sorted(accuracy), cells)
    truth = np.array([accuracy[c] for c in codes])
    connected = np.array([space.is_connected(space.choices_of(c)) for c in codes])
    result = {}
    for proxy in PROXIES:
        started = time.perf_counter()
        scores = np.array([proxy_score(proxy, space, space.choices_of(c), ProxySettings()) for c in codes])
        result[proxy] = {
            "spearman_all": float(stats.spearmanr(scores, truth).statistic),
            "spearman_connected": float(stats.spearmanr(scores[connected], truth[connected]).statistic),
            "seconds_per_cell": (time.perf_counter() - started) / cells,
        }
    return result


def zero_evaluation_regret(dataset: str, latency_csv: Path, devices: list[str]) -> dict:
    from blocknas.orchestrator.bench.nb201 import NB201_CONNECTIVITY, estimator_networks, load_ground_truth
    from blocknas.orchestrator.estimation import EstimatorSettings, block_values
    from blocknas.solvers import BlockTable, best_within_budgets

    space = Nb201Space.from_dict({"dataset": dataset, "base": "nor_conv_3x3"})
    sizes = [len(OPS)] * len(EDGES)
    contexts, networks = estimator_networks(space, EstimatorSettings("avg_context"))
    accuracy = nb201_accuracies(dataset)
    result = {}
    for proxy in PROXIES:
        scored = {s: proxy_score(proxy, space, [OPS[j] for j in s], ProxySettings()) for s in networks}
        values, offset = block_values(contexts, sizes, scored)
        regrets = []
        for device in devices:
            latency = read_network_table(latency_csv, device)
            truth = load_ground_truth(accuracy, latency)
            costs, cost_offset = block_values(
                contexts, sizes, {s: latency[truth.codes[truth.index(s)]] for s in networks}
            )
            table = BlockTable(
                slots=EDGES,
                choices=(OPS,) * len(EDGES),
                accuracy=values,
                accuracy_offset=offset,
                costs={"latency_ms": costs},
                cost_offsets={"latency_ms": cost_offset},
                rules=(NB201_CONNECTIVITY,),
            )
            for q in (0.25, 0.5, 0.75):
                budget = float(np.quantile(truth.latency, q))
                pick = truth.index(table.index_of(best_within_budgets(table, {"latency_ms": budget}).blocks))
                fits = truth.valid & (truth.latency <= budget)
                regrets.append(float(truth.accuracy[fits].max() - truth.accuracy[pick]))
        result[proxy] = {
            "mean_regret": float(np.mean(regrets)),
            "worst_regret": float(np.max(regrets)),
            "budgets": len(regrets),
            "proxy_evaluations": len(networks),
            "network_evaluations": 0,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--datasets", nargs="+", default=["cifar10", "cifar100", "imagenet16"])
    parser.add_argument("--latency-csv", type=Path)
    parser.add_argument("--devices", nargs="+", default=["raspi4", "pixel3", "eyeriss", "samsung_s7", "titanx_32"])
    args = parser.parse_args()
    torch.set_num_threads(1)

    report = {"cells": args.cells, "correlations": {}, "zero_evaluations": {}}
    print("| dataset | proxy | Spearman, all sampled cells | connected only | s per cell |")
    print("|---|---|---|---|---|")
    for dataset in args.datasets:
        report["correlations"][dataset] = rows = correlations(dataset, args.cells)
        for proxy, row in rows.items():
            print(
                f"| {dataset} | {proxy} | {row['spearman_all']:.3f} | {row['spearman_connected']:.3f} | "
                f"{row['seconds_per_cell']:.3f} |",
                flush=True,
            )
    if args.latency_csv:
        print("\n| dataset | proxy | regret at 0 network evaluations (mean / worst) | budgets |")
        print("|---|---|---|---|")
        for dataset in args.datasets:
            report["zero_evaluations"][dataset] = rows = zero_evaluation_regret(dataset, args.latency_csv, args.devices)
            for proxy, row in rows.items():
                print(
                    f"| {dataset} | {proxy} | {row['mean_regret']:.2f} / {row['worst_regret']:.2f} | "
                    f"{row['budgets']} |",
                    flush=True,
                )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
