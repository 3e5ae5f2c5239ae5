"""Frozen records returned by the store: callers never see ORM rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime


@dataclass(frozen=True)
class BlockScore:
    job_hash: str
    experiment: str
    space: str
    scorer_hash: str
    slot_index: int
    slot: str
    block: str
    choice_index: int
    network_hash: str
    context_index: int
    status: str
    attempts: int
    accuracy: float | None
    loss: float | None
    train_loss: float | None
    train_seconds: float | None
    params: int | None
    flops: int | None
    node: str | None
    host: str | None
    device: str | None
    mlflow_run_id: str | None
    error: str | None
    lease_owner: str | None
    heartbeat_at: datetime | None
    pid: int | None
    started_at: datetime | None
    finished_at: datetime | None

    def as_json(self) -> dict:
        data = asdict(self)
        for key in ("heartbeat_at", "started_at", "finished_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


@dataclass(frozen=True)
class CostEntry:
    slot_index: int  # -1: the fixed part every network pays (stem and head)
    choice: str
    value: float


@dataclass(frozen=True)
class StoredFront:
    experiment: str
    target: str
    target_version: str
    metric: str
    table_hash: str
    points: list
    computed_at: datetime


@dataclass(frozen=True)
class VerifiedNetwork:
    """A whole network verified by the refine loop: measured beside predicted accuracy and costs."""

    experiment: str
    scorer_hash: str
    network_key: str
    choices: list
    accuracy: float
    predicted_accuracy: float | None
    costs: dict
    predicted_costs: dict
    refine_round: int
    source: str  # pool or trust_region
    node: str | None
    device: str | None
    mlflow_run_id: str | None


@dataclass(frozen=True)
class RegisteredTarget:
    """A registered hardware target at its current version (the definition is stored once per version)."""

    name: str
    version: str
    kind: str
    definition: dict
    updated_at: datetime
