"""Composed configs kept between commands (``compose_cache``): the same config as Hydra composes, and a new
composition whenever a config file or an override changes."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from blocknas.orchestrator.compose_cache import composed
from blocknas.orchestrator.config import CONFIG_MODULE, ConfigSource, compose_config
from blocknas.workers.user_cache import CACHE_ENV


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "configs"


def _composed(overrides: list[str], source: ConfigSource | None = None) -> tuple[dict, int]:
    """(the config as ``composed`` gives it, unresolved; how many times it had to compose)."""
    source = source or ConfigSource()
    calls = []

    def compose():
        calls.append(1)
        return compose_config(overrides, source)

    cfg = composed(overrides, source.config_name, source.config_dir, CONFIG_MODULE, compose)
    return OmegaConf.to_container(cfg, resolve=False), len(calls)


@pytest.mark.parametrize(
    "overrides", [[], ["experiment=smoke", "scorer.seed=3"], ["experiment=nb201", "+solver.budgets.flops=9"]]
)
def test_a_kept_config_is_the_one_hydra_composes(cache, overrides):
    fresh = OmegaConf.to_container(compose_config(overrides), resolve=False)
    assert _composed(overrides) == (fresh, 1)
    assert _composed(overrides) == (fresh, 0)  # from the file, interpolations still unresolved
    assert "${" in str(fresh["paths"]) and len(list(cache.glob("*.yaml"))) == 1


def test_a_changed_config_file_or_override_composes_again(cache, tmp_path):
    tree = tmp_path / "conf" / "experiment"
    tree.mkdir(parents=True)
    mine = tree / "mine.yaml"
    mine.write_text("# @package _global_\nname: mine\nscorer:\n  seed: 1\n")
    source = ConfigSource(str(tmp_path / "conf"))
    first, _ = _composed(["experiment=mine"], source)
    assert _composed(["experiment=mine"], source) == (first, 0)
    mine.write_text("# @package _global_\nname: mine\nscorer:\n  seed: 22\n")
    changed, calls = _composed(["experiment=mine"], source)
    assert calls == 1 and changed["scorer"]["seed"] == 22 and first["scorer"]["seed"] == 1
    assert _composed(["experiment=mine", "scorer.seed=5"], source)[1] == 1


def test_a_composition_that_fails_is_not_kept(cache):
    from blocknas.orchestrator.settings import ConfigError

    with pytest.raises(ConfigError, match="no such option"):
        _composed(["experiment=no_such_experiment"])
    assert not cache.exists() or not list(cache.glob("*.yaml"))
