"""Feature store ports: the feature-set catalog, the offline store, the online store.

* A **feature set** is the output of one fitted feature pipeline over given input batches.
  Its ``feature_set_id`` is derived from the pipeline definition and the input batch ids,
  so computing the same thing twice finds the existing set.
* The **offline store** keeps feature sets as immutable Parquet (queried with DuckDB);
  it returns Arrow tables and joins as of a timestamp (a row never sees a later value).
* The **online store** keeps the latest feature vector per entity of a *view* (a feature
  set's name), for lookups in milliseconds. A vector older than the view's TTL is reported
  missing, never served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

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


class FeatureSetCatalog(Protocol):
    """Feature set manifests, kept in the metadata store."""

    def add_feature_set(self, feature_set: FeatureSet) -> FeatureSet:
        """Record it; if the id exists, return the recorded one instead (idempotent)."""
        ...

    def get_feature_set(self, feature_set_id: str) -> FeatureSet: ...

    def find_feature_set(self, feature_set_id: str) -> FeatureSet | None: ...

    def latest_feature_set(self, name: str) -> FeatureSet | None: ...

    def list_feature_sets(self, *, name: str | None = None, limit: int = 100) -> list[FeatureSet]:
        """Newest first."""
        ...


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
    """One entity's feature values, stamped with the time they describe."""

    entity: str
    values: dict[str, Any]
    event_time: datetime


@dataclass(frozen=True)
class OnlineCapabilities:
    cross_process: bool
    native_ttl: bool = False


class OnlineFeatureStore(Protocol):
    """The latest feature vector per entity, per view.

    * ``put`` keeps, per entity, the vector with the newest ``event_time`` (an older vector
      arriving late does not overwrite a newer one). ``ttl`` (seconds) applies to the view.
    * ``get`` returns one result per key, in the order asked: the vector, or ``None`` when
      the key is unknown or its vector is older than the TTL (measured from ``event_time``).
    * ``open``/``close`` are idempotent; errors are ``BackendUnavailableError``/``BackendError``.
    """

    capabilities: OnlineCapabilities

    def open(self) -> None: ...

    def close(self) -> None: ...

    def put(self, view: str, vectors: Sequence[EntityVector], *, ttl: float | None = None) -> int:
        """Store vectors; returns how many were newer than what was stored."""
        ...

    def get(
        self, view: str, entities: Sequence[str], *, features: Sequence[str] | None = None
    ) -> list[EntityVector | None]: ...

    def delete_view(self, view: str) -> None: ...
