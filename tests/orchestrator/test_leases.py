"""Leases and retries of the performance table, on SQLite and the real PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest
from sqlalchemy import create_engine, event, text

from blocknas.orchestrator.storage import PerformanceStore, StorageError
from tests.orchestrator.test_storage import block_row

ROWS = [block_row(i) for i in range(30)]


def _claimer(url: str, owner: str, queue) -> None:
    queue.put((owner, sorted(PerformanceStore(url, create=False).claim(ROWS, owner, 60))))


def test_drivers_racing_for_the_same_blocks_each_get_a_disjoint_share(store_url):
    PerformanceStore(store_url)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(store_url, f"driver{d}", queue)) for d in range(4)]
    for p in procs:
        p.start()
    claims = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
    owned = [h for hashes in claims.values() for h in hashes]
    assert sorted(owned) == sorted(r["job_hash"] for r in ROWS), "every block has exactly one owner"
    owners = {s.job_hash: s.lease_owner for s in PerformanceStore(store_url).block_scores()}
    assert all(owners[h] == owner for owner, hashes in claims.items() for h in hashes)


def test_a_live_lease_is_respected_a_lapsed_one_taken_over_and_done_blocks_never_claimed(store_url):
    store = PerformanceStore(store_url)
    rows = ROWS[:3]
    assert store.claim(rows, "a", 60) == {"job0", "job1", "job2"}
    store.mark_running(rows[:1], node="n", host="h", pid=123)
    store.record_result(["job0"], {"accuracy": 1.0})
    assert store.claim(rows, "b", 60) == set(), "a's heartbeat is fresh"
    time.sleep(1.2)
    assert store.heartbeat("a") == 2, "a renews its two unfinished blocks"
    assert store.claim(rows, "b", 1.0) == set(), "renewed: still a's"
    time.sleep(1.2)
    assert store.claim(rows, "b", 1.0) == {"job1", "job2"}, "a stopped renewing: b takes the rest over"
    scores = {s.job_hash: s for s in store.block_scores()}
    assert (scores["job0"].status, scores["job0"].lease_owner, scores["job0"].pid) == ("done", "a", 123)
    assert {scores[h].lease_owner for h in ("job1", "job2")} == {"b"}


def test_release_marks_what_a_driver_still_holds_failed_and_free(store_url):
    store = PerformanceStore(store_url)
    store.claim(ROWS[:2], "a", 60)
    store.mark_running(ROWS[:1], node="n", host="h")
    assert store.release("a", "abandoned: driver a stopped") == 2
    assert {(s.status, s.error) for s in store.block_scores()} == {("failed", "abandoned: driver a stopped")}
    assert store.claim(ROWS[:2], "b", 60) == {"job0", "job1"}


def test_a_lost_connection_mid_write_is_retried_and_recorded_once(store_url):
    if not store_url.startswith("postgresql"):
        pytest.skip("connection loss is injected by terminating the PostgreSQL backend; SQLite has no server")
    store = PerformanceStore(store_url)
    store.mark_running(ROWS[:1], node="n", host="h")
    admin = create_engine(store_url)
    killed = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def terminate_once(conn, cursor, statement, *args):
        if statement.startswith("UPDATE block_scores") and not killed:
            pid = conn.connection.dbapi_connection.info.backend_pid
            with admin.begin() as c:
                killed.append(c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar())

    store.record_result(["job0"], {"accuracy": 77.0})
    assert killed == [True], "the server really dropped the connection"
    [score] = store.block_scores()
    assert (score.status, score.accuracy, score.attempts) == ("done", 77.0, 1)
    admin.dispose()


def test_a_permanent_error_fails_at_once_without_retrying(store_url):
    store = PerformanceStore(store_url)
    store.mark_running(ROWS[:1], node="n", host="h")
    started = time.perf_counter()
    with pytest.raises(StorageError, match="performance table") as error:
        store.record_result(["job0"], {"no_such_column": 1.0})
    assert "attempts" not in str(error.value) and time.perf_counter() - started < store.retry_delay
    [score] = store.block_scores()
    assert score.status == "running"
