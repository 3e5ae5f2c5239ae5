"""Peak memory of each kind of LLM block job against the parent's depth: the whole parent in memory (how
jobs ran before the shards) against the jobs that read the parent's shards (how they run now).

    .venv/bin/python benchmarks/llm_job_memory.py [--depths 2 8 32] [--hidden 256] [--windows 32]

For each depth, a random Llama-family parent of that many layers (hidden ``--hidden``, 4x FFN, 8 heads,
4 KV heads, vocabulary 8,192, seeded) and, each step in a fresh process, its peak resident memory
(``ru_maxrss``; a process that has only imported torch and blocknas is the ``imports`` column):

- ``whole``: one job as before: the parent, its streams over the distill windows and its scoring reference,
  then BLD of a middle layer's FFN and its replace-one-block score;
- ``pass``: the streaming pass that writes the shards (once per parent, text and windows);
- ``bld``: one BLD job from the shards (its layer's weights and the two streams around it);
- ``score``: one replace-one-block score from the shards (the later layers loaded one at a time).

The goal: ``bld`` flat in depth. Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

VOCAB, LENGTH = 8192, 128


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _parent(layers: int, hidden: int):
    import torch

    from blocknas.workers.llm.decoder import Decoder, DecoderConfig

    torch.manual_seed(0)
    return Decoder(DecoderConfig(VOCAB, hidden, layers, 8, 4, 4 * hidden)).eval()


def _tokens(windows: int):
    import torch

    generator = torch.Generator().manual_seed(1)
    return torch.randint(VOCAB, (windows, LENGTH), generator=generator), torch.randint(
        VOCAB, (max(2, windows // 4), LENGTH), generator=generator
    )


def one_step(step: str, layers: int, hidden: int, windows: int, directory: Path) -> dict:
    """The peak memory (MiB) of a process that runs ``step`` (``imports``: nothing; it also counts the
    parent's weights, built on torch's meta device, which allocates nothing)."""
    import torch

    from blocknas.workers.llm.distillation import DistillSettings, distill_sub_block, parent_streams
    from blocknas.workers.llm.scoring import parent_reference, score_swap
    from blocknas.workers.llm.shards import ParentShards, distill_from_shards, score_from_shards, write_shards

    settings, variant, middle = DistillSettings(steps=5, batch=4), f"ffn_{2 * hidden}", layers // 2
    if step == "whole":
        parent = _parent(layers, hidden)
        distill, score = _tokens(windows)
        streams, reference = parent_streams(parent, distill), parent_reference(parent, score)
        block, _ = distill_sub_block(parent, middle, variant, streams, settings)
        score_swap(parent, reference, middle, block)
    elif step == "pass":
        write_shards(_parent(layers, hidden), *_tokens(windows), directory)
    elif step != "imports":
        shards = ParentShards(directory)
        block, _ = distill_from_shards(shards, middle, variant, settings)
        if step == "score":
            score_from_shards(shards, middle, block)
    if step == "imports":
        with torch.device("meta"):
            weights = sum(p.numel() * p.element_size() for p in _parent(layers, hidden).parameters()) / 2**20
        return {"imports": peak_mib(), "parent_mib": weights}
    return {step: peak_mib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--windows", type=int, default=32)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # a child process: STEP LAYERS DIRECTORY
    args = parser.parse_args()
    if args.one:
        step, layers, directory = args.one
        print(json.dumps(one_step(step, int(layers), args.hidden, args.windows, Path(directory))))
        return
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for depth in args.depths:
            directory = Path(scratch) / f"shards-{depth}"
            row = {"layers": depth}
            for step in ("imports", "whole", "pass", "bld", "score"):  # the pass before the jobs that read its shards
                command = [sys.executable, __file__, "--one", step, str(depth), str(directory)]
                command += ["--hidden", str(args.hidden), "--windows", str(args.windows)]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                row |= json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
    print("| layers | parent weights | imports only | whole parent (before) | streaming pass | BLD job | scoring job |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['layers']} | {r['parent_mib']:.0f} | {r['imports']:.0f} | {r['whole']:.0f} | {r['pass']:.0f} | "
            f"{r['bld']:.0f} | {r['score']:.0f} |"
        )
    print("(peak resident memory of each process, MiB)")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
