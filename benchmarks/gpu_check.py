"""The CUDA path, end to end, on a machine with an NVIDIA GPU:

    .venv/bin/python benchmarks/gpu_check.py [--steps 300]

1. ``blocknas run experiment=smoke resources.gpus_per_block=0.5 scorer.device=cuda
   targets.local_cpu.device=cuda`` on a local Ray instance: every block must train on ``cuda``, and with
   half a GPU each, two trainings must have run at the same time on the one GPU (their started/finished
   intervals in the performance table overlap); the measured target is timed on a whole GPU (its cost rows
   name the GPU);
2. the LLM blocks' distillation (``experiment=puzzle_tiny``, small, ``scorer=bld``) on the GPU at half a GPU
   per block, next to the same run on the CPU: every block's row says ``cuda``, and the replace-one-block
   KL of each block agrees with the CPU's (float32 on both, so to rounding and kernel order);
3. every block of the smoke space timed on the GPU (``measure_latency_ms(device="cuda")``, which waits for
   the kernels) next to one CPU thread.

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
LLM_SMALL = (
    "experiment=puzzle_tiny",
    "space.parent.layers=2",
    "space.parent.hidden=32",
    "space.parent.intermediate=64",
    "space.parent.steps=60",
    "space.parent.context=64",
    "scorer.steps=20",
    "scorer.context=64",
    "scorer.distill_windows=16",
    "scorer.score_windows=4",
    "space.attention=[attn_kv2,attn_kv1,attn_noop]",
    "space.ffn=[ffn_64,ffn_32,ffn_noop]",
)


def _max_overlap(scores) -> int:
    """Most trainings at once; blocks measured by one network's training count once."""
    trainings = {s.network_hash: s for s in scores}.values()
    events = sorted([(s.finished_at, -1) for s in trainings] + [(s.started_at, 1) for s in trainings])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def _blocknas_run(*overrides: str) -> tuple[subprocess.CompletedProcess, str]:
    """``blocknas run OVERRIDES`` in a fresh home; the process and the URL of its performance table."""
    home = Path(tempfile.mkdtemp(prefix="blocknas-gpu-"))
    env = {**os.environ, "BLOCKNAS_HOME": str(home), "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "blocknas.orchestrator.cli", "run", "--no-progress", *overrides],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
    )
    return run, f"sqlite:///{home}/.blocknas/perf.db"


def _finished(url: str):
    from blocknas.orchestrator.storage import PerformanceStore

    return [s for s in PerformanceStore(url).block_scores() if s.started_at and s.finished_at]


def _ray_blocks(steps: int) -> dict:
    from sqlalchemy import create_engine, text

    run, url = _blocknas_run(
        "experiment=smoke",
        "resources.gpus_per_block=0.5",
        "resources.cpus_per_block=1",
        "scorer.device=cuda",
        f"scorer.steps={steps}",
        "targets.local_cpu.device=cuda",
    )
    scores = _finished(url)
    with create_engine(url).connect() as conn:
        timed_on = (
            conn.execute(text("SELECT DISTINCT measured_on FROM block_costs WHERE target = 'local_cpu'"))
            .scalars()
            .all()
            if scores
            else []
        )
    return {
        "exit": run.returncode,
        "blocks": len(scores),
        "devices": sorted({s.device or "?" for s in scores}),
        "max_concurrent": _max_overlap(scores),
        "train_seconds": [round(s.train_seconds or 0, 2) for s in scores],
        "measured_target_timed_on": timed_on,
        "error": run.stderr[-800:] if run.returncode else None,
    }


def _llm_blocks() -> dict:
    gpu, gpu_url = _blocknas_run(*LLM_SMALL, "scorer.device=cuda", "resources.gpus_per_block=0.5")
    cpu, cpu_url = _blocknas_run(*LLM_SMALL, "scorer.device=cpu", "cluster.num_cpus=2")
    on_gpu, on_cpu = ({s.block: s for s in _finished(url)} for url in (gpu_url, cpu_url))
    shared = sorted(set(on_gpu) & set(on_cpu))
    diffs = [abs(on_gpu[b].accuracy - on_cpu[b].accuracy) for b in shared]
    return {
        "exit": [gpu.returncode, cpu.returncode],
        "blocks": len(shared),
        "devices": sorted({s.device or "?" for s in on_gpu.values()}),
        "max_concurrent": _max_overlap(list(on_gpu.values())),
        "kl_gpu_minus_cpu_max_abs": max(diffs) if diffs else None,
        "kl_cpu_range": [min(s.accuracy for s in on_cpu.values()), max(s.accuracy for s in on_cpu.values())]
        if on_cpu
        else None,
        "seconds": {
            "gpu": round(sum(s.train_seconds or 0 for s in on_gpu.values()), 2),
            "cpu": round(sum(s.train_seconds or 0 for s in on_cpu.values()), 2),
        },
        "error": (gpu.stderr[-800:] if gpu.returncode else None) or (cpu.stderr[-800:] if cpu.returncode else None),
    }


def _timing() -> dict:
    import torch

    from blocknas.orchestrator.config import load_settings
    from blocknas.workers.profiling import measure_latency_ms

    space = load_settings(["experiment=smoke"]).space
    torch.set_num_threads(1)
    times = {}
    for i, slot in enumerate(space.slots):
        for choice in slot.choices:
            block, shape = space.build_block(i, choice), space.slot_input_shape(i)
            times[f"s{i}:{choice}"] = {
                device: round(measure_latency_ms(block, shape, 10, 30, device=device), 4) for device in ("cpu", "cuda")
            }
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(
            json.dumps(
                {
                    "cuda": False,
                    "error": "no CUDA device visible to torch (torch "
                    f"{torch.__version__}, built for CUDA {torch.version.cuda}); install a CUDA build of "
                    "torch 2.13.0 on a GPU machine",
                }
            )
        )
        return 2
    result = {
        "cuda": True,
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "ray_blocks": _ray_blocks(args.steps),
        "llm_bld": _llm_blocks(),
        "block_latency_ms": _timing(),
    }
    blocks, llm = result["ray_blocks"], result["llm_bld"]
    gpu_name = result["gpu"]
    result["checks"] = {
        "cnn_blocks_on_cuda": blocks["exit"] == 0 and blocks["devices"] == ["cuda"],
        "two_blocks_share_the_gpu": blocks["max_concurrent"] >= 2,
        "measured_target_timed_on_the_gpu": bool(blocks["measured_target_timed_on"])
        and all(gpu_name in label for label in blocks["measured_target_timed_on"]),
        "llm_blocks_on_cuda": llm["exit"] == [0, 0] and llm["devices"] == ["cuda"] and llm["blocks"] == 12,
        # KL values here are 1e-2..1 nats; float32 kernels differ by far less than that between devices
        "llm_kl_matches_the_cpu": llm["kl_gpu_minus_cpu_max_abs"] is not None
        and llm["kl_gpu_minus_cpu_max_abs"] < 1e-2,
    }
    result["ok"] = all(result["checks"].values())
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
