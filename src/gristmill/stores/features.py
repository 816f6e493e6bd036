"""Feature store ports: the feature-set catalog, the offline store, the online store.

* A **feature set** is the output of one fitted feature pipeline over given input batches.
  Its ``feature_set_id`` is derived from the pipeline definition and the input batch ids,
  so computing the same thing twice finds the existing set.
* The **offline store** keeps feature sets as immutable Parquet (queried with DuckDB);
  it returns Arrow tables and joins as of a timestamp (a row never sees a later value).
* The **online store** keeps the latest feature vector per entity of a *view* (a feature
  set's name) *and pipeline* (the digest of the fitted pipeline that computed it), for
  lookups in milliseconds. Every vector records the feature set id and pipeline digest that
  made it; a lookup names the pipeline it wants and is told, per entity, whether that
  pipeline's vector was found, is missing, expired, or superseded by a newer vector of
  another pipeline (ADR 0009).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from gristmill.errors import NotFoundError

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class FeatureSet:
    """The manifest of one stored feature set.

    ``name`` is the spec's key (``features.<name>``); ``definition_digest`` the digest of its
    spec section; ``inputs`` the raw batch ids (or feature set ids) it was computed from.
    ``pipeline_artifact`` is the content digest of the fitted pipeline in the artifact store
    (it computes the same features for one online request). ``selection`` records what
    selection kept and why (scores).
    """

    feature_set_id: str
    name: str
    definition_digest: str
    inputs: list[str]
    location: str
    columns: list[dict[str, Any]]
    row_count: int
    created_at: datetime
    entity: str | None = None
    timestamp: str | None = None
    label: str | None = None
    pipeline_artifact: str | None = None
    selection: dict[str, Any] = field(default_factory=dict)
    validation_report: str | None = None
    run_id: str | None = None

    @property
    def label_outcome(self) -> dict[str, Any] | None:
        """What preparation recorded of the label (``selection.fitted_on.label``): its
        ``name``, the ``missing`` policy, ``unlabelled`` (rows left out of the split's
        subsets), and ``expr`` when it is derived; ``None`` without a label."""
        fitted_on = self.selection.get("fitted_on") or {}
        label = fitted_on.get("label") if isinstance(fitted_on, dict) else None
        return dict(label) if isinstance(label, dict) else None


def series_gaps_of(feature_set: FeatureSet) -> dict[str, Any] | None:
    """What preparation recorded of the rows lags and rolling windows had no value for
    (``selection.fitted_on.series_gaps``: ``made`` and ``missing`` per column), if any."""
    fitted_on = feature_set.selection.get("fitted_on") or {}
    gaps = fitted_on.get("series_gaps") if isinstance(fitted_on, dict) else None
    return dict(gaps) if isinstance(gaps, dict) else None


def series_gaps_line(name: str, gaps: dict[str, Any]) -> str | None:
    """The sentence a summary gives for the rows lags and rolling windows left without a
    value (the first rows of each series), or ``None`` when there are none."""
    made: dict[str, int] = dict(gaps.get("made") or {})
    if not made:
        return None
    missing: dict[str, int] = dict(gaps.get("missing") or {})
    counts = ", ".join(f"{column} {count:,}" for column, count in made.items())
    left = sum(missing.values())
    if left:
        fate = (
            f"{left:,} value(s) are left missing in the set ("
            + ", ".join(f"{c} {n:,}" for c, n in missing.items() if n)
            + "): impute them (an impute step after the lags) or use an algorithm that "
            "takes missing values"
        )
    else:
        fate = "all imputed by later steps" if missing else "not kept by the selection"
    return (
        f"{name}: lags/rolling windows have no value for the first rows of each series "
        f"(rows: {counts}); {fate}"
    )


def unlabelled_line(name: str, label: dict[str, Any]) -> str | None:
    """The sentence a summary gives for rows without a label, or ``None`` when there are
    none (``label``: a feature set's ``label_outcome``)."""
    count = int(label.get("unlabelled") or 0)
    if not count:
        return None
    rows = "row has" if count == 1 else "rows have"
    return (
        f"{name}: {count:,} {rows} no label {label.get('name')!r}; left out of training and "
        "evaluation (label.missing: drop; set it to error to refuse them)"
    )


class FeatureSetReader(Protocol):
    """Reading the feature set manifests."""

    def get_feature_set(self, feature_set_id: str) -> FeatureSet: ...

    def find_feature_set(self, feature_set_id: str) -> FeatureSet | None: ...

    def list_feature_sets(self, *, name: str | None = None, limit: int = 100) -> list[FeatureSet]:
        """Newest first."""
        ...


def missing_feature_set(feature_set_id: str) -> NotFoundError:
    """What ``get_feature_set`` raises when no feature set has ``feature_set_id``."""
    return NotFoundError(
        f"no feature set with id {feature_set_id!r}; "
        "list feature sets with `gristmill ls feature-sets`"
    )


class FeatureSetCatalog(FeatureSetReader, Protocol):
    """Feature set manifests, kept in the metadata store."""

    def add_feature_set(self, feature_set: FeatureSet) -> FeatureSet:
        """Record it; if the id exists, return the recorded one instead (idempotent)."""
        ...

    def latest_feature_set(self, name: str) -> FeatureSet | None: ...


class OfflineFeatureStore(Protocol):
    """Immutable feature sets as Parquet, read as Arrow, joined as of a time."""

    def write(self, feature_set: FeatureSet, table: pa.Table) -> FeatureSet:
        """Write ``table`` atomically at ``feature_set.location`` and record it; idempotent."""
        ...

    def read(self, feature_set_id: str, *, columns: list[str] | None = None) -> pa.Table: ...

    def as_of_join(
        self,
        left: pa.Table,
        feature_set_id: str,
        *,
        on: str,
        timestamp: str,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """Each ``left`` row with the newest feature values at or before its ``timestamp``.

        A row whose entity has no value yet gets nulls; a value stamped after the row is
        never used (point-in-time correct).
        """
        ...

    def list(self, *, name: str | None = None) -> list[FeatureSet]: ...


@dataclass(frozen=True)
class EntityVector:
    """One entity's feature values, stamped with the time they describe and their origin.

    ``feature_set_id`` and ``pipeline`` (the fitted pipeline's artifact digest) name what
    computed the values; an online store refuses a vector without them. ``written_at`` is
    set by the store when it accepts the vector (so it takes no part in equality).
    """

    entity: str
    values: dict[str, Any]
    event_time: datetime
    feature_set_id: str = ""
    pipeline: str = ""
    written_at: datetime | None = field(default=None, compare=False)


LookupStatus = Literal["found", "missing", "expired", "superseded"]


@dataclass(frozen=True)
class VectorLookup:
    """What a lookup of one entity in one pipeline's view found.

    * ``found``: ``vector`` is that pipeline's newest vector of the entity, within its TTL.
    * ``missing``: the pipeline has no vector of the entity (or the store dropped it).
    * ``expired``: it has one, older than the TTL (``event_time`` says how old).
    * ``superseded``: it has one, but another pipeline wrote a newer one for the entity
      (``newer_time``): the entity's data moved on and this pipeline's view did not.

    ``vector`` is set only when ``found``, so a stale vector is never used by mistake.
    """

    entity: str
    status: LookupStatus
    vector: EntityVector | None = None
    event_time: datetime | None = None
    newer_time: datetime | None = None

    @property
    def found(self) -> bool:
        return self.status == "found"

    @property
    def stale(self) -> bool:
        return self.status in ("expired", "superseded")


@dataclass(frozen=True)
class OnlineCapabilities:
    cross_process: bool
    native_ttl: bool = False


class OnlineFeatureStore(Protocol):
    """The latest feature vector per entity, per view and pipeline.

    * ``put`` keeps, per (view, pipeline, entity), the vector with the newest
      ``event_time`` (an older vector arriving late does not overwrite a newer one); vectors
      of different pipelines never replace each other. Each vector must name its
      ``feature_set_id`` and ``pipeline`` (``ConfigError`` otherwise); the store stamps
      ``written_at``. ``ttl`` (seconds) applies to the vectors written.
    * ``get`` returns one ``VectorLookup`` per key, in the order asked, for exactly the
      vectors of ``pipeline``: found, missing, expired (older than the TTL, measured from
      ``event_time``) or superseded (another pipeline holds a strictly newer vector of the
      entity). A backend that drops expired vectors itself keeps them for one more TTL (at
      most a day) so they read ``expired``, and ``missing`` after that. Once the newer
      vectors are gone (their pipeline's part deleted), the older ones read ``found`` again.
    * ``delete_view`` deletes a view's vectors: of one ``pipeline``, or of all.
    * ``open``/``close`` are idempotent; errors are ``BackendUnavailableError``/``BackendError``.
    """

    capabilities: OnlineCapabilities

    def open(self) -> None: ...

    def close(self) -> None: ...

    def put(self, view: str, vectors: Sequence[EntityVector], *, ttl: float | None = None) -> int:
        """Store vectors; returns how many were newer than what was stored."""
        ...

    def get(
        self,
        view: str,
        entities: Sequence[str],
        *,
        pipeline: str,
        features: Sequence[str] | None = None,
    ) -> list[VectorLookup]: ...

    def delete_view(self, view: str, *, pipeline: str | None = None) -> None: ...


EXPIRED_KEPT_AT_MOST = 86_400.0
"""Seconds a backend with native expiry keeps an expired vector (to say ``expired``)."""


def unnamed_origin(vector: EntityVector) -> str | None:
    """The problem with ``vector``'s provenance (a message naming its entity), or ``None``."""
    if vector.feature_set_id and vector.pipeline:
        return None
    return (
        f"the vector of entity {vector.entity!r} names no "
        f"{'pipeline' if vector.feature_set_id else 'feature set id'}; every online vector "
        "records the feature set id and pipeline digest that made it"
    )
