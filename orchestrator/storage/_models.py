"""Every table of the performance store, in one place, with its unique keys."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, DateTime, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ExperimentRow(Base):
    """A named search campaign and the config snapshot that defines it."""

    __tablename__ = "search_experiments"  # not "experiments": MLflow has one, and may share the database
    __table_args__ = (UniqueConstraint("name", "config_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    config_hash: Mapped[str] = mapped_column(String(64))
    config_yaml: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    code: Mapped[str | None] = mapped_column(Text)  # JSON: the user code it last ran with (code_fingerprint)


class BlockScoreRow(Base):
    """One measured block; ``job_hash`` covers everything that affects the result, so it is the key."""

    __tablename__ = "block_scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_hash: Mapped[str] = mapped_column(String(64), unique=True)
    experiment: Mapped[str] = mapped_column(String(200), index=True)
    space: Mapped[str] = mapped_column(String(200))
    scorer_hash: Mapped[str] = mapped_column(String(64), index=True)
    slot_index: Mapped[int] = mapped_column(Integer)
    slot: Mapped[str] = mapped_column(String(100))
    block: Mapped[str] = mapped_column(String(200))  # the stable key, e.g. "s2:mbconv_k5_e6"
    choice_index: Mapped[int] = mapped_column(Integer)  # position in the slot's choices; 0 is the base block
    network_hash: Mapped[str] = mapped_column(String(64))
    context_index: Mapped[int] = mapped_column(Integer, default=0)  # which of the estimator's context networks
    status: Mapped[str] = mapped_column(String(16), index=True)  # queued | running | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    accuracy: Mapped[float | None] = mapped_column(Float)
    loss: Mapped[float | None] = mapped_column(Float)
    train_loss: Mapped[float | None] = mapped_column(Float)
    train_seconds: Mapped[float | None] = mapped_column(Float)
    params: Mapped[int | None] = mapped_column(BigInteger)  # 64-bit: large models overflow 2^31
    flops: Mapped[int | None] = mapped_column(BigInteger)  # ResNet-50 has 4.1e9 MACs
    node: Mapped[str | None] = mapped_column(String(100))
    host: Mapped[str | None] = mapped_column(String(200))
    device: Mapped[str | None] = mapped_column(String(50))
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    # The lease: the driver that owns the job while it is queued or running, and when it last said so.
    # A lease whose heartbeat is older than the lease timeout is abandoned and may be claimed again.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pid: Mapped[int | None] = mapped_column(Integer)  # the worker process of the latest attempt
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BlockCostRow(Base):
    """The cost of one block on one hardware target version; slot_index -1 holds the fixed part."""

    __tablename__ = "block_costs"
    __table_args__ = (UniqueConstraint("space_hash", "target", "target_version", "slot_index", "choice"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_hash: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(100))
    target_version: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(50))
    slot_index: Mapped[int] = mapped_column(Integer)
    choice: Mapped[str] = mapped_column(String(200))
    value: Mapped[float] = mapped_column(Float)
    measured_on: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ParetoFrontRow(Base):
    """The Pareto front of one experiment for one target version, computed from one block table."""

    __tablename__ = "pareto_fronts"
    __table_args__ = (UniqueConstraint("experiment", "target", "target_version", "table_hash", "budgets_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment: Mapped[str] = mapped_column(String(200))
    config_hash: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(100))
    target_version: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(50))
    table_hash: Mapped[str] = mapped_column(String(64))
    budgets_hash: Mapped[str] = mapped_column(String(64))
    points: Mapped[list] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NetworkResultRow(Base):
    """A whole network verified by the refine loop: measured accuracy and costs beside the predictions.

    Keyed by (scorer, network): a network is evaluated at most once per scorer, whatever the experiment.
    """

    __tablename__ = "network_results"
    __table_args__ = (UniqueConstraint("scorer_hash", "network_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment: Mapped[str] = mapped_column(String(200))
    scorer_hash: Mapped[str] = mapped_column(String(64))
    network_key: Mapped[str] = mapped_column(String(500))
    choices: Mapped[list] = mapped_column(JSON)
    accuracy: Mapped[float] = mapped_column(Float)
    predicted_accuracy: Mapped[float | None] = mapped_column(Float)
    costs: Mapped[dict] = mapped_column(JSON)  # measured (network_table targets) or exact (analytic)
    predicted_costs: Mapped[dict] = mapped_column(JSON)
    refine_round: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(50))  # pool or trust_region
    node: Mapped[str | None] = mapped_column(String(100))
    device: Mapped[str | None] = mapped_column(String(50))
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TargetVersionRow(Base):
    """One version of a registered hardware target: its whole definition and data, immutable.

    ``version`` is the content hash of ``definition``; a target's history is its versions in time order.
    """

    __tablename__ = "target_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    definition: Mapped[dict] = mapped_column(JSON)  # TargetData.as_json(): metrics, budgets, costs, ...
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RegisteredTargetRow(Base):
    """The hardware-target registry: each name's current version (removing a name keeps its versions)."""

    __tablename__ = "registered_targets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    version: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
