"""Real text for language-model blocks: the Python standard library's own sources, on every machine.

Files are assigned to one of three disjoint splits by a hash of their path inside the standard library
(so the same on every machine of one Python version): ``distill`` (blockwise local distillation, the
tiny parent's training), ``score`` (replace-one-block scoring) and ``eval`` (verifying assembled children).
"""

from __future__ import annotations

import hashlib
import random
import sysconfig
from collections.abc import Callable
from functools import cache
from pathlib import Path

import torch

SPLITS = {"distill": (0, 80), "score": (80, 90), "eval": (90, 100)}  # percent ranges of the path hash
_SKIPPED_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}


class TextError(ValueError):
    """Not enough text, or an unknown split."""


@cache
def stdlib_files() -> tuple[Path, ...]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in root.rglob("*.py") if not _SKIPPED_DIRS & set(p.relative_to(root).parts[:-1])]
    return tuple(sorted(files))


def split_of(path: Path) -> str:
    root = Path(sysconfig.get_paths()["stdlib"])
    bucket = int(hashlib.sha256(path.relative_to(root).as_posix().encode()).hexdigest(), 16) % 100
    return next(name for name, (low, high) in SPLITS.items() if low <= bucket < high)


def split_files(split: str) -> list[Path]:
    if split not in SPLITS:
        raise TextError(f"unknown text split {split!r}; the splits are {sorted(SPLITS)}")
    return [p for p in stdlib_files() if split_of(p) == split]


class ByteTokenizer:
    """UTF-8 bytes as tokens (vocabulary 256): the tiny parent's tokenizer."""

    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, tokens: list[int]) -> str:
        return bytes(tokens).decode("utf-8", errors="replace")


def windows(split: str, encode: Callable[[str], list[int]], length: int, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` disjoint windows of ``length`` tokens, ``[count, length]``, from the split's files in a
    seeded order (files read only until there are enough tokens)."""
    files = split_files(split)
    random.Random(seed).shuffle(files)
    needed, tokens = length * count, []
    for path in files:
        tokens.extend(encode(path.read_text(encoding="utf-8", errors="replace")))
        if len(tokens) >= needed:
            return torch.tensor(tokens[:needed], dtype=torch.long).view(count, length)
    raise TextError(
        f"the {split!r} split has {len(tokens)} tokens, fewer than the {needed} asked for ({count} windows of {length})"
    )
