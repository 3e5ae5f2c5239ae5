"""Brief, seeded, deterministic training and held-out evaluation of one network."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from blocknas.workers.data import Split
from blocknas.workers.records import TrainSettings

CURVE_POINTS = 50  # training-loss points per curve (each the mean over its steps)
VAL_CHECKS = 4  # held-out accuracy at 1/4, 2/4, 3/4 of the steps and at the end


@dataclass(frozen=True)
class TrainOutcome:
    accuracy: float
    loss: float
    train_loss: float
    seconds: float
    curve: dict  # {"train_loss": [(step, mean loss since the last point)], "val_accuracy": [(step, %)]}


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("scorer.device=cuda but this worker has no CUDA device; use device=auto")
    return torch.device(requested)


def seed_everything(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def train_and_evaluate(model: nn.Module, data: Split, settings: TrainSettings, device: torch.device) -> TrainOutcome:
    """Train ``model`` for ``settings.steps`` AdamW steps, then evaluate on the held-out split."""
    start = time.perf_counter()
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.lr, total_steps=settings.steps)
    generator = torch.Generator().manual_seed(settings.seed)
    order = torch.randperm(len(data.train_y), generator=generator)
    cursor, tail_losses, window = 0, [], []
    tail_from = int(settings.steps * 0.9)
    every = max(1, settings.steps // CURVE_POINTS)
    checks = {max(1, round(settings.steps * k / VAL_CHECKS)) for k in range(1, VAL_CHECKS)}
    curve: dict[str, list[tuple[int, float]]] = {"train_loss": [], "val_accuracy": []}
    for step in range(settings.steps):
        if cursor + settings.batch_size > len(order):
            order, cursor = torch.randperm(len(data.train_y), generator=generator), 0
        batch = order[cursor : cursor + settings.batch_size]
        cursor += settings.batch_size
        x, y = data.train_x[batch].to(device), data.train_y[batch].to(device)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        window.append(loss.item())
        if step >= tail_from:
            tail_losses.append(window[-1])
        if (step + 1) % every == 0 or step + 1 == settings.steps:
            curve["train_loss"].append((step + 1, sum(window) / len(window)))
            window = []
        if step + 1 in checks:  # held-out accuracy along the way (eval mode changes no weight)
            curve["val_accuracy"].append((step + 1, evaluate(model, data.val_x, data.val_y, device)[0]))
            model.train()
    accuracy, val_loss = evaluate(model, data.val_x, data.val_y, device)
    curve["val_accuracy"].append((settings.steps, accuracy))
    return TrainOutcome(accuracy, val_loss, sum(tail_losses) / len(tail_losses), time.perf_counter() - start, curve)


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> tuple[float, float]:
    """Top-1 accuracy in percent and mean cross-entropy."""
    model.eval()
    correct, loss_sum = 0, 0.0
    for start in range(0, len(y), 500):
        xb, yb = x[start : start + 500].to(device), y[start : start + 500].to(device)
        logits = model(xb)
        loss_sum += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return 100.0 * correct / len(y), loss_sum / len(y)
