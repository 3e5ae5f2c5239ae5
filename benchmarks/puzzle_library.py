"""A real Puzzle block library, solved by blocknas next to Puzzle's own solver and HiGHS called directly.

    python benchmarks/puzzle_library.py PATH/block_library.json [--puzzle-src PATH/puzzle-repo] [--front]

PATH is NVlabs/puzzle's ``examples/data/Llama-3.3-70B-Instruct/block_library.json`` (80 layers x 16 variants;
non-commercial licence: read where it is, never copied). ``--puzzle-src`` is a checkout of that repository:
its ``puzzle.mip_nas`` (python-mip with CBC; ``pip install mip tqdm`` for this benchmark only) runs on the
same cases in the same process. HiGHS direct is one whole-table MIP (``highspy``, zero gap), the oracle.
``--front`` adds the 100-point spread front within 97,000 MiB (what ``fronts show`` stores).

Goals (issue 14): every answer within 1e-9 relative of the oracle and under 0.5 s; 3 diverse solutions faster
than Puzzle's CBC; a 20-point front within memory 80,000 MiB and params within 60 % of the parent under 3 s;
no case over 10 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import highspy
import numpy as np

from blocknas.orchestrator.deploy.fronts import library_accuracy, with_target
from blocknas.orchestrator.storage import RegisteredTarget
from blocknas.orchestrator.targets.registry import version_of
from blocknas.solvers import best_within_budgets, solution_pool
from blocknas.solvers.highs import new_highs, run_highs
from blocknas.solvers.pareto import spread_front


def load(path: Path):
    from blocknas.orchestrator.targets.files import read_target_file

    definition = read_target_file(path).as_json() | {"objective": "kl_div"}
    entry = RegisteredTarget("bench", version_of(definition), "table", definition, datetime.now(UTC))
    return json.loads(path.read_text()), with_target(library_accuracy(entry), entry)


def oracle(table, budgets: dict[str, float]) -> float:
    """The least total KL within ``budgets``: one whole-table MIP, HiGHS directly, zero gap."""
    kl = -np.concatenate(table.accuracy)
    sizes = [len(c) for c in table.choices]
    n, starts = len(kl), np.r_[0, np.cumsum(sizes)[:-1]]
    highs = new_highs()
    highs.addVars(n, np.zeros(n), np.ones(n))
    highs.changeColsIntegrality(n, np.arange(n, dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * n))
    highs.changeColsCost(n, np.arange(n, dtype=np.int32), kl)
    for start, size in zip(starts, sizes, strict=True):
        highs.addRow(1, 1, size, np.arange(start, start + size, dtype=np.int32), np.ones(size))
    for name, limit in budgets.items():
        highs.addRow(-highspy.kHighsInf, limit, n, np.arange(n, dtype=np.int32), np.concatenate(table.costs[name]))
    run_highs(highs)
    chosen = np.asarray(highs.getSolution().col_value) > 0.5
    return float(kl[chosen].sum())


def timed(function):
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("library", type=Path)
    parser.add_argument("--puzzle-src", type=Path, help="a checkout of NVlabs/puzzle: run its mip_nas too")
    parser.add_argument("--front", action="store_true", help="also the 100-point front within 97,000 MiB")
    args = parser.parse_args()
    raw, table = load(args.library)
    puzzle = None
    if args.puzzle_src:
        sys.path.insert(0, str(args.puzzle_src))
        import puzzle.mip_nas as puzzle

    parent = {m: sum(float(c.max()) for c in table.costs[m]) for m in ("memory_mib", "runtime_ms", "num_params")}
    rows = []
    singles = {
        "one H100 (memory 80,000 MiB, runtime for 6,000 tokens/s)": {
            "memory_mib": 80_000.0,
            "runtime_ms": 256 * 1200 / 6000 * 1000,
        },
        "runtime 30,000 ms, memory 80,000 MiB": {"runtime_ms": 30_000.0, "memory_mib": 80_000.0},
        "memory 97,723 MiB, runtime 46,061 ms": {"memory_mib": 97_723.0, "runtime_ms": 46_061.0},
    }
    for case, budgets in singles.items():
        point, seconds = timed(lambda b=budgets: best_within_budgets(table, b))
        exact, oracle_seconds = timed(lambda b=budgets: oracle(table, b))
        row = {
            "case": case,
            "blocknas": -point.predicted_accuracy,
            "blocknas_s": seconds,
            "highs_direct": exact,
            "highs_direct_s": oracle_seconds,
            "relative_error": abs(-point.predicted_accuracy - exact) / exact,
        }
        if puzzle:
            (_, value, _), row["puzzle_cbc_s"] = timed(
                lambda b=budgets: puzzle.mip_nas(
                    raw, "metrics.kl_div", {f"stats.{k}": v for k, v in b.items()}, bigger_is_better=False
                )
            )
            row["puzzle_cbc"] = value
        rows.append(row)

    diverse = {"memory_mib": 0.85 * parent["memory_mib"], "runtime_ms": 0.85 * parent["runtime_ms"]}
    pool, seconds = timed(lambda: solution_pool(table, 3, diverse, min_distance=20))
    row = {
        "case": "3 diverse solutions (20 layers apart), 85 % of the parent's memory and runtime",
        "blocknas": [-p.predicted_accuracy for p in pool],
        "blocknas_s": seconds,
    }
    if puzzle:
        solutions, row["puzzle_cbc_s"] = timed(
            lambda: puzzle.multi_solution_mip_nas(
                raw,
                "metrics.kl_div",
                {f"stats.{k}": v for k, v in diverse.items()},
                bigger_is_better=False,
                num_solutions=3,
                minimal_diversity=20,
            )
        )
        row["puzzle_cbc"] = [s["total_value"] for s in solutions]
    rows.append(row)

    budgets = {"memory_mib": 80_000.0, "num_params": 0.6 * parent["num_params"]}
    front, seconds = timed(lambda: spread_front(table, "runtime_ms", budgets, 20))
    rows.append(
        {
            "case": "20-point front (runtime) within memory 80,000 MiB and params within 60 % of the parent",
            "blocknas": len(front),
            "blocknas_s": seconds,
        }
    )
    if args.front:
        front, seconds = timed(lambda: spread_front(table, "runtime_ms", {"memory_mib": 97_000.0}, 100))
        rows.append(
            {"case": "fronts show: 100-point front within 97,000 MiB", "blocknas": len(front), "blocknas_s": seconds}
        )

    for row in rows:
        cells = [f"{k} {v:.9g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items() if k != "case"]
        print(f"{row['case']}\n    " + ", ".join(cells))
    print(json.dumps(rows, default=float))


if __name__ == "__main__":
    main()
