"""Composed configs kept between processes: Hydra's import and composition (about 0.45 s) out of every command.

A composition depends only on the config files of its search path and on the overrides, so a composed
config is kept in a file named by the overrides, the config name, every ``.yaml`` of the packaged tree and
of ``--config-dir`` (path, size and modification time) and the installed Hydra and OmegaConf. It holds the
config before resolution: interpolations such as ``${oc.env:BLOCKNAS_HOME,.}`` are resolved at each use, so
environment variables are read fresh. The files live in ``configs/`` of the user cache
(``blocknas.workers.user_cache``); a file that cannot be read is composed again, and a composition that
fails is never kept.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import omegaconf
from omegaconf import DictConfig, OmegaConf

from blocknas.orchestrator.hashing import content_hash
from blocknas.workers.user_cache import cache_root, keep


def _stamps(root: Path) -> list[list]:
    return [[str(f), (s := f.stat()).st_size, s.st_mtime_ns] for f in sorted(root.rglob("*.yaml"))]


def _key(overrides: list[str], config_name: str, config_dir: str | None, package: str) -> str:
    packaged = importlib.util.find_spec(package)
    hydra = importlib.util.find_spec("hydra")  # located, not imported
    trees = [Path(p) for p in (packaged.submodule_search_locations or [])] if packaged else []
    if config_dir:
        trees.append(Path(config_dir).expanduser().resolve())
    return content_hash(
        {
            "overrides": overrides,
            "config_name": config_name,
            "config_dir": str(trees[-1]) if config_dir else None,
            "trees": [_stamps(t) for t in trees],
            "hydra": os.stat(hydra.origin).st_mtime_ns if hydra and hydra.origin else None,
            "omegaconf": omegaconf.__version__,
        }
    )


def composed(
    overrides: list[str], config_name: str, config_dir: str | None, package: str, compose: Callable[[], DictConfig]
) -> DictConfig:
    """The config ``compose()`` gives for these inputs: from the cache, or composed and kept."""
    file = cache_root() / "configs" / f"{_key(overrides, config_name, config_dir, package)}.yaml"
    try:
        return OmegaConf.create(file.read_text())
    except (OSError, ValueError, omegaconf.errors.OmegaConfBaseException):
        pass
    cfg = compose()
    keep(file, lambda path: path.write_text(OmegaConf.to_yaml(cfg)))
    return cfg
