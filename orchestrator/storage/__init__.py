"""The performance table: SQLAlchemy models, one session helper, idempotent upserts, frozen records."""

from blocknas.orchestrator.storage._base import BaseStore
from blocknas.orchestrator.storage._records import BlockScore, CostEntry, RegisteredTarget, StoredFront, VerifiedNetwork
from blocknas.orchestrator.storage._store import PerformanceStore, StorageError, public_url, shared_store

__all__ = [
    "BaseStore",
    "BlockScore",
    "CostEntry",
    "VerifiedNetwork",
    "PerformanceStore",
    "RegisteredTarget",
    "StorageError",
    "StoredFront",
    "public_url",
    "shared_store",
]
