"""Per-sub-block costs of a decoder: parameters, memory at a batch and sequence length, measured runtime.

Memory is the weights plus, for attention, the KV cache of ``batch x sequence`` tokens
(``2 x kv_heads x head_dim`` values per token and layer). Runtimes are median wall times on the machine that
runs the job: ``runtime_ms`` of the sub-block's forward pass on a ``[batch, sequence, hidden]`` input
(prefill), ``decode_ms`` of one more token per sequence with the KV cache of ``sequence`` tokens, and
``workload_ms`` of a serving workload: a prefill of ``batch`` prompts of ``sequence`` tokens, then
``generated`` tokens decoded one at a time (each timed at the cache's middle length, ``sequence +
generated / 2``). A workload's throughput is ``batch x generated / workload_ms`` tokens per millisecond, so
a throughput floor is the time budget ``workload_ms <= 1000 x batch x generated / tokens_per_s``.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

import torch

from blocknas.workers.llm.decoder import Attention, DecoderConfig, KVCache, SubBlock

if TYPE_CHECKING:
    from blocknas.workers.llm.space import LlmSpace


@dataclass(frozen=True)
class CostSettings:
    batch: int = 1
    sequence: int = 128
    bytes_per_value: int = 4  # float32 weights and cache (what runs here); 2 for bf16, 1 for FP8
    repeats: int = 5
    seed: int = 0
    generated: int = 0  # tokens decoded after the prompt: the serving workload of ``workload_ms``

    def __post_init__(self) -> None:
        if min(self.batch, self.sequence, self.bytes_per_value, self.repeats) < 1 or self.generated < 0:
            raise ValueError(
                f"invalid cost settings {self}: batch, sequence, bytes_per_value and repeats >= 1, generated >= 0"
            )


def sub_block_costs(block: SubBlock, config: DecoderConfig, settings: CostSettings = CostSettings()) -> dict:
    """``num_params``, ``memory_mib``, ``runtime_ms`` and ``decode_ms`` of one sub-block, and with
    ``settings.generated`` its ``workload_ms``."""
    params = sum(p.numel() for p in block.parameters())
    cache = 0
    if not block.noop and isinstance(block.op, Attention):
        cache = 2 * settings.batch * settings.sequence * block.op.kv_heads * block.op.head_dim
    memory = (params + cache) * settings.bytes_per_value / 2**20
    prefill, decode = _runtimes_ms(block, config, settings) if not block.noop else (0.0, 0.0)
    costs = {"num_params": float(params), "memory_mib": memory, "runtime_ms": prefill, "decode_ms": decode}
    if settings.generated:
        middle = replace(settings, sequence=settings.sequence + settings.generated // 2)
        costs["workload_ms"] = prefill + settings.generated * (
            _runtimes_ms(block, config, middle)[1] if not block.noop else 0.0
        )
    return costs


def _runtimes_ms(block: SubBlock, config: DecoderConfig, settings: CostSettings) -> tuple[float, float]:
    """On the block's device; on a GPU each time waits for the kernels it launched."""
    weight = next(block.parameters())
    device = weight.device
    wait = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    generator = torch.Generator().manual_seed(settings.seed)
    x = torch.randn(settings.batch, settings.sequence + 1, config.hidden, generator=generator).to(device, weight.dtype)
    prompt, token = x[:, :-1], x[:, -1:]
    prefill, decode = [], []
    with torch.no_grad():
        block.eval()(prompt)  # warm-up
        for _ in range(settings.repeats):
            wait()
            started = time.perf_counter()
            block(prompt)
            wait()
            prefill.append((time.perf_counter() - started) * 1000)
            cache = KVCache()
            block(prompt, cache)
            wait()
            started = time.perf_counter()
            block(token, cache)
            wait()
            decode.append((time.perf_counter() - started) * 1000)
    return statistics.median(prefill), statistics.median(decode)


LLM_METRICS = ("memory_mib", "runtime_ms", "decode_ms", "workload_ms")


def space_costs(space_definition: dict, metric: str, settings: CostSettings, threads: int = 1):
    """Every sub-block variant's ``metric`` for an LLM space (``blocknas.workers.costs.CostTable``), and the
    fingerprint of the machine that measured it. A variant costs the same in every layer (the same shapes),
    so each is measured once; the fixed part is the embeddings and the LM head."""
    from blocknas.workers.costs import CostTable
    from blocknas.workers.machine import machine_fingerprint
    from blocknas.workers.spaces import space_from_dict

    if metric not in LLM_METRICS:
        raise ValueError(f"unknown LLM cost {metric!r}; expected one of {LLM_METRICS}")
    if metric == "workload_ms" and not settings.generated:
        raise ValueError("workload_ms needs the workload's generated tokens (generated >= 1)")
    space = cast("LlmSpace", space_from_dict(space_definition))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(settings.seed)
        per_variant = {
            v: sub_block_costs(SubBlock(space.config, v), space.config, settings)[metric]
            for v in (*space.attention, *space.ffn)
        }
        fixed = _head_cost(space.config, metric, settings)
    finally:
        torch.set_num_threads(previous)
    blocks = {(i, c): per_variant[c] for i, slot in enumerate(space.slots) for c in slot.choices}
    return CostTable(metric, fixed, blocks), machine_fingerprint()


def _head_cost(config: DecoderConfig, metric: str, settings: CostSettings) -> float:
    """The embeddings and LM head: their memory, or the head's time (on every prompt token for a prefill, on
    one token per sequence for a decoded token; a workload decodes ``generated`` of them after its prompt)."""
    values = config.vocab_size * config.hidden * (1 if config.tie_embeddings else 2) + config.hidden
    if metric == "memory_mib":
        return values * settings.bytes_per_value / 2**20
    head = torch.nn.Linear(config.hidden, config.vocab_size, bias=False).eval()

    def timed(length: int) -> float:
        x = torch.randn(settings.batch, length, config.hidden)
        times = []
        with torch.no_grad():
            head(x)
            for _ in range(settings.repeats):
                started = time.perf_counter()
                head(x)
                times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    if metric == "runtime_ms":
        return timed(settings.sequence)
    if metric == "decode_ms":
        return timed(1)
    return timed(1) * (settings.generated + 1)  # the prompt's last position, then each decoded token
