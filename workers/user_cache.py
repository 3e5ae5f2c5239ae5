"""Where blocknas keeps what it can always rebuild (composed configs, parsed data sets): ``$BLOCKNAS_CACHE_DIR``,
else ``$XDG_CACHE_HOME/blocknas`` (``~/.cache/blocknas``). Every file in it is named by what it was made from,
so a changed input is never answered from it, and deleting the folder is always safe."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "BLOCKNAS_CACHE_DIR"


def cache_root() -> Path:
    if found := os.environ.get(CACHE_ENV):
        return Path(found).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "blocknas"


def keep(file: Path, write) -> None:
    """``write(path)`` into a temporary file beside ``file``, then move it into place (readers never see
    half a file); nothing is kept where the cache cannot be written (a read-only home)."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        partial = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        write(partial)
        partial.replace(file)
    except OSError:
        pass
