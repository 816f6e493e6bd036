"""Model stores: split manifests and model candidates (the offline learning loop's records).

* A **split** (``split_id``) says which rows of a feature set are train / validation / test:
  a reproducible rule (strategy + parameters + seed) and, when the rule cannot be replayed
  cheaply, the row membership (stored as an artifact by digest). Its warnings travel with it.
* A **candidate** is one trained model: its config, the fitted artifact (the estimator
  together with the fitted feature pipeline, so it scores raw rows), learned parameters,
  the feature set and split it saw, timings, library versions, metrics once evaluated.
  ``candidate_id`` is derived from (feature set, split, name, algorithm, params), so a
  resumed run finds the candidates already trained and skips them.

``get_*`` raise ``NotFoundError``; ``find_*`` return ``None``; lists are newest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

CandidateStatus = Literal["trained", "failed"]


@dataclass(frozen=True)
class Split:
    split_id: str
    feature_set_id: str
    strategy: str
    params: dict[str, Any]
    sizes: dict[str, int]
    created_at: datetime
    membership: str | None = None
    """Artifact digest of the row membership (an Arrow IPC of subset labels), if stored."""
    warnings: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None


@dataclass(frozen=True)
class Candidate:
    candidate_id: str
    name: str
    algorithm: str
    task: str
    params: dict[str, Any]
    feature_set_id: str
    split_id: str
    status: CandidateStatus
    started_at: datetime
    finished_at: datetime | None = None
    artifact: str | None = None
    """Artifact digest of the fitted model bundle."""
    learned: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    tuning: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    attempts: int = 1
    error: str | None = None
    run_id: str | None = None


class SplitStore(Protocol):
    def add_split(self, split: Split) -> Split:
        """Record it; if the id exists, return the recorded one (idempotent)."""
        ...

    def get_split(self, split_id: str) -> Split: ...

    def find_split(self, split_id: str) -> Split | None: ...


class CandidateStore(Protocol):
    def save_candidate(self, candidate: Candidate) -> None:
        """Insert or replace the candidate with this id (a retry or an evaluation updates it)."""
        ...

    def get_candidate(self, candidate_id: str) -> Candidate: ...

    def find_candidate(self, candidate_id: str) -> Candidate | None: ...

    def list_candidates(
        self,
        *,
        run_id: str | None = None,
        feature_set_id: str | None = None,
        limit: int = 100,
    ) -> list[Candidate]: ...
