"""Alembic migrations: new stores are created at head, the migrations build exactly the models' schema,
an outdated store is refused until `blocknas db upgrade`, and the upgrade keeps every row."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from blocknas.orchestrator.storage import PerformanceStore, StorageError
from blocknas.orchestrator.storage._models import Base
from blocknas.orchestrator.storage._schema import VERSION_TABLE, current_revision, head_revision, upgrade
from tests.conftest import run_cli


def test_a_new_store_is_created_at_head_with_exactly_the_models_schema(store_url):
    store = PerformanceStore(store_url)
    assert current_revision(store.engine) == head_revision()
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"the migrations and orchestrator/storage/_models.py disagree: {diff}"


def test_an_outdated_store_is_refused_until_db_upgrade_and_keeps_its_rows(store_url, home):
    engine = create_engine(store_url)
    assert upgrade(engine, "0001") == (None, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO block_scores (job_hash, experiment, space, scorer_hash, slot_index, slot, block, "
                "choice_index, network_hash, context_index, status, attempts, accuracy) VALUES "
                "('h1', 'e', 'sp', 'sc', 0, 's0', 's0:a', 0, 'n1', 0, 'done', 1, 0.5)"
            )
        )
    engine.dispose()

    with pytest.raises(StorageError, match=r"revision 0001, this blocknas needs .*blocknas db upgrade"):
        PerformanceStore(store_url)
    refused = run_cli(home, "blocks", f"storage.url='{store_url}'")
    assert refused.returncode == 1 and "blocknas db upgrade" in refused.stderr

    current = run_cli(home, "db", "current", f"storage.url='{store_url}'")
    assert current.returncode == 0 and "revision 0001, needs `blocknas db upgrade`" in current.stdout
    upgraded = run_cli(home, "db", "upgrade", f"storage.url='{store_url}'")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"0001 -> {head_revision()}" in upgraded.stdout
    again = run_cli(home, "db", "upgrade", f"storage.url='{store_url}'")
    assert "already at schema revision" in again.stdout

    store = PerformanceStore(store_url)
    [row] = store.block_scores()
    assert (row.job_hash, row.status, row.accuracy, row.attempts) == ("h1", "done", 0.5, 1)


def test_a_store_from_a_newer_blocknas_is_refused(store_url):
    store = PerformanceStore(store_url)
    with store.engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(StorageError, match="newer blocknas"):
        PerformanceStore(store_url)


def test_a_store_without_revision_but_with_tables_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    Base.metadata.create_all(create_engine(url))
    with pytest.raises(StorageError, match="before migrations existed"):
        PerformanceStore(url)


def test_parameter_and_flops_counts_beyond_32_bits_are_stored(store_url):
    """ResNet-50 has 4.1e9 MACs: a 32-bit column overflowed on PostgreSQL (migration 0004 widens it)."""
    store = PerformanceStore(store_url)
    row = {
        "job_hash": "big",
        "experiment": "e",
        "space": "sp",
        "scorer_hash": "sc",
        "slot_index": 0,
        "slot": "s0",
        "block": "s0:a",
        "choice_index": 0,
        "network_hash": "n",
        "context_index": 0,
    }
    store.mark_running([row], node=None, host=None)
    store.record_result(["big"], {"accuracy": 76.1, "params": 25_557_032_000, "flops": 4_100_000_000})
    [score] = store.block_scores(["big"])
    assert (score.params, score.flops) == (25_557_032_000, 4_100_000_000)


def test_the_revisions_read_from_file_names_are_alembics_chain():
    """Opening a store reads revisions without Alembic (fast start-up); they must be Alembic's linear chain."""
    from alembic.script import ScriptDirectory

    from blocknas.orchestrator.storage._schema import _config, known_revisions

    scripts = ScriptDirectory.from_config(_config())
    chain = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert known_revisions() == chain and head_revision() == scripts.get_current_head()
    assert all(scripts.get_revision(r).down_revision == (chain[i - 1] if i else None) for i, r in enumerate(chain))
