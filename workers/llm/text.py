"""Text for language-model blocks, from a registry of sources (``scorer.text.kind``):

- ``stdlib`` (the default): the Python standard library's own sources, on every machine;
- ``txt``: a ``.txt`` file, or every ``.txt`` file under a folder, each file one document;
- ``jsonl``: ``.jsonl`` files, each line one document, its text under ``scorer.text.field``;
- ``parquet``: ``.parquet`` files, each row one document, its text in the column ``scorer.text.field``.

Documents are assigned to one of three disjoint splits by a hash of their name (a file's path inside the
source, and a line or row number), so the same on every machine: ``distill`` (blockwise local distillation,
the tiny parent's training), ``score`` (replace-one-block scoring) and ``eval`` (verifying assembled
children). An empty file, text that is not UTF-8 and a record without its text field are refused, naming
the file; so is a split with too few tokens for the windows asked of it, saying how many it needs.
A third-party source is a function ``TextSettings -> [(name, read)]`` registered in ``TEXT_SOURCES`` (or
an entry point of ``blocknas.text_sources``).
"""

from __future__ import annotations

import hashlib
import json
import random
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

from blocknas.workers.registry import Registry

if TYPE_CHECKING:
    import torch

SPLITS = {"distill": (0, 80), "score": (80, 90), "eval": (90, 100)}  # percent ranges of the name's hash
_SKIPPED_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}


class TextError(ValueError):
    """Text that cannot be used: missing, empty, not UTF-8, without its field, or too little of it."""


@dataclass(frozen=True)
class TextSettings:
    """``scorer.text``: the source's kind, its file or folder (not for ``stdlib``) and the text field of
    ``jsonl`` records and ``parquet`` rows; with ``chat``, that field is a conversation (a list of
    ``{"role", "content"}`` messages) that the parent's tokenizer renders with its chat template."""

    kind: str = "stdlib"
    path: str = ""
    field: str = "text"
    chat: bool = False  # jsonl, parquet: the field holds a conversation, rendered by the parent's chat template


# A document: its name (what the split is decided by) and how to read its text (or its conversation).
Document = tuple[str, Callable[[], "str | list[dict]"]]


# A text source: ``settings -> its documents`` (each named and read on demand).
TEXT_SOURCES: Registry[Callable[[TextSettings], list[Document]]] = Registry("text_source")


@cache
def stdlib_files() -> tuple[Path, ...]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in root.rglob("*.py") if not _SKIPPED_DIRS & set(p.relative_to(root).parts[:-1])]
    return tuple(sorted(files))


def _constant(text: str | list[dict]) -> Callable[[], str | list[dict]]:
    return lambda: text


def _stdlib(settings: TextSettings) -> list[Document]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return [
        (p.relative_to(root).as_posix(), partial(p.read_text, encoding="utf-8", errors="replace"))
        for p in stdlib_files()
    ]


def source_files(settings: TextSettings, suffix: str) -> tuple[Path, list[Path]]:
    """The source's root folder and its files: ``path`` itself, or every ``*suffix`` file under it."""
    path = Path(settings.path).expanduser()
    if not settings.path or not path.exists():
        raise TextError(f"scorer.text.path {settings.path!r} does not exist: give a {suffix} file or a folder of them")
    files = [path] if path.is_file() else sorted(p for p in path.rglob(f"*{suffix}") if p.is_file())
    if not files:
        raise TextError(f"scorer.text.path {path} holds no {suffix} file")
    return (path.parent if path.is_file() else path), files


def _utf8(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise TextError(f"{path} is empty: remove it or give it text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TextError(f"{path} is not UTF-8 text (byte {exc.start}): convert it, e.g. with iconv -t UTF-8") from None


def _txt(settings: TextSettings) -> list[Document]:
    root, files = source_files(settings, ".txt")
    return [(p.relative_to(root).as_posix(), partial(_utf8, p)) for p in files]


def _field(record, settings: TextSettings, where: str) -> str | list[dict]:
    value = record.get(settings.field) if isinstance(record, dict) else None
    if settings.chat:
        return conversation(value, where, settings.field)
    if not isinstance(value, str):
        raise TextError(f"{where} has no text field {settings.field!r} (set scorer.text.field to the field that has)")
    return value


def conversation(value, where: str, field: str = "messages") -> list[dict]:
    """``value`` as a conversation: a non-empty list of ``{"role": str, "content": str}`` messages."""
    if (
        not isinstance(value, list)
        or not value
        or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
        )
    ):
        raise TextError(
            f'{where}: {field!r} is not a conversation (a list of {{"role": ..., "content": ...}} messages); '
            "set scorer.text.chat=false for plain text"
        )
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _jsonl(settings: TextSettings) -> list[Document]:
    root, files = source_files(settings, ".jsonl")
    documents: list[Document] = []
    for path in files:
        lines = [(n, line) for n, line in enumerate(_utf8(path).splitlines(), 1) if line.strip()]
        for n, line in lines:
            try:
                text = _field(json.loads(line), settings, f"{path}:{n}")
            except json.JSONDecodeError as exc:
                raise TextError(f"{path}:{n} is not a JSON object: {exc.msg}") from None
            documents.append((f"{path.relative_to(root).as_posix()}:{n}", _constant(text)))
    return documents


def _parquet(settings: TextSettings) -> list[Document]:
    import pyarrow.parquet as pq

    root, files = source_files(settings, ".parquet")
    documents: list[Document] = []
    for path in files:
        table = pq.read_table(path)
        if settings.field not in table.column_names:
            raise TextError(
                f"{path} has no column {settings.field!r} (its columns: {', '.join(table.column_names)}); "
                "set scorer.text.field"
            )
        for n, value in enumerate(table.column(settings.field).to_pylist()):
            text = _field({settings.field: value}, settings, f"{path} row {n}")
            documents.append((f"{path.relative_to(root).as_posix()}:{n}", _constant(text)))
    if not documents:
        raise TextError(f"{settings.path} holds no rows")
    return documents


TEXT_SOURCES.register("stdlib", _stdlib)
TEXT_SOURCES.register("txt", _txt)
TEXT_SOURCES.register("jsonl", _jsonl)
TEXT_SOURCES.register("parquet", _parquet)


def split_of(name: str) -> str:
    bucket = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 100
    return next(split for split, (low, high) in SPLITS.items() if low <= bucket < high)


def split_documents(split: str, source: TextSettings = TextSettings()) -> list[Document]:
    if split not in SPLITS:
        raise TextError(f"unknown text split {split!r}; the splits are {sorted(SPLITS)}")
    documents = TEXT_SOURCES.get(source.kind, "scorer.text.kind")(source)
    return [d for d in documents if split_of(d[0]) == split]


def text_fingerprint(source: TextSettings) -> tuple[str, str]:
    """(a name, the content hash) of every document of ``source``: changed text never reuses old blocks.
    The standard library is named by its Python version and hashed by its files' names and sizes."""
    import sys

    digest = hashlib.sha256()
    if source.kind == "stdlib":
        root = Path(sysconfig.get_paths()["stdlib"])
        for split in SPLITS:
            for path in stdlib_files():
                if split_of(path.relative_to(root).as_posix()) == split:
                    digest.update(f"{split}:{path.name}:{path.stat().st_size}\n".encode())
        return f"python{sys.version_info.major}.{sys.version_info.minor}-stdlib", digest.hexdigest()
    for name, read in TEXT_SOURCES.get(source.kind, "scorer.text.kind")(source):
        value = read()
        text = (value if isinstance(value, str) else json.dumps(value, sort_keys=True)).encode()
        digest.update(f"{name}\n{len(text)}\n".encode() + text)
    return f"{source.kind}:{Path(source.path).name}", digest.hexdigest()


class ByteTokenizer:
    """UTF-8 bytes as tokens (vocabulary 256): the tiny parent's tokenizer."""

    vocab_size = 256

    def encode(self, text: str | list[dict]) -> list[int]:
        if not isinstance(text, str):
            raise TextError("the tiny parent reads UTF-8 bytes and has no chat template: set scorer.text.chat=false")
        return list(text.encode("utf-8"))

    def decode(self, tokens: list[int]) -> str:
        return bytes(tokens).decode("utf-8", errors="replace")


def windows(
    split: str,
    encode: Callable[[str | list[dict]], list[int]],
    length: int,
    count: int,
    seed: int = 0,
    source: TextSettings = TextSettings(),
) -> torch.Tensor:
    """``count`` disjoint windows of ``length`` tokens, ``[count, length]``, from the split's documents in a
    seeded order (documents read only until there are enough tokens); ``encode`` takes a text, or a
    conversation it renders with the parent's chat template."""
    import torch

    documents = split_documents(split, source)
    random.Random(seed).shuffle(documents)
    needed, tokens = length * count, []
    for _, read in documents:
        tokens.extend(encode(read()))
        if len(tokens) >= needed:
            return torch.tensor(tokens[:needed], dtype=torch.long).view(count, length)
    where = "the standard library" if source.kind == "stdlib" else f"{source.kind} text at {source.path}"
    raise TextError(
        f"the {split!r} split of {where} has {len(tokens):,} tokens ({len(documents)} documents), fewer than the "
        f"{needed:,} asked for ({count} windows of {length}): give more text, or fewer or shorter windows"
    )
