"""The performance table: SQLAlchemy models, one session helper, idempotent upserts, frozen records."""

from orchestrator.storage._base import BaseStore
from orchestrator.storage._records import BlockScore, CostEntry, NetworkResult, RegisteredTarget, StoredFront
from orchestrator.storage._store import PerformanceStore, StorageError, public_url, shared_store

__all__ = ["BaseStore", "BlockScore", "CostEntry", "NetworkResult", "PerformanceStore", "RegisteredTarget",
           "StorageError", "StoredFront", "public_url", "shared_store"]
