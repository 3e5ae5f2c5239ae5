"""Issue 6: target change to stored front, switching, correction, and solver scale on block libraries.

    .venv/bin/python benchmarks/targets.py [--repeats 10] [--url sqlite:///...]

Block libraries are generated in the Puzzle JSON format (random latency, memory and params per variant,
a KL-divergence score that grows as a variant gets cheaper) and imported through the registry:
- change -> front: register a new version of a 20 x 10 target and run one scheduler check, until its
  front is stored (median of ``--repeats``);
- switch: ``switching.switch`` for random budgets from the stored front (median of 200 calls);
- correction: ``switching.correct`` (rescale, new version, one solve) on the 20 x 10 target (median);
- scale: a 20-point front of latency within memory and params budgets (``spread_front``: exact points
  spread over the cost range), for 80 x 16 and 80 x 125 variants; solved by Lagrangian cores
  (``blocknas.solvers.lagrangian_core``). ``--check`` also solves each with one whole-table model and reports
  whether the points are the same networks, and how long that took.
Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from blocknas.orchestrator.config import load_settings
from blocknas.orchestrator.deploy import switching
from blocknas.orchestrator.deploy.fronts import library_accuracy, with_target
from blocknas.orchestrator.deploy.scheduler import SchedulerSettings, TargetScheduler
from blocknas.orchestrator.storage import PerformanceStore
from blocknas.orchestrator.targets import registry
from blocknas.solvers import pareto
from blocknas.solvers.pareto import spread_front


def library(slots: int, variants: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(slots):
        latency = rng.uniform(0.1, 2.0, variants)
        kl = np.maximum(0.0, 1.0 / (latency + 0.2) + rng.normal(0, 0.1, variants))
        layers.append(
            {
                "name": f"layer_{i}",
                "variants": [
                    {
                        "name": f"v{j}",
                        "stats": {
                            "latency_ms": round(float(latency[j]), 5),
                            "memory_mib": round(float(40 * latency[j] + rng.uniform(0, 20)), 3),
                            "params": round(float(1e6 * latency[j] * rng.uniform(0.5, 1.5))),
                        },
                        "metrics": {"kl_div": round(float(kl[j]), 5)},
                    }
                    for j in range(variants)
                ],
            }
        )
    return {"layers": layers}


@contextlib.contextmanager
def whole_table_models():
    saved, pareto.CORE_MIN_CANDIDATES = pareto.CORE_MIN_CANDIDATES, 10**12
    try:
        yield
    finally:
        pareto.CORE_MIN_CANDIDATES = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--url", help="performance store (default: a fresh SQLite file)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="also solve the scale fronts with one whole-table model and compare (about 40 s)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="blocknas-targets-"))
    url = args.url or f"sqlite:///{work}/perf.db"
    settings = load_settings([f"storage.url={url}", f"tracking.uri=sqlite:///{work}/mlflow.db", f"paths.root={work}"])
    store = PerformanceStore(url)
    checker = TargetScheduler(settings, SchedulerSettings(poll_seconds=1.0))
    path = work / "phone.json"

    change = []
    for k in range(args.repeats + 1):
        path.write_text(json.dumps(library(20, 10, seed=k)))
        started = time.perf_counter()
        registry.register(store, "phone", path, update=k > 0)
        assert checker.check_once() == 1
        if k:  # the first also creates the stores
            change.append(time.perf_counter() - started)

    entry = registry.find(store, "phone")
    base = library_accuracy(entry)
    table = with_target(base, entry)
    rng = np.random.default_rng(0)
    low, high = table.min_cost("latency_ms"), table.min_cost("latency_ms") * 3
    switches, from_front = [], 0
    for budget in rng.uniform(low, high, 200):
        result = switching.switch(store, base, "phone", float(budget), settings.solver.max_points)
        switches.append(result.seconds)
        from_front += not result.solved
    corrections = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        switching.correct(
            store,
            base,
            "phone",
            measured=1.05,
            predicted=1.0,
            budget=float(high),
            max_points=settings.solver.max_points,
        )
        corrections.append(time.perf_counter() - started)

    scale = {}
    for variants in (16, 125):
        lib = library(80, variants, seed=variants)
        path.write_text(json.dumps(lib))
        registry.register(store, f"llm{variants}", path, update=False)
        entry = registry.find(store, f"llm{variants}")
        big = with_target(library_accuracy(entry), entry)
        budgets = {
            "memory_mib": 0.6 * sum(float(c.max()) for c in big.costs["memory_mib"]),
            "params": 0.6 * sum(float(c.max()) for c in big.costs["params"]),
        }
        started = time.perf_counter()
        points = spread_front(big, "latency_ms", budgets, 20)
        scale[f"80x{variants}"] = {"seconds": time.perf_counter() - started, "points": len(points)}
        if args.check:
            with whole_table_models():
                started = time.perf_counter()
                reference = spread_front(big, "latency_ms", budgets, 20)
            scale[f"80x{variants}"].update(
                whole_table_seconds=time.perf_counter() - started,
                same_networks=[p.blocks for p in points] == [p.blocks for p in reference],
            )

    result = {
        "change_to_front_median_s": statistics.median(change),
        "change_to_front_max_s": max(change),
        "switch_median_ms": 1000 * statistics.median(switches),
        "switch_p95_ms": 1000 * float(np.quantile(switches, 0.95)),
        "switch_from_front": from_front,
        "switch_calls": len(switches),
        "correct_median_ms": 1000 * statistics.median(corrections),
        "scale": scale,
        "store": url.split(":")[0],
    }
    print("| measurement | value | goal |\n|---|---|---|")
    print(
        f"| target change -> front stored, 20 x 10 (median of {len(change)}) | "
        f"{result['change_to_front_median_s']:.3f} s | <= 2 s |"
    )
    print(
        f"| switch from the stored front (median / p95 of {len(switches)}, {from_front} from the front) | "
        f"{result['switch_median_ms']:.2f} / {result['switch_p95_ms']:.2f} ms | <= 10 ms |"
    )
    print(
        f"| correction: rescale + new version + solve, 20 x 10 (median) | {result['correct_median_ms']:.1f} ms "
        f"| <= 200 ms |"
    )
    for name, value in scale.items():
        check = (
            f"; one whole-table model: {value['whole_table_seconds']:.1f} s, same networks: {value['same_networks']}"
            if "same_networks" in value
            else ""
        )
        print(
            f"| 20-point front, {name}, two budgets | {value['seconds']:.2f} s ({value['points']} points{check}) | "
            f"{'< 5 s' if name.endswith('125') else ''} |"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
