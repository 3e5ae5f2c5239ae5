"""The project's own scorer: SGD with momentum for a few epochs, then held-out accuracy."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Settings:
    epochs: int = 3
    batch_size: int = 64
    lr: float = 0.05
    seed: int = 0
    train_size: int = 1300
    val_size: int = 497

    def __post_init__(self):
        if self.epochs < 1 or self.lr <= 0:
            raise ValueError("scorer.epochs must be >= 1 and scorer.lr > 0")


def train_sgd(model, data, settings: Settings, device) -> dict:
    split = data.split(settings.train_size, settings.val_size, settings.seed)
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=0.9)
    generator = torch.Generator().manual_seed(settings.seed)
    losses = []
    for _ in range(settings.epochs):
        for batch in torch.randperm(len(split.train_y), generator=generator).split(settings.batch_size):
            loss = F.cross_entropy(model(split.train_x[batch].to(device)), split.train_y[batch].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        logits = model(split.val_x.to(device))
        accuracy = (logits.argmax(1).cpu() == split.val_y).float().mean().item() * 100
        val_loss = F.cross_entropy(logits.cpu(), split.val_y).item()
    return {"accuracy": accuracy, "loss": val_loss, "train_loss": sum(losses[-10:]) / len(losses[-10:])}


train_sgd.Settings = Settings
