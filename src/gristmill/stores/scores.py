"""Score store ports: batch score jobs (their state, in the metadata store) and their output.

A *score job* scores one input (a feature set, a raw batch, a source's newest batch or a
file) with one registered model version, partition by partition. Its state — queued,
running, succeeded or failed; partitions done of total; rows; bad rows — is a
``ScoreJob`` row in the ``ScoreJobStore`` so a CLI, a worker and the server read one truth.

The scores themselves go to the ``ScoreStore``: one Parquet file per (job, partition),
written under a temporary name and renamed into place once (a partition already in place is
never written again), and a job manifest written *last*. Readers see a job only through its
manifest, and only the partitions it lists: a job killed mid-way shows nothing, and when
asked again writes only the partitions it had not committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

JobState = Literal["queued", "running", "succeeded", "failed"]
JOB_STATES: tuple[JobState, ...] = ("queued", "running", "succeeded", "failed")
SCORE_JOB_KIND = "score_job"
"""The lineage kind of a score job (its id is the node id)."""
SCORING_STAGE = "scoring"
"""The stage whose execution holds a score job while it runs, whoever runs it: a scoring
worker, ``gristmill score`` or a server (``job_key`` is the execution's key; ADR 23)."""
INPUT_FORMS = (
    "a file (.csv, .parquet, .jsonl), batch:BATCH_ID, source:SOURCE (its newest batch), "
    "feature_set:ID or feature_set:NAME (its newest)"
)
"""The forms of a job's ``input`` (``stages.score_inputs.resolve_input`` reads them)."""


@dataclass(frozen=True)
class ScoreJob:
    """One batch scoring job.

    ``model`` is the reference asked for (``churn``, ``churn@challenger``, ``churn/3``);
    ``version`` the version it resolved to (``None`` until it runs). ``input`` is the input as
    asked for; ``input_kind`` what it turned out to be (``feature_set``, ``batch``,
    ``file``). ``bad_rows`` counts rows that could not be scored; ``errors`` names the first
    of them (``{"row", "key", "error"}``) and, for a failed job, why it failed.
    ``location`` is where the scores are (the job's folder in the score store).
    """

    job_id: str
    model: str
    input: str
    state: JobState
    created_at: datetime
    version: int | None = None
    input_kind: str | None = None
    partitions_total: int = 0
    partitions_done: int = 0
    rows: int = 0
    bad_rows: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    location: str | None = None
    webhook: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None

    @property
    def ended(self) -> bool:
        return self.state in ("succeeded", "failed")


def job_key(job_id: str) -> str:
    """The idempotency key of the ``scoring`` stage's execution that holds job ``job_id``."""
    from gristmill.core.ids import digest_json

    return digest_json({"job": job_id})


def job_summary(job: ScoreJob) -> dict[str, Any]:
    """A job as JSON values (what ``GET /v1/jobs/{id}`` answers and a webhook is sent)."""
    body = asdict(job)
    for name in ("created_at", "started_at", "finished_at"):
        value = body[name]
        body[name] = value.isoformat() if value is not None else None
    body["progress"] = {"done": job.partitions_done, "total": job.partitions_total}
    body["where"] = job.location
    return body


class ScoreJobStore(Protocol):
    """Score jobs, kept in the metadata store. Writes made by a stage's handler are fenced
    (ADR 14): a holder that lost its lease cannot move a job's state."""

    def add_job(self, job: ScoreJob) -> ScoreJob:
        """Record ``job``; if its id exists, return the recorded one instead (idempotent)."""
        ...

    def save_job(self, job: ScoreJob) -> None:
        """Replace the recorded job of the same id (insert it if it is new)."""
        ...

    def get_job(self, job_id: str) -> ScoreJob:
        """The job; ``NotFoundError`` naming it and how to list jobs."""
        ...

    def find_job(self, job_id: str) -> ScoreJob | None: ...

    def list_jobs(self, *, limit: int = 50) -> list[ScoreJob]:
        """Newest first."""
        ...


class ScoreStore(Protocol):
    """Batch scores as Parquet partitions through fsspec (see the module docstring).

    Picklable: executor tasks take it to the processes that score a partition.
    """

    def location(self, job_id: str) -> str:
        """The URL of the job's folder."""
        ...

    def committed(self, job_id: str) -> dict[int, dict[str, Any]]:
        """The partitions of ``job_id`` already in place, each with the ``stats`` it was
        written with (rows, bad rows): a job asked again counts them without reading them."""
        ...

    def write_partition(
        self, job_id: str, index: int, table: pa.Table, stats: dict[str, Any]
    ) -> bool:
        """Write partition ``index`` (and its ``stats``, JSON values) under a temporary name,
        then rename it into place; ``False`` (the temporary file dropped) when it was in
        place already."""
        ...

    def commit(self, job_id: str, manifest: dict[str, Any]) -> str:
        """Write the job's manifest (``partitions`` lists the committed ones): from now on
        readers see the job. Returns the manifest's URL."""
        ...

    def manifest(self, job_id: str) -> dict[str, Any] | None:
        """The job's manifest, ``None`` while it is not committed."""
        ...

    def read(self, job_id: str) -> pa.Table:
        """Every committed partition of the job, in order; ``NotFoundError`` before the
        manifest is written."""
        ...

    def partitions(self, job_id: str) -> Iterator[pa.Table]:
        """The job's committed partitions one at a time, in order (what ``read`` joins),
        so a copy of a large job never holds it whole; ``NotFoundError`` before the
        manifest is written."""
        ...
