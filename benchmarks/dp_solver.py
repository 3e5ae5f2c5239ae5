"""LayerNAS's bucket DP (``blocknas.solvers.dp``) against the exact MIP (``best_within_budgets``), same tables,
same run.

    .venv/bin/python benchmarks/dp_solver.py [--latency-csv ../shared/data/nb201_latency_ms.csv]
        [--buckets 100 1000 10000] [--seeds 5]

Tables: Puzzle-size libraries (80 layers x 125 variants: 5 attention x 25 FFN widths, memory adding up
over the two sub-blocks, KL with no-op outliers, as ``tests/solvers/test_puzzle_shaped.py`` builds them) at
memory budgets of 50/70/90 % of the parent, and, with ``--latency-csv``, NAS-Bench-201 block tables
(avg_context estimator, latency by substitution) of every device in the file at the 25/50/75 % latency
quantiles, without the connectivity rule (the DP cannot express it; the MIP solves the same rule-less
table). Per table family, bucket count and mode (``rounded``: always the bucket steps; ``grid``: the costs'
own decimal grid where they lie on one): how often the DP returns the MIP's optimum (to 1e-9), its largest
shortfall, and the mean seconds of each. Prints a markdown table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from blocknas.solvers import BlockTable, best_within_budgets
from blocknas.solvers.dp import dp_best_within_budget

ATTENTION = [(1.0, 0.0), (0.5, 0.02), (0.25, 0.05), (0.125, 0.1), (0.0, None)]  # (share of the parent, KL)
FFN = [(1 - k / 25, 0.004 * k) for k in range(24)] + [(0.0, None)]  # 25 widths, the last a no-op


def puzzle_sized(seed: int, layers: int = 80) -> BlockTable:
    rng = np.random.default_rng(seed)
    kl, memory = [], []
    for _ in range(layers):
        sensitivity, noop_kl = rng.lognormal(0, 0.8), rng.uniform(100, 500)
        rows = [
            (
                sum(noop_kl if v is None else sensitivity * v * rng.uniform(0.7, 1.3) for v in (a_kl, f_kl)),
                760 * a_share + 670 * f_share + 2 + 5 * rng.uniform(),
            )
            for a_share, a_kl in ATTENTION
            for f_share, f_kl in FFN
        ]
        kl.append(-np.array([r[0] for r in rows]))
        memory.append(np.array([r[1] for r in rows]))
    return BlockTable(
        slots=tuple(f"layer_{i}" for i in range(layers)),
        choices=tuple(tuple(f"v{j}" for j in range(len(ATTENTION) * len(FFN))) for _ in range(layers)),
        accuracy=tuple(kl),
        costs={"memory_mib": tuple(memory)},
    )


def nb201_tables(latency_csv: Path):
    from blocknas.orchestrator.bench.nb201 import estimator_networks
    from blocknas.orchestrator.estimation import EstimatorSettings, block_values
    from blocknas.workers.spaces.nb201 import EDGES, OPS, Nb201Space
    from blocknas.workers.tabular import nb201_accuracies, read_network_table

    devices = latency_csv.read_text().splitlines()[0].split(",")[2:]
    space = Nb201Space.from_dict({"dataset": "cifar10", "base": "nor_conv_3x3"})
    sizes = [len(OPS)] * len(EDGES)
    contexts, networks = estimator_networks(space, EstimatorSettings("avg_context"))
    accuracy = nb201_accuracies("cifar10")

    def code(s):
        return "".join(map(str, s))

    values, offset = block_values(contexts, sizes, {s: accuracy[code(s)] for s in networks})
    for device in devices:
        latency = read_network_table(latency_csv, device)
        costs, cost_offset = block_values(contexts, sizes, {s: latency[code(s)] for s in networks})
        table = BlockTable(
            slots=EDGES,
            choices=(OPS,) * len(EDGES),
            accuracy=values,
            accuracy_offset=offset,
            costs={"latency_ms": costs},
            cost_offsets={"latency_ms": cost_offset},
        )
        budgets = [float(np.quantile(list(latency.values()), q)) for q in (0.25, 0.5, 0.75)]
        yield device, table, budgets


def compare(table: BlockTable, metric: str, budget: float, buckets: list[int]) -> dict:
    started = time.perf_counter()
    exact = best_within_budgets(table, {metric: budget})
    result = {"mip_seconds": time.perf_counter() - started, "mip_value": exact.predicted_accuracy}
    for b in buckets:
        for mode, grid_limit in (("rounded", 0), ("grid", 100_000)):
            started = time.perf_counter()
            point = dp_best_within_budget(table, metric, budget, b, max_grid_buckets=grid_limit)
            result[b, mode] = {
                "seconds": time.perf_counter() - started,
                "value": point.predicted_accuracy,
                "fits": point.costs[metric] <= budget + 1e-9,
            }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-csv", type=Path)
    parser.add_argument("--buckets", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    families: dict[str, list[dict]] = {"puzzle 80x125": []}
    for seed in range(args.seeds):
        table = puzzle_sized(seed)
        parent = sum(float(c[0]) for c in table.costs["memory_mib"])
        for share in (0.5, 0.7, 0.9):
            families["puzzle 80x125"].append(compare(table, "memory_mib", share * parent, args.buckets))
    if args.latency_csv:
        families["NB201 (no connectivity rule)"] = [
            compare(table, "latency_ms", budget, args.buckets)
            for _, table, budgets in nb201_tables(args.latency_csv)
            for budget in budgets
        ]

    print("| tables | cases | DP buckets | DP mode | DP optimal | worst shortfall | always fits | DP s | MIP s |")
    print("|---|---|---|---|---|---|---|---|---|")
    summary = []
    for family, cases in families.items():
        for key in [(b, mode) for b in args.buckets for mode in ("rounded", "grid")]:
            gaps = [c["mip_value"] - c[key]["value"] for c in cases]
            optimal = sum(g <= 1e-9 * max(1.0, abs(c["mip_value"])) for g, c in zip(gaps, cases, strict=True))
            entry = {
                "tables": family,
                "cases": len(cases),
                "buckets": key[0],
                "mode": key[1],
                "optimal": optimal,
                "worst_shortfall": max(gaps),
                "always_fits": all(c[key]["fits"] for c in cases),
                "dp_seconds": float(np.mean([c[key]["seconds"] for c in cases])),
                "mip_seconds": float(np.mean([c["mip_seconds"] for c in cases])),
            }
            summary.append(entry)
            print(
                f"| {family} | {entry['cases']} | {key[0]} | {key[1]} | {optimal}/{entry['cases']} | "
                f"{entry['worst_shortfall']:.3g} | {entry['always_fits']} | {entry['dp_seconds']:.4f} | "
                f"{entry['mip_seconds']:.4f} |"
            )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
