"""Answers on stored data in under a second: a snapshot of what reading an experiment takes.

Reading an experiment's table the full way builds its search space (torch), loads its data (to hash it)
and plans its block jobs: seconds, for answers that are lookups. So the first read of an experiment
(``fronts show``, ``switch`` or ``pick`` on it) saves what that work gave, in one JSON file under
``paths.state_dir/reads/``: the block table's values (the ``AccuracyTable`` that registered targets are
solved against) and, per run target, the key of its stored front with the measured ranges that mark
extrapolations. A later read with the same inputs takes them from there: no torch, no data, no plan.

The same inputs: the file is named by the hash of the resolved config, of the data files the config names
(size and modification time) and of blocknas's own sources (size and modification time); the user's code
that the full read loaded (space factory, scorer, data loader: ``code_fingerprint``) is hashed again at
every read and compared. Block results and costs are keyed by their inputs in the store and never change
once stored, so what a snapshot holds stays true while those inputs do. Experiments whose inputs cannot be
checked this way take the full way every time: a data loader of the user's own (its data may come from
anywhere) and language-model spaces (a parent model's files).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from blocknas.orchestrator.code_fingerprint import identity_of
from blocknas.orchestrator.hashing import content_hash
from blocknas.solvers.structure import ConnectivityRule

if TYPE_CHECKING:
    from blocknas.orchestrator.deploy.fronts import AccuracyTable
    from blocknas.orchestrator.front_service import SolvedFront
    from blocknas.orchestrator.settings import RunSettings
    from blocknas.orchestrator.storage import PerformanceStore

VERSION = 1
SPACES = ("cnn", "nb201", "torch")  # the space kinds whose inputs the key covers
_OWN_ROOT = Path(__file__).resolve().parents[1]  # blocknas's orchestrator/, workers/, solvers/


def _own_sources() -> str:
    """blocknas's own code, by each source file's size and modification time (a stat, not a read)."""
    digest = hashlib.sha256()
    for package in ("orchestrator", "workers", "solvers"):
        for file in sorted((_OWN_ROOT / package).rglob("*.py")):
            stat = file.stat()
            digest.update(f"{file.relative_to(_OWN_ROOT)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def _files_named(data: dict | None) -> list[list]:
    """Size and modification time of every file the data config names (each file of a named directory)."""
    found = []
    for value in (data or {}).values():
        if not isinstance(value, str) or not value or not os.path.exists(path := os.path.expanduser(value)):
            continue
        files = sorted(Path(path).rglob("*")) if os.path.isdir(path) else [Path(path)]
        found += [[str(f), (s := f.stat()).st_size, s.st_mtime_ns] for f in files if f.is_file()]
    return found


def _builtin_data(data: dict | None) -> bool:
    if not data:
        return True
    from blocknas.orchestrator.code_fingerprint import code_source
    from blocknas.workers.data import DATASETS

    return code_source(DATASETS.get(data["kind"]).load) is None


def snapshot_file(settings: RunSettings) -> Path | None:
    """Where this experiment's snapshot is kept; None if its inputs cannot be checked (module docstring)."""
    if settings.state_dir is None or settings.space_definition.get("kind") not in SPACES:
        return None
    if not _builtin_data(settings.scorer.data):
        return None
    key = content_hash(
        {
            "version": VERSION,
            "config": settings.config_yaml,
            "data_files": _files_named(settings.scorer.data),
            "blocknas": _own_sources(),
        }
    )
    return settings.state_dir / "reads" / f"{settings.name}-{key[:24]}.json"


def _load(settings: RunSettings) -> dict | None:
    file = snapshot_file(settings)
    if file is None or not file.exists():
        return None
    try:
        found = json.loads(file.read_text())
        if found.get("version") != VERSION:
            return None
        code = {part: identity_of(source) for part, source in found["code_sources"].items()}
    except (OSError, ValueError, KeyError, TypeError):  # unreadable, or the user's code moved: read it fully
        return None
    return found if code == found["code"] else None


def _save(settings: RunSettings, part: str, value) -> None:
    """Add ``part`` to the snapshot (``settings`` are the full ones: the user's code is loaded)."""
    from blocknas.orchestrator.code_fingerprint import user_code_sources
    from blocknas.orchestrator.output_files import write_atomically

    file = snapshot_file(settings)
    if file is None:
        return
    sources = user_code_sources(settings)
    found = _load(settings) or {
        "version": VERSION,
        "experiment": settings.name,
        "code_sources": sources,
        "code": {part: identity_of(source) for part, source in sources.items()},
    }
    found[part] = value if part == "accuracy" else {**found.get(part, {}), **value}
    file.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(file, json.dumps(found))


def accuracy_table(settings: RunSettings) -> AccuracyTable | None:
    """The experiment's ``AccuracyTable`` as a snapshot holds it, or None (read it fully)."""
    from blocknas.orchestrator.deploy.fronts import AccuracyTable

    found = (_load(settings) or {}).get("accuracy")
    if found is None:
        return None
    return AccuracyTable(
        found["experiment"],
        tuple(found["slots"]),
        tuple(tuple(c) for c in found["choices"]),
        tuple(np.array(a, dtype=float) for a in found["accuracy"]),
        found["offset"],
        tuple(ConnectivityRule(tuple(tuple(p) for p in r["paths"]), r["inactive"]) for r in found["rules"]),
    )


def save_accuracy_table(settings: RunSettings, table: AccuracyTable) -> None:
    """Keep ``table`` for later reads; a table whose predictor is fitted (not the table's sum) is not kept."""
    if table.fit is not None:
        return
    _save(
        settings,
        "accuracy",
        {
            "experiment": table.experiment,
            "slots": list(table.slots),
            "choices": [list(c) for c in table.choices],
            "accuracy": [a.tolist() for a in table.accuracy],
            "offset": table.offset,
            "rules": [{"paths": [list(p) for p in r.paths], "inactive": r.inactive} for r in table.rules],
        },
    )


def run_front(store: PerformanceStore, settings: RunSettings, target: str) -> SolvedFront | None:
    """A run target's stored front, marked as the run marks it, as a snapshot names it; or None."""
    from dataclasses import replace

    from blocknas.orchestrator.answers import mark_extrapolations
    from blocknas.orchestrator.front_service import SolvedFront

    found = (_load(settings) or {}).get("fronts", {}).get(target)
    front = found and store.find_front(*found["key"])
    if not front:
        return None
    points = [mark_extrapolations(p, found["ranges"]) for p in front.points]
    return SolvedFront(replace(front, points=points), False)


def save_run_front(settings: RunSettings, target: str, key: tuple, ranges: dict) -> None:
    _save(settings, "fronts", {target: {"key": list(key), "ranges": {k: list(v) for k, v in ranges.items()}}})
