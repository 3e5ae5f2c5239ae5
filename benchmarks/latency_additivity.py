"""How well the per-block latency table predicts the latency of whole networks on this machine.

    python benchmarks/latency_additivity.py [--networks 10] [HYDRA OVERRIDES...]

Measures the `local_cpu` block table as `blocknas run` does, then times random whole networks and
compares. Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from blocknas.orchestrator.config import load_settings
from blocknas.workers.costs import measured_latency
from blocknas.workers.profiling import measure_latency_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    settings = load_settings(args.overrides)
    target = next(t for t in settings.targets if t.kind == "measured")
    space = settings.space
    torch.set_num_threads(target.threads)
    table = measured_latency(space, target.warmup, target.repeats, target.threads)
    rng = np.random.default_rng(args.seed)
    errors = []
    print(f"{'predicted ms':>12} {'measured ms':>11} {'error %':>8}  network")
    for _ in range(args.networks):
        choices = [slot.choices[rng.integers(len(slot.choices))] for slot in space.slots]
        predicted = table.fixed + sum(table.blocks[(i, c)] for i, c in enumerate(choices))
        input_shape = (1, space.input_channels, space.input_size, space.input_size)
        measured = measure_latency_ms(space.build_network(choices), input_shape, target.warmup, target.repeats)
        errors.append(100 * (predicted - measured) / measured)
        print(f"{predicted:12.3f} {measured:11.3f} {errors[-1]:+8.1f}  {' '.join(choices)}")
    errors_arr = np.array(errors)
    print(
        json.dumps(
            {
                "networks": args.networks,
                "mean_abs_error_pct": round(float(np.abs(errors_arr).mean()), 1),
                "max_abs_error_pct": round(float(np.abs(errors_arr).max()), 1),
                "mean_error_pct": round(float(errors_arr.mean()), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
