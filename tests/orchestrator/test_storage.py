"""The performance-table contract, run against SQLite and the real PostgreSQL."""

import multiprocessing as mp

import pytest

from blocknas.orchestrator.storage import CostEntry, PerformanceStore, public_url


def block_row(i: int, network: str = "net") -> dict:
    return {
        "job_hash": f"job{i}",
        "experiment": "exp",
        "space": "space",
        "scorer_hash": "sh",
        "slot_index": i % 4,
        "slot": f"s{i % 4}",
        "block": f"s{i % 4}:b{i}",
        "choice_index": i // 4,
        "network_hash": network,
    }


def test_retry_upserts_one_row_and_counts_attempts(store_url):
    store = PerformanceStore(store_url)
    store.mark_running([block_row(0)], node="n1", host="h")
    store.record_failure(["job0"], "worker died")
    store.mark_running([block_row(0)], node="n2", host="h")
    (score,) = store.block_scores()
    assert (score.status, score.attempts, score.node, score.error) == ("running", 2, "n2", None)
    store.record_result(["job0"], {"accuracy": 91.5, "loss": 0.3, "params": 10, "flops": 20, "device": "cpu"})
    (score,) = store.block_scores()
    assert (score.status, score.accuracy, score.attempts) == ("done", 91.5, 2)
    assert store.done_job_hashes(["job0", "job9"]) == {"job0"}


def test_a_done_block_is_never_overwritten(store_url):
    store = PerformanceStore(store_url)
    store.mark_running([block_row(0)], node="n1", host="h")
    store.record_result(["job0"], {"accuracy": 90.0})
    store.mark_running([block_row(0)], node="n2", host="h")
    store.record_failure(["job0"], "late failure of a duplicate attempt")
    (score,) = store.block_scores()
    assert (score.status, score.accuracy, score.attempts, score.node, score.error) == ("done", 90.0, 1, "n1", None)


def test_filters_by_experiment_and_status(store_url):
    store = PerformanceStore(store_url)
    store.mark_running([block_row(0), block_row(1)], node="n", host="h")
    store.record_result(["job1"], {"accuracy": 1.0})
    assert [s.job_hash for s in store.block_scores(status="done")] == ["job1"]
    assert len(store.block_scores(experiment="exp")) == 2
    assert store.block_scores(experiment="other") == []


def test_costs_are_written_once(store_url):
    store = PerformanceStore(store_url)
    first = [CostEntry(-1, "stem+head", 1.0), CostEntry(0, "a", 2.0)]
    store.record_costs("sp", "cpu", "v1", "latency_ms", first, "host")
    store.record_costs("sp", "cpu", "v1", "latency_ms", [CostEntry(0, "a", 99.0)], "host")
    assert sorted(store.costs("sp", "cpu", "v1"), key=lambda e: e.slot_index) == first
    assert store.costs("sp", "cpu", "v2") == []


def test_fronts_upsert_per_table_and_latest_wins(store_url):
    store = PerformanceStore(store_url)
    store.record_front("exp", "c", "cpu", "v1", "latency_ms", "t1", "b", [{"cost": 1}])
    store.record_front("exp", "c", "cpu", "v1", "latency_ms", "t1", "b", [{"cost": 2}])
    store.record_front("exp", "c", "cpu", "v2", "latency_ms", "t1", "b", [{"cost": 3}])
    latest = store.latest_front("exp", "cpu")
    assert (latest.target_version, latest.points) == ("v2", [{"cost": 3}])
    assert store.latest_front("exp", "gpu") is None


def _writer(url: str, worker: int, rows: int) -> None:
    store = PerformanceStore(url)
    for i in range(rows):
        # every writer touches every row: the same keys are raced on from all processes
        store.mark_running([block_row(i)], node=f"w{worker}", host="h")
        store.record_result([f"job{i}"], {"accuracy": float(i)})


def test_concurrent_writers_lose_and_duplicate_nothing(store_url):
    PerformanceStore(store_url)  # create the schema once, as the driver does
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(store_url, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    scores = PerformanceStore(store_url).block_scores()
    assert sorted(s.job_hash for s in scores) == sorted(f"job{i}" for i in range(25))
    assert all(s.status == "done" and s.accuracy == float(s.job_hash[3:]) for s in scores)


@pytest.mark.parametrize(
    "url,expected",
    [
        ("postgresql+psycopg://alice:s3cret@db:5432/perf", "postgresql+psycopg://db:5432/perf"),
        ("sqlite:////tmp/x/perf.db", "sqlite:////tmp/x/perf.db"),
    ],
)
def test_public_url_drops_credentials(url, expected):
    assert public_url(url) == expected


def test_the_sql_store_implements_the_whole_contract():
    """Every operation of ``BaseStore`` (whose docstring is the contract) is implemented by the SQL store."""
    from blocknas.orchestrator.storage import BaseStore

    assert issubclass(PerformanceStore, BaseStore) and not getattr(PerformanceStore, "__abstractmethods__", None)
    assert {n for n in vars(BaseStore) if not n.startswith("_")} <= set(dir(PerformanceStore))


@pytest.mark.parametrize("loss", ["deleted", "emptied", "replaced"])
def test_a_sqlite_file_lost_under_the_store_fails_at_once_and_names_it(tmp_path, loss):
    import time

    from blocknas.orchestrator.storage import StorageError

    path = tmp_path / "perf.db"
    store = PerformanceStore(f"sqlite:///{path}")
    store.record_experiment("e", "h", "a: 1")
    if loss == "deleted":
        for file in tmp_path.glob("perf.db*"):
            file.unlink()
    elif loss == "emptied":
        path.write_bytes(b"")
    else:
        path.rename(tmp_path / "old.db")
        PerformanceStore(f"sqlite:///{path}").engine.dispose()  # a new, empty table at the same path
    started = time.monotonic()
    with pytest.raises(StorageError, match="was deleted, emptied or replaced while blocknas was using it"):
        store.record_result(["h0"], {"accuracy": 0.5})
    assert time.monotonic() - started < 30  # not the busy timeout's minutes of "database is locked"
    store.engine.dispose()
