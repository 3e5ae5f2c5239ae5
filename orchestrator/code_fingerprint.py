"""The code of a user's own extensions in the hash of the results it affects.

A block's result depends on the code that measured it, not only on the settings: the space factory (and the
blocks it builds), the data loader and the scorer a config names by import path or entry point. Each one
that is not blocknas's own is identified by

- in a user's directory (not an installed distribution): every ``.py`` file of its top-level package (or its
  single module file), so a helper the scorer imports from the same package counts too;
- in an installed distribution (a plugin): the distribution's name and version, and its module's file.

``user_code(settings)`` is what ``make_plan`` adds to the scorer's fingerprint: a changed scorer re-measures.
blocknas's own code is versioned with blocknas and left out, so configs that use only built-ins keep the
hashes, and the stored results, they had.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
from functools import cache
from pathlib import Path

from blocknas.orchestrator.settings import RunSettings

OWN = "blocknas"


@cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _hashes(files: list[Path], root: Path) -> dict[str, str]:
    """Each file's sha256 (16 hex digits), by its path under ``root``."""
    return {f.relative_to(root).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in files}


def code_source(obj) -> dict | None:
    """Where the code of ``obj`` (a function or class a config names) lives: its module with its file, its
    package's directories, or its distribution; None for blocknas's own and for what has no source file
    (built into Python). ``identity_of`` hashes it, without importing anything."""
    name = getattr(obj, "__module__", None) or type(obj).__module__
    top = name.split(".")[0]
    file = getattr(sys.modules.get(name), "__file__", None)
    if top == OWN or not file or top in sys.stdlib_module_names:
        return None
    if distributions := _distributions().get(top):
        return {"module": name, "distribution": distributions[0], "file": file}
    if roots := list(getattr(sys.modules.get(top), "__path__", [])):
        return {"module": name, "packages": roots}
    return {"module": name, "file": file}


def identity_of(source: dict) -> dict:
    """What identifies the code at ``source`` (``code_source``): the hash of each source file it depends on
    (module docstring), and a distribution's version."""
    name = source["module"]
    if roots := [Path(p) for p in source.get("packages", ())]:  # a package of the user's: all of its sources
        return {"module": name, "files": _hashes(sorted(f for r in roots for f in r.rglob("*.py")), roots[0].parent)}
    module_file = Path(source["file"])
    files = _hashes([module_file], module_file.parent)
    if dist := source.get("distribution"):
        return {"module": name, "distribution": f"{dist}=={importlib.metadata.version(dist)}", "files": files}
    return {"module": name, "files": files}


def code_identity(obj) -> dict | None:
    """``identity_of`` the code of ``obj``; None for blocknas's own and for what has no source file."""
    source = code_source(obj)
    return None if source is None else identity_of(source)


def user_code_sources(settings: RunSettings) -> dict[str, dict]:
    """``code_source`` of each user extension a run's block results depend on: ``space`` (a torch space's
    factory), ``data`` (the loader) and ``scorer``; only those that are not blocknas's own."""
    from blocknas.workers.registry import import_object
    from blocknas.workers.scoring import SCORERS

    found = {"scorer": SCORERS.get(settings.scorer.kind).evaluate}
    if (factory := settings.space_definition.get("factory")) is not None:
        found["space"] = import_object(factory)
    if settings.scorer.data:
        from blocknas.workers.data import DATASETS

        found["data"] = DATASETS.get(settings.scorer.data["kind"]).load
    return {part: source for part, obj in found.items() if (source := code_source(obj)) is not None}


def user_code(settings: RunSettings) -> dict[str, dict]:
    """The identity of each user extension a run's block results depend on (``user_code_sources``)."""
    return {part: identity_of(source) for part, source in user_code_sources(settings).items()}


def changed_parts(before: dict[str, dict], now: dict[str, dict]) -> list[str]:
    """What differs between two ``user_code`` results, as a run's plan line names it: the changed, added or
    removed files (``digits_nas/scoring.py``), a plugin's new version, or a part that came or went."""
    changes: list[str] = []
    for part in sorted(set(before) | set(now)):
        old, new = before.get(part, {}), now.get(part, {})
        if old == new:
            continue
        version = (
            [str(new.get("distribution") or old["distribution"])]
            if old.get("distribution") != new.get("distribution")
            else []
        )
        files = old.get("files", {}), new.get("files", {})
        changed = [f for f in sorted(set(files[0]) | set(files[1])) if files[0].get(f) != files[1].get(f)]
        changes += version + changed or [f"the {part}'s module ({new.get('module') or old.get('module')})"]
    return list(dict.fromkeys(changes))
