"""The LLM workers' CUDA path alone, for a GPU machine with PyTorch and transformers but no Ray, MLflow,
database or network (the workers import none of those):

    python benchmarks/gpu_llm_check.py [--device cuda] [--hidden 2048 --layers 8 --heads 16 --kv-heads 8
        --intermediate 5632 --vocab 32000] [--context 256 --windows 16 --steps 20]

A random-initialised Llama of realistic width is built here with transformers' own config class and
``save_pretrained``, and read back by blocknas's ``hf`` parent kind. Then, for one layer's FFN and attention
variants: BLD (``distill_sub_block``) and replace-one-block scoring (``score_swap``) on the CPU in float32,
on the device in float32 (they must agree: the same initial loss to 1e-3, the same swap KL to 1e-2
relative) and on the device in bfloat16 autocast (reported); prefill tokens/s of the parent and of a child
with the layer swapped, in each precision; the device's peak memory of each kind of job. Works from a
checkout (the package need not be installed). ``--device cpu`` is a dry run of the script itself.
Prints one JSON line; exits 2 without the device, 1 when a check fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _import_from_checkout() -> None:
    """``blocknas.workers`` from this checkout's folders when blocknas is not installed (as on a GPU box)."""
    if importlib.util.find_spec("blocknas") is not None:
        return
    for name, folder in (("blocknas", ROOT / "blocknas"), ("blocknas.workers", ROOT / "workers")):
        spec = importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        if name == "blocknas.workers":
            spec.loader.exec_module(module)


def timed(function, device: torch.device):
    """``function()``'s result, its seconds and the device's peak memory (MiB) while it ran."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = function()
    if cuda:
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return result, time.perf_counter() - started, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--windows", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here", file=sys.stderr)
        return 2
    _import_from_checkout()
    from transformers import LlamaConfig, LlamaForCausalLM

    from blocknas.workers.llm.decoder import LayerVariant
    from blocknas.workers.llm.distillation import DistillSettings, distill_sub_block, parent_streams, precision
    from blocknas.workers.llm.hf import HfParentSettings, decoder_from_weights, hf_parent_config, safetensors_weights
    from blocknas.workers.llm.library import assemble
    from blocknas.workers.llm.scoring import parent_reference, score_swap, tokens_per_second

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=4 * args.context,
    )
    with tempfile.TemporaryDirectory() as folder:
        LlamaForCausalLM(config).save_pretrained(folder)
        settings = HfParentSettings(folder)  # weights only: random tokens need no tokenizer
        cpu_parent, device_parent = (
            decoder_from_weights(hf_parent_config(settings), safetensors_weights(Path(folder))) for _ in range(2)
        )
    device_parent = device_parent.to(device)
    generator = torch.Generator().manual_seed(1)
    distill = torch.randint(args.vocab, (args.windows, args.context), generator=generator)
    score = torch.randint(args.vocab, (max(2, args.windows // 4), args.context), generator=generator)
    layer, distill_settings = args.layers // 2, DistillSettings(steps=args.steps, batch=4, lr=1e-4)
    half = f"ffn_{args.intermediate // 2}"
    variants = (half, f"attn_kv{max(1, args.kv_heads // 2)}")
    report: dict = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "jobs": {}}
    failures: list[str] = []
    own = cpu_parent.config.parent_layer()
    layers = [own] * args.layers
    layers[layer] = LayerVariant(own.attention, half)  # the child: one layer's FFN halved
    for name, run_on, mode in (
        ("cpu float32", torch.device("cpu"), "float32"),
        ("device float32", device, "float32"),
        ("device bfloat16", device, "bfloat16"),
    ):
        parent = cpu_parent if run_on.type == "cpu" else device_parent
        with precision(run_on, mode):
            (streams, reference), _, streams_peak = timed(
                lambda p=parent, d=run_on: (parent_streams(p, distill.to(d)), parent_reference(p, score.to(d))), run_on
            )
            results: dict = {"streams_peak_mib": streams_peak}
            blocks = {}
            for variant in variants:
                (blocks[variant], distilled), seconds, peak = timed(
                    partial(distill_sub_block, parent, layer, variant, streams, distill_settings), run_on
                )
                swap, _, score_peak = timed(partial(score_swap, parent, reference, layer, blocks[variant]), run_on)
                results[variant] = {
                    "initial_loss": distilled.initial_loss,
                    "final_loss": distilled.final_loss,
                    "kl_div": swap.kl_div,
                    "bld_seconds": seconds,
                    "bld_peak_mib": peak,
                    "score_peak_mib": score_peak,
                }
            child = assemble(parent, layers, {(layer, half): blocks[half]}).to(run_on)
            results["prefill_tokens_per_s"] = {
                "parent": tokens_per_second(parent, reference.tokens),
                "child": tokens_per_second(child, reference.tokens),
            }
        report["jobs"][name] = results
    cpu, gpu = report["jobs"]["cpu float32"], report["jobs"]["device float32"]
    for variant in variants:
        for key, tolerance in (("initial_loss", 1e-3), ("kl_div", 1e-2)):
            if abs(cpu[variant][key] - gpu[variant][key]) > tolerance * max(1e-6, abs(cpu[variant][key])):
                failures.append(f"{variant}: {key} {gpu[variant][key]} on the device, {cpu[variant][key]} on the CPU")
    report["failures"] = failures
    print(json.dumps(report))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
