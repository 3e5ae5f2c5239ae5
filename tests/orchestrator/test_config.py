"""Config composition: every group option composes; every mistake exits 2 before anything is written."""

from pathlib import Path

import pytest

from orchestrator.config import ConfigError, load_settings
from tests.conftest import run_cli

CONF = Path(__file__).resolve().parents[2] / "conf"
GROUPS = ["space", "scorer", "targets", "cluster", "storage", "tracking", "solver", "experiment"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes_and_validates(group, option, home, monkeypatch):
    for name in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    nb201 = "nb201" in option  # NAS-Bench-201 options go together: composed inside experiment=nb201
    settings = load_settings((["experiment=nb201"] if nb201 else []) + [f"{group}={option}"])
    assert settings.space.num_networks >= 4
    assert {t.name for t in settings.targets} >= ({"flops", "params"} if nb201 else {"flops", "params", "local_cpu"})
    if (group, option) == ("storage", "postgres"):  # from libpq's variables, else a local server
        assert settings.storage_url == "postgresql+psycopg://postgres@127.0.0.1:5432/blocknas"
    else:
        assert str(home) in settings.storage_url
    if (group, option) == ("tracking", "server"):
        assert settings.tracking_uri == "http://127.0.0.1:5000"


def test_defaults_are_the_embedded_single_machine_setup(home):
    settings = load_settings([])
    assert settings.name == "mnist_cnn"
    assert settings.storage_url == f"sqlite:///{home}/.blocknas/perf.db"
    assert settings.tracking_uri == f"sqlite:///{home}/.blocknas/mlflow.db"
    assert settings.cluster.address is None
    assert len(settings.space.slots) >= 4 and all(len(s.choices) >= 4 for s in settings.space.slots)


def test_config_hash_tracks_science_not_placement(home):
    base = load_settings(["experiment=smoke"]).config_hash
    assert load_settings(["experiment=smoke", "cluster.num_cpus=1"]).config_hash == base
    assert load_settings(["experiment=smoke", "scorer.seed=1"]).config_hash != base


@pytest.mark.parametrize(
    "override,message",
    [
        ("space=nope", "Could not find 'space/nope'"),
        ("cluster.num_cpu=2", "unknown config key 'cluster.num_cpu'"),
        ("scorer.steps=-3", "scorer.steps must be a positive integer"),
        ("scorer.lr=fast", "scorer.lr must be a float"),
        ("scorer.device=tpu", "scorer.device must be cpu, cuda or auto"),
        ("scorer.train_size=4900", "exceeds the 5000"),
        ("resources.cpus_per_block=0", "resources.cpus_per_block must be > 0"),
        ("+solver.budgets.phone=3", "no hardware target named 'phone'"),
        ("solver.budgets.params=lots", "solver.budgets.params must be a number"),
        ("targets.local_cpu.kind=guess", "targets.local_cpu.kind must be one of"),
        ("storage.url=postgresql+psycopg://u:secret@h/db", "must not contain a password"),
    ],
)
def test_bad_config_is_a_clear_error(override, message, home):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_settings(["experiment=smoke", override])


@pytest.mark.parametrize("override", ["space=nope", "scorer.steps=0", "cluster.num_cpu=2"])
def test_cli_exits_2_and_writes_nothing(override, tmp_path):
    result = run_cli(tmp_path, "run", "experiment=smoke", override)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("blocknas: error:")
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
