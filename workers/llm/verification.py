"""Verification of an assembled child against its parent on the held-out ``eval`` split: what Puzzle reports
for a finished child. KL and LM loss, its parameters, prefill and decode throughput on this machine, and
its greedy continuation of a fixed prompt (the parent's beside it)."""

from __future__ import annotations

import time

import torch

from blocknas.workers.llm.decoder import Decoder
from blocknas.workers.llm.scoring import ParentReference, score_network, tokens_per_second

PROMPT = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n'


def decode_tokens_per_second(model: Decoder, prompt: torch.Tensor, new_tokens: int = 32) -> float:
    """Greedy KV-cached decoding: new tokens per second after ``prompt`` ``[1, length]`` (after a warm-up)."""
    model.generate(prompt, 2)
    started = time.perf_counter()
    model.generate(prompt, new_tokens)
    return new_tokens / (time.perf_counter() - started)


def verify_child(child: Decoder, reference: ParentReference, encode, decode, new_tokens: int = 32) -> dict:
    """The child's held-out ``kl_div`` and ``lm_loss`` on ``reference``'s tokens, ``params`` (non-embedding),
    ``prefill_tokens_per_s``, ``decode_tokens_per_s`` and ``text`` (its continuation of ``PROMPT``)."""
    kl, loss = score_network(child, reference)
    prompt = torch.tensor([encode(PROMPT)])
    with torch.no_grad():
        text = decode(child.generate(prompt, new_tokens)[0, prompt.shape[1] :].tolist())
    return {
        "kl_div": kl,
        "lm_loss": loss,
        "params": sum(p.numel() for p in child.layers.parameters()),
        "prefill_tokens_per_s": tokens_per_second(child, reference.tokens),
        "decode_tokens_per_s": decode_tokens_per_second(child, prompt, new_tokens),
        "text": text,
    }
