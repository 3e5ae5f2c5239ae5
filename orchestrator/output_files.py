"""Files blocknas writes for a person (summaries, fronts, figures, exported libraries and children): checked
before any work, written whole or not at all.

- ``check_new_file`` and ``check_new_directory`` refuse, before any work, an output path that cannot be
  written (a file where a directory must be, a directory where a file must be, a place this user cannot
  write, an existing file not to be overwritten): ``OutputPathError``, exit 2.
- ``atomic_target`` and ``write_atomically`` write to a temporary file beside the target and rename it into
  place, so a full disk or a killed process never leaves a truncated file; a failed write is an
  ``OutputError`` (exit 1) that names the file and the cause, and leaves what was there before.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


class OutputPathError(ValueError):
    """An output path that cannot be used; nothing was done."""


class OutputError(RuntimeError):
    """An output file could not be written (disk full, read-only); the file is as it was before."""


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the device"
    return exc.strerror or str(exc)


def _writable_directory(directory: Path, what: str) -> None:
    """``directory``, or the nearest of its ancestors that exists, is a directory this process can create files
    in (tried for real: permission bits say nothing to root or on a read-only mount)."""
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(f"{what}: {existing} is a file, not a directory; name a path in a directory")
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".blocknas-probe-")
    except OSError as exc:
        raise OutputPathError(f"{what}: cannot write in {existing} ({_reason(exc)}); name a writable place") from None
    os.close(handle)
    os.unlink(probe)


def check_new_file(path: Path, overwrite: bool, what: str) -> None:
    if path.is_dir():
        raise OutputPathError(f"{what}: {path} is a directory; name a file, e.g. {path / 'library.json'}")
    if path.exists() and not overwrite:
        raise OutputPathError(f"{what}: {path} exists; name a new file, or pass --force to replace it")
    _writable_directory(path.parent, what)


def check_new_directory(path: Path, what: str) -> None:
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{what}: {path} is a file; name a new directory")
    if path.is_dir() and any(path.iterdir()):
        raise OutputPathError(f"{what}: {path} exists and is not empty; name a new directory")
    _writable_directory(path, what)


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary path (same directory and suffix) to write ``path``'s content to; renamed into place when
    the block ends without error, removed otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        raise OutputError(f"could not write {path}: {_reason(exc)}; it is as it was before") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def write_atomically(path: Path, text: str) -> Path:
    with atomic_target(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """A temporary directory beside ``path`` to fill; renamed to ``path`` (new or empty) when the block ends
    without error, removed otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path)
    temporary.mkdir()
    try:
        yield temporary
        if path.is_dir():
            path.rmdir()  # empty, as check_new_directory made sure
        os.replace(temporary, path)
    except OSError as exc:
        raise OutputError(f"could not write {path}: {_reason(exc)}; nothing was left there") from None
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
