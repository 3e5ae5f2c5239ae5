"""Start-up time of commands that run no Ray job: `blocknas --help` and `blocknas targets list --json`.

    .venv/bin/python benchmarks/cli_start.py [--repeats 10]

Goals (issue 13): --help under 0.5 s, targets list --json under 1.5 s (median). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {"--help": ["--help"], "targets list --json": ["targets", "list", "--json"]}
GOALS = {"--help": 0.5, "targets list --json": 1.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    blocknas = Path(sys.executable).with_name("blocknas")
    results = {}
    with tempfile.TemporaryDirectory() as home:
        url = f"storage.url=sqlite:///{home}/perf.db"
        subprocess.run([blocknas, "db", "upgrade", url], check=True, capture_output=True)  # a store to list
        for name, argv in COMMANDS.items():
            extra = [url] if argv[0] == "targets" else []
            samples = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                subprocess.run([blocknas, *argv, *extra], check=True, capture_output=True, cwd=home)
                samples.append(time.perf_counter() - started)
            results[name] = {
                "median_s": round(statistics.median(samples), 3),
                "max_s": round(max(samples), 3),
                "goal_s": GOALS[name],
                "met": statistics.median(samples) < GOALS[name],
            }
    for name, r in results.items():
        print(
            f"{name:<22} median {r['median_s']:.3f} s  max {r['max_s']:.3f} s  goal < {r['goal_s']} s  "
            f"{'met' if r['met'] else 'MISSED'}"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
