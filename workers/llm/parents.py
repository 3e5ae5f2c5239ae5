"""Parents: a tiny decoder trained here on real text (tests, ``experiment=puzzle_tiny``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from workers.llm.decoder import Decoder, DecoderConfig
from workers.llm.text import ByteTokenizer, windows


@dataclass(frozen=True)
class TinyParentSettings:
    layers: int = 4
    hidden: int = 64
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 192
    context: int = 128
    steps: int = 300
    batch: int = 16
    lr: float = 3e-3
    seed: int = 0


def lm_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of ``logits`` for ``tokens`` ``[batch, length]``."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def train_tiny_parent(settings: TinyParentSettings = TinyParentSettings()) -> Decoder:
    """A byte-level Llama decoder trained on the ``distill`` split (AdamW, cosine decay, seeded)."""
    torch.manual_seed(settings.seed)
    config = DecoderConfig(vocab_size=ByteTokenizer.vocab_size, hidden=settings.hidden, layers=settings.layers,
                           heads=settings.heads, kv_heads=settings.kv_heads, intermediate=settings.intermediate)
    model = Decoder(config)
    data = windows("distill", ByteTokenizer().encode, settings.context, settings.steps * settings.batch // 4,
                   seed=settings.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.1, betas=(0.9, 0.95))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.steps)
    generator = torch.Generator().manual_seed(settings.seed)
    model.train()
    for _ in range(settings.steps):
        batch = data[torch.randint(len(data), (settings.batch,), generator=generator)]
        loss = lm_loss(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    return model.eval()
