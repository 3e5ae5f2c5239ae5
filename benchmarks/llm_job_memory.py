"""Peak memory of each kind of LLM block job against the parent's depth (issue 31's scale goal; the baseline).

    .venv/bin/python benchmarks/llm_job_memory.py [--depths 2 8 32] [--hidden 256] [--windows 32]

For each depth a fresh process builds a random Llama-family parent of that many layers (hidden ``--hidden``,
4x FFN, 8 heads, 4 KV heads, vocabulary 8,192) and runs, as a ``bld`` worker does today: the parent's
streams over the distill windows and its scoring reference (``prepare``), one BLD job of a middle layer's
FFN (``bld``) and one replace-one-block score (``score``). Each step reports the process's peak resident
memory after it (``ru_maxrss``, MiB). Today every job holds the whole parent and every layer's stream, so
the numbers grow with depth; the goal is a BLD job flat in depth. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_depth(layers: int, hidden: int, windows: int) -> dict:
    import torch

    from blocknas.workers.llm.decoder import Decoder, DecoderConfig
    from blocknas.workers.llm.distillation import DistillSettings, distill_sub_block, parent_streams
    from blocknas.workers.llm.scoring import parent_reference, score_swap

    torch.manual_seed(0)
    config = DecoderConfig(8192, hidden, layers, 8, 4, 4 * hidden)
    parent = Decoder(config).eval()
    out = {
        "layers": layers,
        "parent_mib": sum(p.numel() for p in parent.parameters()) * 4 / 2**20,
        "loaded": peak_mib(),
    }
    tokens = torch.randint(8192, (windows, 128))
    streams, reference = parent_streams(parent, tokens), parent_reference(parent, tokens[: windows // 4])
    out["prepare"] = peak_mib()
    block, _ = distill_sub_block(parent, layers // 2, f"ffn_{2 * hidden}", streams, DistillSettings(steps=5, batch=4))
    out["bld"] = peak_mib()
    score_swap(parent, reference, layers // 2, block)
    out["score"] = peak_mib()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--windows", type=int, default=32)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process: measure one depth
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_depth(args.one, args.hidden, args.windows)))
        return
    rows = []
    for depth in args.depths:
        command = [sys.executable, __file__, "--one", str(depth), "--hidden", str(args.hidden)]
        done = subprocess.run([*command, "--windows", str(args.windows)], capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        "| layers | parent weights MiB | peak after loading | after streams + reference | after BLD | after scoring |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['layers']} | {r['parent_mib']:.0f} | {r['loaded']:.0f} | {r['prepare']:.0f} | {r['bld']:.0f} | "
            f"{r['score']:.0f} |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
