"""Metadata store ports: runs, stage executions, lineage edges and the audit log.

The ``MetadataStore`` also exposes the raw batch catalog (``stores.raw``), the report store
(``stores.reports``), the feature-set catalog (``stores.features``), and the split and
candidate stores and the model registry (``stores.models``), the spec store
(``stores.specs``), the dead-letter store (``stores.dead_letters``), the score jobs
(``stores.scores``), the serving stats (``stores.serving_stats``), the schedules with
their ticks (``stores.schedules``), the feedback with its live quality windows
(``stores.feedback``) and the drift windows (``stores.drift``), kept in the same database.

All ports here are synchronous (stores are called from stage handlers, which run in worker
threads). Every method returns domain objects, never driver rows. ``get_*`` raises
``NotFoundError``; ``find_*`` returns ``None``. One SQL adapter (SQLite, PostgreSQL)
implements them all; ``gristmill.testing.metadata_contract`` is the suite each backend passes.

The read side (what ``ls``, ``show`` and ``lineage`` query) is a port of its own,
``MetadataReader``: each role's reads (``RunReader`` …) are the part of its store port that
changes nothing, so every ``MetadataStore`` is a ``MetadataReader``, and a reader needs no
writer's machinery (ADR 28: a read-only SQLite reader on the standard library answers
``ls`` and ``show`` without loading SQLAlchemy). ``gristmill.testing.metadata_reader_contract``
is the suite each reader passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from gristmill.errors import NotFoundError

if TYPE_CHECKING:  # annotations only: reading runs loads no other role's port (nor the spec)
    from gristmill.stores.dead_letters import DeadLetterStore
    from gristmill.stores.drift import DriftStore
    from gristmill.stores.features import FeatureSetCatalog, FeatureSetReader
    from gristmill.stores.feedback import FeedbackStore
    from gristmill.stores.fencing import Fence
    from gristmill.stores.models import (
        CandidateReader,
        CandidateStore,
        ModelRegistry,
        SplitReader,
        SplitStore,
    )
    from gristmill.stores.raw import BatchCatalog, BatchReader
    from gristmill.stores.reports import ReportReader, ReportStore
    from gristmill.stores.schedules import ScheduleStore
    from gristmill.stores.scores import ScoreJobStore
    from gristmill.stores.serving_stats import ServingStatsStore
    from gristmill.stores.specs import SpecReader, SpecStore

RunStatus = Literal["running", "succeeded", "failed", "partial"]
ExecutionStatus = Literal["running", "succeeded", "failed", "skipped"]


@dataclass(frozen=True)
class Run:
    """One pipeline run; its id is the ``correlation_id`` of every event it caused.

    ``spec_digest`` names the spec it follows, kept in the spec store (``stores.specs``).
    """

    run_id: str
    pipeline: str
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None = None
    spec_digest: str = ""
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageExecution:
    """One stage handling one input; ``idempotency_key`` is derived from inputs + config.

    A stage that finds a succeeded execution with its key skips the work and re-announces
    the recorded ``outputs`` (the payloads it published), so redelivery is harmless.

    A ``running`` execution is held by ``holder`` (the consumer running it) under a lease
    until ``lease_expires_at``, renewed while the work runs. One whose lease expired is
    ``stale``: its holder died, hung or lost the store (see ``stores.run_status``).

    ``published_at`` is the outbox mark (ADR 14): when the recorded ``outputs`` were
    published, ``None`` while they still wait for the bus (an ended execution without outputs
    has nothing to publish and is marked when it ends).
    """

    execution_id: str
    stage: str
    idempotency_key: str
    status: ExecutionStatus
    started_at: datetime
    run_id: str | None = None
    input_event_id: str | None = None
    finished_at: datetime | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    lease_expires_at: datetime | None = None
    holder: str | None = None
    published_at: datetime | None = None


@dataclass(frozen=True)
class LineageEdge:
    """``child`` was made from ``parent`` (e.g. a raw batch from a source file)."""

    parent_id: str
    parent_kind: str
    child_id: str
    child_kind: str
    relation: str = "derived_from"
    created_at: datetime | None = None


@dataclass(frozen=True)
class AuditEntry:
    """Who did what to which object, and when."""

    entry_id: str
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any] = field(default_factory=dict)


class RunReader(Protocol):
    def get_run(self, run_id: str) -> Run: ...

    def find_run(self, run_id: str) -> Run | None: ...

    def list_runs(self, *, limit: int = 50) -> list[Run]:
        """Newest first."""
        ...


def missing_run(run_id: str) -> NotFoundError:
    """What ``get_run`` raises when no run has ``run_id`` (every backend says the same)."""
    return NotFoundError(f"no run with id {run_id!r}; list runs with `gristmill ls runs`")


class RunStore(RunReader, Protocol):
    def start_run(self, run: Run) -> None:
        """Record a new run; ``ConflictError`` if the id exists."""
        ...

    def finish_run(self, run_id: str, status: RunStatus, summary: dict[str, Any]) -> Run: ...


class ExecutionReader(Protocol):
    def list_executions(self, run_id: str) -> list[StageExecution]:
        """A run's executions, oldest first."""
        ...

    def list_executions_of_runs(self, run_ids: Sequence[str]) -> dict[str, list[StageExecution]]:
        """The executions of each of ``run_ids`` (oldest first), read at once: every id is a
        key, a run without executions has an empty list."""
        ...


class ExecutionStore(ExecutionReader, Protocol):
    """Stage executions, and the leases that let one consumer at a time run a piece of work.

    A key (``stage`` + ``idempotency_key``) is *held* while an execution of it is ``running``
    with ``lease_expires_at`` in the future; a ``running`` execution whose lease is past (or
    that has none) holds nothing: its holder is presumed dead.
    """

    def record_execution(self, execution: StageExecution) -> None:
        """Insert or replace the execution with this ``execution_id``."""
        ...

    def claim_execution(
        self, execution: StageExecution, *, margin: timedelta = timedelta(0)
    ) -> StageExecution | None:
        """Record the ``running`` ``execution`` unless its key is done or held; ``None`` if so.

        Returns instead, recording nothing: the newest ``succeeded`` execution of the key (the
        work is done), else the ``running`` one that holds it (its lease ends less than
        ``margin`` before ``execution.started_at``, the claim's "now": a lease is taken over
        only once expired by that margin). Executions of the key left ``running`` with a lease
        expired by the margin are marked ``failed`` in the same transaction, their ``error``
        saying which execution replaced them and how: an attempt that failed and released
        the work (its error recorded) is ``retried as execution …``; one whose holder stopped
        renewing while it ran is ``taken over: …`` (naming the holder). Race-safe: of
        claims of one key made at once, by any processes, exactly one records its execution.
        """
        ...

    def renew_lease(self, execution_id: str, until: datetime) -> bool:
        """Move the lease of a ``running`` execution to ``until``; ``False`` if it is not
        running any more (finished, or taken over after its lease expired)."""
        ...

    def finish_execution(self, execution: StageExecution) -> bool:
        """Record how a ``running`` execution ended — the commit point of fenced work.

        Writes ``execution`` (its status, ``finished_at``, ``outputs``, ``error``, lease)
        over the recorded one only if that is still ``running``, atomically with the check;
        ``False``, writing nothing, if it is not (taken over after its lease lapsed, or swept
        by ``gc``): its holder lost the work and must not announce its results.
        """
        ...

    def mark_published(self, execution_id: str, at: datetime) -> None:
        """Record that the outputs of ``execution_id`` were published (the outbox mark); a
        mark already set is kept."""
        ...

    def list_unpublished(
        self, stage: str, finished_before: datetime, *, limit: int = 100
    ) -> list[StageExecution]:
        """Ended executions of ``stage`` whose recorded outputs were not published yet and
        that ended before ``finished_before``, oldest first (the outbox to relay)."""
        ...

    def fence(self, execution_id: str) -> Fence:
        """A fence for writes made on behalf of ``execution_id`` (``stores.fencing``): a
        write transaction of this store made under it is refused with ``LeaseLostError``
        once the execution is no longer ``running``."""
        ...

    def find_execution(self, stage: str, idempotency_key: str) -> StageExecution | None:
        """The newest execution of ``stage`` with that key, if any."""
        ...

    def list_stale_executions(self, expired_before: datetime) -> list[StageExecution]:
        """``running`` executions whose lease expired before ``expired_before`` (or that
        have none and started before it), oldest first."""
        ...

    def abandon_execution(
        self, execution_id: str, *, reason: str, expired_before: datetime
    ) -> StageExecution | None:
        """Mark a stale execution ``failed`` with ``reason`` as its error (appended to an
        error it had); the execution as now recorded, or ``None`` if it is not (any more)
        ``running`` with a lease expired before ``expired_before``."""
        ...


class LineageReader(Protocol):
    def parents(self, node_id: str) -> list[LineageEdge]:
        """Edges into ``node_id``, oldest first."""
        ...

    def children(self, node_id: str) -> list[LineageEdge]:
        """Edges out of ``node_id``, oldest first."""
        ...


class LineageStore(LineageReader, Protocol):
    def add_edges(self, edges: Sequence[LineageEdge]) -> None:
        """Record edges; an edge already recorded is ignored (idempotent)."""
        ...


class AuditReader(Protocol):
    def list_entries(
        self, *, subject: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """The newest ``limit`` entries (of ``subject``, of ``action``, when given), newest
        first."""
        ...


class AuditLog(AuditReader, Protocol):
    def append(self, entry: AuditEntry) -> None: ...


class MetadataReader(Protocol):
    """The read side of the metadata store: each role's reads as an attribute, what the
    inspecting verbs (``ls``, ``show``, ``lineage``) query. It writes nothing, ever.

    ``open`` connects (and may refuse a store it cannot read, with ``BackendError``);
    ``close`` releases the connection.
    """

    @property
    def runs(self) -> RunReader: ...

    @property
    def executions(self) -> ExecutionReader: ...

    @property
    def lineage(self) -> LineageReader: ...

    @property
    def audit(self) -> AuditReader: ...

    @property
    def batches(self) -> BatchReader: ...

    @property
    def reports(self) -> ReportReader: ...

    @property
    def feature_sets(self) -> FeatureSetReader: ...

    @property
    def splits(self) -> SplitReader: ...

    @property
    def candidates(self) -> CandidateReader: ...

    @property
    def specs(self) -> SpecReader: ...

    def open(self) -> None: ...

    def close(self) -> None: ...


class MetadataStore(MetadataReader, Protocol):
    """The metadata store: one object exposing each role port as an attribute.

    ``open`` connects and applies migrations; ``close`` releases connections.
    """

    @property
    def runs(self) -> RunStore: ...

    @property
    def executions(self) -> ExecutionStore: ...

    @property
    def lineage(self) -> LineageStore: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def batches(self) -> BatchCatalog: ...

    @property
    def reports(self) -> ReportStore: ...

    @property
    def feature_sets(self) -> FeatureSetCatalog: ...

    @property
    def splits(self) -> SplitStore: ...

    @property
    def candidates(self) -> CandidateStore: ...

    @property
    def registry(self) -> ModelRegistry: ...

    @property
    def specs(self) -> SpecStore: ...

    @property
    def dead_letters(self) -> DeadLetterStore: ...

    @property
    def score_jobs(self) -> ScoreJobStore: ...

    @property
    def serving_stats(self) -> ServingStatsStore: ...

    @property
    def schedules(self) -> ScheduleStore: ...

    @property
    def feedback(self) -> FeedbackStore: ...

    @property
    def drift(self) -> DriftStore: ...

    def open(self) -> None: ...

    def close(self) -> None: ...
