"""Which inputs name an experiment's read snapshot (``read_snapshot.snapshot_file``), on settings as the read
commands load them (no space built). That a snapshot answers, and never after the user's code changed:
tests/end_to_end/test_own_project.py."""

from __future__ import annotations

import os

import numpy as np
import pytest

from blocknas.orchestrator.config import load_settings
from blocknas.orchestrator.read_snapshot import snapshot_file


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCKNAS_HOME", str(tmp_path))
    return tmp_path


def _file(*overrides: str):
    return snapshot_file(load_settings(["experiment=smoke", *overrides], check_space=False))


def test_a_snapshot_is_named_by_the_config_and_the_data_files_it_names(home):
    data = home / "digits.npz"
    np.savez(data, x=np.zeros((20, 1, 8, 8), dtype=np.float32), y=np.arange(20) % 10)
    npz = ("data=npz", f"data.path={data}")
    first = _file(*npz)
    assert first is not None and first.parent == home / ".blocknas" / "reads" and first.name.startswith("smoke-")
    assert _file(*npz) == first  # the same inputs
    assert _file(*npz, "scorer.seed=1") != first  # a setting
    assert _file(*npz, "storage.url=sqlite:///other.db") != first  # another store
    np.savez(data, x=np.ones((20, 1, 8, 8), dtype=np.float32), y=np.arange(20) % 10)
    os.utime(data, ns=(0, 1))  # whatever the clock's resolution, the file's stamp moves
    assert _file(*npz) != first  # the data changed


def test_inputs_it_cannot_check_have_no_snapshot(home):
    assert _file() is not None  # the built-in MNIST loader
    own_loader = ("data.kind=tests.orchestrator.test_read_snapshot:no_loader",)
    assert _file(*own_loader) is None  # a loader of the user's own: its data may come from anywhere
    assert snapshot_file(load_settings(["experiment=puzzle_tiny"], check_space=False)) is None  # a parent's files


def no_loader(settings):  # pragma: no cover - named by the config above, never called
    raise AssertionError("a snapshot check must not load the data")
