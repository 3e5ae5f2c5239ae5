"""Bad input is refused before any work or write, with exit 2 and a message that names the problem (and never
a secret); a bad target never stops the scheduler's work on the others. The cases of a fault and bad-input
probe, and a few more of the same kinds."""

from __future__ import annotations

import json
import logging

import pytest

from blocknas.orchestrator.config import load_settings
from blocknas.orchestrator.deploy.fronts import LIBRARY
from blocknas.orchestrator.deploy.scheduler import TargetScheduler
from blocknas.orchestrator.settings import SchedulerSettings
from blocknas.orchestrator.storage import PerformanceStore
from blocknas.orchestrator.targets import registry
from tests.conftest import FLAT_SPACE, run_cli
from tests.orchestrator.test_switching import library


@pytest.fixture
def edge(home, tmp_path):
    path = tmp_path / "lib.json"
    path.write_text(json.dumps(library(4, 3, seed=1)))
    assert run_cli(home, "targets", "add", "edge", "--file", str(path)).returncode == 0
    return json.loads(run_cli(home, "targets", "show", "edge", "--json").stdout)


@pytest.mark.parametrize(
    ("measured", "predicted", "word"), [("1e300", "1e-300", "infinite"), ("1e-300", "1e300", "zero")]
)
def test_a_correction_that_would_make_costs_infinite_or_zero_is_refused_and_stores_nothing(
    home, edge, measured, predicted, word
):
    result = run_cli(home, "switch", "edge", "--budget", "2", "--measured", measured, "--predicted", predicted)
    assert result.returncode == 2 and word in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert json.loads(run_cli(home, "targets", "show", "edge", "--json").stdout) == edge
    assert run_cli(home, "fronts", "show", "edge").returncode == 0


def _bad_version(store: PerformanceStore, name: str) -> None:
    """A version with infinite costs, as blocknas stored them before it refused them."""
    good = registry.find(store, "edge").definition
    costs = json.loads(json.dumps(good["costs"]))
    first = next(iter(costs.values()))
    slot = next(iter(first["blocks"]))
    first["blocks"][slot] = {b: float("inf") for b in first["blocks"][slot]}
    store.put_target(name, "broken0", "table", {**good, "costs": costs}, exists=False)


def test_a_stored_version_with_infinite_costs_is_named_and_the_scheduler_re_solves_the_others(home, edge, caplog):
    url = f"sqlite:///{home}/.blocknas/perf.db"
    store = PerformanceStore(url)
    _bad_version(store, "aaa_broken")  # listed before edge
    shown = run_cli(home, "fronts", "show", "aaa_broken")
    assert shown.returncode == 2 and "non-finite latency_ms costs" in shown.stderr, shown.stderr
    assert "Traceback" not in shown.stderr
    switched = run_cli(home, "switch", "aaa_broken", "--budget", "3")
    assert switched.returncode == 2 and "targets update aaa_broken" in switched.stderr, switched.stderr
    assert run_cli(home, "targets", "show", "aaa_broken").returncode == 0  # still there to look at

    settings = load_settings([f"storage.url={url}"], check_space=False)
    scheduler = TargetScheduler(settings, SchedulerSettings())
    with caplog.at_level(logging.ERROR, logger="blocknas.scheduler"):
        assert scheduler.check_once() == 1  # edge's front, though aaa_broken fails first
    assert any("aaa_broken" in r.getMessage() for r in caplog.records)
    assert store.latest_front(LIBRARY, "edge") is not None


def _store_files(home) -> list[str]:
    return sorted(p.name for p in (home / ".blocknas").glob("*")) if (home / ".blocknas").exists() else []


@pytest.mark.parametrize(
    "override",
    [
        "solver.predictor=nosuchpkg.mod:fn",
        "scorer.estimator=nosuchpkg.mod:fn",
        "solver.predictor=json:no_such_function",
    ],
)
def test_an_import_path_that_does_not_resolve_is_refused_before_any_work(home, override):
    result = run_cli(home, "run", "experiment=smoke", override, "--no-progress")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "nosuchpkg" in result.stderr or "no_such_function" in result.stderr
    assert _store_files(home) == [] and not (home / "outputs").exists()  # no store, no MLflow, no output


@pytest.mark.parametrize("value", ["nan", "-1", "abc", "0", "inf"])
def test_a_bad_solver_time_limit_is_refused_before_any_work(home, monkeypatch, value):
    monkeypatch.setenv("BLOCKNAS_SOLVER_TIME_LIMIT", value)
    for command in (("solve", "experiment=smoke"), ("switch", "edge", "--budget", "1"), ("fronts", "show", "x")):
        result = run_cli(home, *command)
        assert result.returncode == 2 and "BLOCKNAS_SOLVER_TIME_LIMIT must be a number of seconds" in result.stderr
        assert "Traceback" not in result.stderr
    assert _store_files(home) == []


@pytest.mark.parametrize(
    ("library_json", "problem"),
    [
        (
            {
                "layer_0": {
                    "a": {"stats": {"latency_ms": 1}, "metrics": {"kl_div": 0.1}},
                    "b": {"stats": {"latency_ms": 2}},
                }
            },
            "cover different blocks: layer_0:b",
        ),  # a variant without metrics
        (
            {
                "layer_0": {
                    "a": {"stats": {"latency_ms": 1}, "metrics": {"kl_div": 0.1}},
                    "b": {"stats": {"latency_ms": 2}, "metrics": {"lm_loss": 0.3}},
                }
            },
            "cover different blocks",
        ),
        (
            {
                "layers": [
                    {"name": "x", "variants": [{"name": "a", "stats": {"latency_ms": 1}}]},
                    {"variants": [{"name": "a", "stats": {"latency_ms": 1}}]},
                ]
            },
            "layers[1] has no name",
        ),
        (
            {
                "layers": [
                    {"name": "x", "variants": [{"name": "a", "stats": {"latency_ms": 1}}]},
                    {"name": "x", "variants": [{"name": "a", "stats": {"latency_ms": 1}}]},
                ]
            },
            "given twice",
        ),
    ],
)
def test_a_library_with_holes_is_refused_naming_the_hole_and_creates_no_store(home, tmp_path, library_json, problem):
    path = tmp_path / "holes.json"
    path.write_text(json.dumps(library_json))
    result = run_cli(home, "targets", "add", "holes", "--file", str(path))
    assert result.returncode == 2 and problem in result.stderr, result.stderr
    assert _store_files(home) == []


@pytest.mark.parametrize(
    "bad",
    [
        "slot,block,metric,value\ns0,skip,latency_ms,-1\n",
        "slot,block,metric,value\ns0,skip,latency_ms,inf\n",
        "not,a,target\n1,2\n",
    ],
)
def test_a_bad_target_file_creates_no_store(home, tmp_path, bad):
    path = tmp_path / "bad.csv"
    path.write_text(bad)
    for action in ("add", "update"):
        result = run_cli(home, "targets", action, "phone", "--file", str(path))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert _store_files(home) == []


@pytest.mark.parametrize(
    "url",
    [
        "postgres:Hunter2SECRET@127.0.0.1/test",
        "postgresql+psycopg://u:Hunter2SECRET@127.0.0.1/test",
        "postgresql+psycopg://u@127.0.0.1/test?PASSWORD=Hunter2SECRET",
        "postgresql+psycopg://u@127.0.0.1/test?sslmode=disable&MyPassWord=Hunter2SECRET",
        "postgresql+psycopg://u@127.0.0.1/test?Api_Key=Hunter2SECRET",
        "mysql://u:Hunter2SECRET@h/db",
    ],
)
def test_a_password_is_never_echoed_whatever_the_urls_shape(home, url):
    for command in (("blocks",), ("run", "experiment=smoke"), ("targets", "list")):
        result = run_cli(home, *command, f"storage.url='{url}'")
        assert result.returncode == 2, result.stderr
        assert "Hunter2SECRET" not in result.stdout + result.stderr, result.stderr
    tracking = run_cli(home, "run", "experiment=smoke", f"tracking.uri='{url.replace('postgres', 'http')}'")
    assert tracking.returncode == 2 and "Hunter2SECRET" not in tracking.stdout + tracking.stderr, tracking.stderr
    assert _store_files(home) == []


def test_export_paths_that_cannot_be_written_are_refused_before_any_work(home, tmp_path):
    existing = tmp_path / "library.json"
    existing.write_text("keep me")
    cases = [
        (("export-library", str(tmp_path)), "is a directory"),
        (("export-library", str(existing)), "pass --force"),
        (("export-library", str(existing / "x.json")), "is a file, not a directory"),
        (("export-library", "/proc/blocknas/library.json"), "cannot write in /proc"),
        (("export-child", str(existing)), "is a file; name a new directory"),
        (("export-child", str(existing / "child")), "is a file, not a directory"),
        (("export-child", "/proc/blocknas-child"), "cannot write in /proc"),
    ]
    for args, problem in cases:
        result = run_cli(home, *args, "experiment=smoke")
        assert result.returncode == 2 and problem in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert existing.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library.json"]  # no probe or temporary file left


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path):
    from blocknas.orchestrator.output_files import OutputError, atomic_target, write_atomically

    path = write_atomically(tmp_path / "summary.json", "old")
    with pytest.raises(OutputError, match="summary.json"), atomic_target(path) as temporary:
        temporary.write_text("half")
        raise OSError(28, "No space left on device")  # what a full disk raises mid-write
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("cluster.num_cpus=100000000", "cluster.num_cpus must be between 1 and"),
        ("cluster.lease_seconds=0.001", "cluster.lease_seconds must be between 1 and 86400"),
        ("cluster.max_retries=1000000", "cluster.max_retries must be between 0 and 100"),
        ("cluster.object_store_mb=100000000", "cluster.object_store_mb must be between 64 and"),
        ("resources.gpus_per_block=1000", "resources.gpus_per_block must be between 0 and 64"),
    ],
)
def test_settings_beyond_what_the_machine_or_ray_can_mean_are_refused(home, override, problem):
    result = run_cli(home, "run", "experiment=smoke", override)
    assert result.returncode == 2 and problem in result.stderr, result.stderr
    assert _store_files(home) == []


@pytest.mark.parametrize(("proxy", "word"), [("naswot", "minibatch of images"), ("deepmad", "convolutions")])
def test_a_proxy_that_cannot_score_a_flat_space_is_refused_before_anything_is_stored(home, proxy, word):
    (home / "flat_space.py").write_text(FLAT_SPACE.format(features=30))
    result = run_cli(
        home,
        "run",
        "~space",
        "+space.kind=torch",
        "+space.factory=flat_space:make_space",
        "scorer=proxy",
        f"scorer.kind=proxy_{proxy}",
        "--no-progress",
    )
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert word in result.stderr and "proxy_params" in result.stderr and "Traceback" not in result.stderr
    assert not (home / ".blocknas" / "perf.db").exists() and not (home / "outputs").exists()


def test_a_scorer_returning_a_fraction_stops_the_run_at_its_first_result_with_the_fix(home):
    (home / "fraction_scoring.py").write_text(
        "def score(model, data, settings, device):\n    return {'accuracy': 0.83}  # a fraction, not percent\n"
    )
    args = ("run", "experiment=smoke", "~scorer", "+scorer.kind=fraction_scoring:score", "--no-progress")
    result = run_cli(home, *args)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "return percent (accuracy * 100 = 83)" in result.stderr and "run stopped at the first" in result.stderr
    assert "Traceback" not in result.stderr
    scores = PerformanceStore(f"sqlite:///{home}/.blocknas/perf.db").block_scores()
    assert scores and not [s for s in scores if s.status == "done"]  # nothing stored as a result


def test_an_exception_in_a_users_loader_is_exit_2_with_its_message(home):
    (home / "broken_loader.py").write_text("def load(settings):\n    raise ValueError('labels.csv: no column y')\n")
    result = run_cli(home, "config", "show", "experiment=smoke", "data.kind=broken_loader:load")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "its loader (broken_loader.load) raised ValueError: labels.csv: no column y" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_that_does_not_fit_a_torch_space_is_advised_by_what_its_factory_returns(home):
    (home / "flat_space.py").write_text(FLAT_SPACE.format(features=30))
    result = run_cli(home, "config", "show", "~space", "+space.kind=torch", "+space.factory=flat_space:make_space")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "inputs of shape 1x28x28 (C x H x W) but the space takes 30 (features)" in result.stderr, result.stderr
    assert "return input_shape=(1, 28, 28) from your space factory" in result.stderr
    assert "space.input_size" not in result.stderr  # a key torch spaces do not have


def test_a_cancelled_tasks_interrupt_in_a_gc_callback_prints_no_traceback(capsys, monkeypatch):
    """A task cancelled when the run stops gets KeyboardInterrupt even inside a garbage-collection callback
    (seen in SQLAlchemy's); Python would print that as "Exception ignored" with a traceback, which Ray
    forwards to the terminal. The task's hook drops those, and reports every other such exception."""
    import sys

    from blocknas.orchestrator.distributed.tasks import _quiet_cancellation

    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # restored after the test
    _quiet_cancellation()

    class Finalised:
        def __init__(self, error: BaseException):
            self.error = error

        def __del__(self):
            raise self.error

    Finalised(KeyboardInterrupt())
    assert capsys.readouterr().err == ""
    Finalised(ValueError("a real problem"))
    err = capsys.readouterr().err
    assert "Exception ignored" in err and "ValueError: a real problem" in err
