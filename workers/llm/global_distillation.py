"""Global knowledge distillation (Puzzle's GKD) of an assembled child: after BLD trained every block alone,
the whole child is trained against the parent on the ``distill`` split, so the blocks learn to work
together. Loss (Puzzle's best): KL(parent || child) of the next-token distributions plus ``cosine_weight``
times the mean ``1 - cos`` between the parent's and the child's residual stream after every layer; no LM
loss term. The embeddings, the final norm and the LM head stay the parent's (tied in SmolLM2), so only
the layers change.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from blocknas.workers.llm.decoder import Decoder


@dataclass(frozen=True)
class GlobalDistillSettings:
    steps: int = 100
    batch: int = 4  # windows per step
    lr: float = 1e-4  # AdamW as in BLD: weight decay 0.1, betas 0.9 / 0.95
    weight_decay: float = 0.1
    cosine_weight: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch < 1 or not self.lr > 0 or not self.cosine_weight >= 0:
            raise ValueError(
                f"invalid global distillation settings {self}: steps >= 0, batch >= 1, lr > 0, cosine_weight >= 0"
            )


def distillation_loss(parent: Decoder, child: Decoder, tokens: torch.Tensor, cosine_weight: float) -> torch.Tensor:
    with torch.no_grad():
        teacher = parent.hidden_states(tokens)
        teacher_log_probs = F.log_softmax(parent.head(teacher[-1]).float(), dim=-1)
    states = child.hidden_states(tokens)
    log_probs = F.log_softmax(child.head(states[-1]).float(), dim=-1)
    kl = F.kl_div(log_probs, teacher_log_probs, log_target=True, reduction="none").sum(-1).mean()
    cosine = torch.stack(
        [1 - F.cosine_similarity(s, t, dim=-1).mean() for s, t in zip(states[1:], teacher[1:], strict=True)]
    ).mean()
    return kl + cosine_weight * cosine


def distill_globally(
    parent: Decoder,
    child: Decoder,
    tokens: torch.Tensor,
    settings: GlobalDistillSettings = GlobalDistillSettings(),
    progress=None,
) -> tuple[float, ...]:
    """Train ``child``'s layers in place on ``tokens`` ``[windows, length]``; the loss per step.
    ``progress(step)`` is called after every step (a progress bar's update)."""
    parent.eval().requires_grad_(False)
    for frozen in (child.embed_tokens, child.norm, child.lm_head):
        frozen.requires_grad_(False)
    trainable = [p for p in child.layers.parameters() if p.requires_grad]
    if not trainable or not settings.steps:
        return ()
    curve: list[float] = []
    optimizer = torch.optim.AdamW(trainable, lr=settings.lr, weight_decay=settings.weight_decay, betas=(0.9, 0.95))
    generator = torch.Generator().manual_seed(settings.seed)
    child.train()
    for step in range(settings.steps):
        pick = torch.randint(len(tokens), (min(settings.batch, len(tokens)),), generator=generator)
        loss = distillation_loss(parent, child, tokens[pick], settings.cosine_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        curve.append(float(loss.detach()))
        if progress is not None:
            progress(step)
    child.eval()
    return tuple(curve)
