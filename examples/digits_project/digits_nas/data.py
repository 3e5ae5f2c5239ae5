"""The project's own data loader: scikit-learn's 8x8 digits, standardised, optionally a subset of classes."""

from dataclasses import dataclass

import numpy as np

from blocknas import Dataset


@dataclass(frozen=True)
class Settings:
    classes: int = 10  # keep the digits 0 .. classes - 1


def standardized_digits(settings: Settings) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    keep = bunch.target < settings.classes
    images = bunch.images[keep][:, None].astype(np.float32)
    images = (images - images.mean()) / images.std()
    return Dataset("standardized_digits", images, bunch.target[keep])


standardized_digits.Settings = Settings
