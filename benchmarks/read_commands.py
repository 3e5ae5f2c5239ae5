"""Wall time of the commands that answer from stored data (issue 32: under 1 s on an idle 2-core machine;
a library's ``pick`` within 0.5 s plus its solve; ``plugins`` and ``config show`` under 2 s).

    .venv/bin/python benchmarks/read_commands.py [--repeats 5] [--library PATH/block_library.json]

Builds a home in a temporary directory: ``blocknas run experiment=smoke`` (a 2 x 3 CNN on MNIST), a
per-block CSV target checked against it, and a block library (``--library``: e.g. NVlabs/puzzle's
Llama-3.3-70B ``block_library.json``, read where it is; else a generated 80 x 16 Puzzle-shaped one). Each
command runs once untimed (the first read of an experiment saves its read snapshot, and the library's front
is solved and stored), then ``--repeats`` times: the median and the slowest are printed, with the goal. A
library ``pick`` reports its solve's own seconds; the goal is on the rest. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PHONE_CSV = """slot,block,metric,value
fixed,,latency_ms,1.0
s0,skip,latency_ms,0.1
s0,conv_k3,latency_ms,0.9
s0,sep_k3,latency_ms,0.5
s1,conv_k3,latency_ms,0.8
s1,sep_k3,latency_ms,0.4
s1,mbconv_k3_e2,latency_ms,1.2
"""

SMOKE = "experiment=smoke"
COMMANDS = {
    "targets list": (["targets", "list"], 1.0),
    "blocks": (["blocks", SMOKE], 1.0),
    "fronts show (run target)": (["fronts", "show", "local_cpu", SMOKE], 1.0),
    "fronts show (registered)": (["fronts", "show", "phone", SMOKE], 1.0),
    "switch (registered)": (["switch", "phone", "--budget", "2.5", SMOKE], 1.0),
    "pick (registered)": (["pick", "phone", "--budget", "latency_ms=2.5", SMOKE], 1.0),
    "fronts show (library)": (["fronts", "show", "library"], 1.0),
    "switch (library)": (["switch", "library", "--budget", "50000"], 1.0),
    "pick (library)": (["pick", "library", "--budget", "stats.runtime_ms=40000", "--json"], 0.5),
    "plugins": (["plugins"], 2.0),
    "config show": (["config", "show", SMOKE], 2.0),
}


def generated_library(path: Path, layers: int = 80, variants: int = 16, seed: int = 0) -> None:
    """A Puzzle-shaped library: per layer, variants with memory, runtime and a KL that grows as they shrink."""
    rng = np.random.default_rng(seed)
    library = {}
    for layer in range(layers):
        options = {}
        for v in range(variants):
            share = (v + 1) / variants
            options[f"variant {v}"] = {
                "stats": {"memory_mib": 1400 * share + rng.uniform(0, 20), "runtime_ms": 800 * share},
                "metrics": {"kl_div": (1 - share) * rng.uniform(0.01, 0.2)},
            }
        library[f"layer_{layer}"] = options
    path.write_text(json.dumps(library))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--library", type=Path, help="a Puzzle block_library.json (default: a generated one)")
    args = parser.parse_args()
    blocknas = Path(sys.executable).with_name("blocknas")
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "BLOCKNAS_HOME": home}

        def call(argv: list[str]) -> subprocess.CompletedProcess:
            return subprocess.run([blocknas, *argv], check=True, capture_output=True, text=True, cwd=home, env=env)

        call(["run", SMOKE, "--no-progress"])
        (Path(home) / "phone.csv").write_text(PHONE_CSV)
        call(["targets", "add", "phone", "--file", str(Path(home) / "phone.csv"), SMOKE])
        library = args.library or Path(home) / "block_library.json"
        if args.library is None:
            generated_library(library)
        call(["targets", "add", "library", "--file", str(library), "--budget", "stats.memory_mib=80000"])
        results = {}
        for name, (argv, goal) in COMMANDS.items():
            call(argv)  # the first read: snapshot saved, fronts stored
            walls, solves = [], []
            for _ in range(args.repeats):
                started = time.perf_counter()
                out = call(argv)
                walls.append(time.perf_counter() - started)
                if name == "pick (library)":
                    solves.append(json.loads(out.stdout)["seconds"])
            solve = statistics.median(solves) if solves else 0.0
            median = statistics.median(walls)
            results[name] = {
                "median_s": round(median, 3),
                "max_s": round(max(walls), 3),
                "solve_s": round(solve, 3),
                "goal_s": goal,
                "met": median - solve < goal,
            }
    for name, r in results.items():
        solve = f" (solve {r['solve_s']:.3f} s)" if r["solve_s"] else ""
        print(
            f"{name:<26} median {r['median_s']:.3f} s{solve}  max {r['max_s']:.3f} s  "
            f"goal < {r['goal_s']} s{' + solve' if solve else ''}  {'met' if r['met'] else 'MISSED'}"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
