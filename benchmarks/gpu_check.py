"""The CUDA path, end to end, on a machine with an NVIDIA GPU:

    .venv/bin/python benchmarks/gpu_check.py [--steps 300]

1. ``blocknas run experiment=smoke resources.gpus_per_block=0.5 scorer.device=cuda`` on a local Ray
   instance: every block must train on ``cuda``, and with half a GPU each, two trainings must have run at
   the same time on the one GPU (their started/finished intervals in the performance table overlap);
2. every block of the smoke space timed on the GPU (``measure_latency_ms(device="cuda")``, which waits for
   the kernels) next to one CPU thread;
3. the LLM blocks' distillation (``scorer=bld``) is reported as not run: that scorer has no device option
   yet and runs on CPU only.

Prints one JSON line; exits 2 without a CUDA device, 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _max_overlap(scores) -> int:
    """Most trainings at once; blocks measured by one network's training count once."""
    trainings = {s.network_hash: s for s in scores}.values()
    events = sorted([(s.finished_at, -1) for s in trainings] + [(s.started_at, 1) for s in trainings])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def _ray_blocks(steps: int) -> dict:
    from orchestrator.storage import PerformanceStore

    home = Path(tempfile.mkdtemp(prefix="blocknas-gpu-"))
    env = {**os.environ, "BLOCKNAS_HOME": str(home), "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "orchestrator.cli", "run", "experiment=smoke", "--no-progress",
                          "resources.gpus_per_block=0.5", "resources.cpus_per_block=1", "scorer.device=cuda",
                          f"scorer.steps={steps}"], cwd=home, env=env, capture_output=True, text=True)
    scores = [s for s in PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db").block_scores()
              if s.started_at and s.finished_at]
    return {"exit": run.returncode, "blocks": len(scores), "devices": sorted({s.device or "?" for s in scores}),
            "max_concurrent": _max_overlap(scores), "train_seconds": [round(s.train_seconds or 0, 2) for s in scores],
            "error": run.stderr[-800:] if run.returncode else None}


def _timing() -> dict:
    import torch

    from orchestrator.config import load_settings
    from workers.profiling import measure_latency_ms

    space = load_settings(["experiment=smoke"]).space
    torch.set_num_threads(1)
    times = {}
    for i, slot in enumerate(space.slots):
        for choice in slot.choices:
            block, shape = space.build_block(i, choice), space.slot_input_shape(i)
            times[f"s{i}:{choice}"] = {device: round(measure_latency_ms(block, shape, 10, 30, device=device), 4)
                                       for device in ("cpu", "cuda")}
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"cuda": False, "error": "no CUDA device visible to torch (torch "
                          f"{torch.__version__}, built for CUDA {torch.version.cuda}); install a CUDA build of "
                          "torch 2.13.0 on a GPU machine"}))
        return 2
    result = {"cuda": True, "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "ray_blocks": _ray_blocks(args.steps), "block_latency_ms": _timing(),
              "llm_bld": "not run: the bld scorer has no device option yet and runs on CPU only"}
    blocks = result["ray_blocks"]
    result["ok"] = blocks["exit"] == 0 and blocks["devices"] == ["cuda"] and blocks["max_concurrent"] >= 2
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
