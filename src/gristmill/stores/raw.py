"""Raw data store ports: immutable batches kept exactly as they arrived.

A batch is a directory of Parquet part files plus a manifest row in the ``BatchCatalog``
(the metadata store). The catalog row is written only after the files are complete and
renamed into place, so the catalog is the truth: a crash leaves at most an invisible orphan
directory, never a visible partial batch. Writing the same content (same source, same
``content_digest``) again returns the existing batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from gristmill.errors import NotFoundError

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class RawBatch:
    """The manifest of one immutable raw batch.

    ``batch_id`` is a ULID (sortable by arrival). ``schema`` is a list of
    ``{"name", "type", "nullable"}`` dicts; ``schema_fingerprint`` a digest of it.
    ``location`` is the fsspec URL of the batch directory, ``files`` the part files in it.
    ``quarantine`` is the URL of the rejected rows file, if any, with ``bad_rows`` rows.
    """

    batch_id: str
    source: str
    location: str
    files: list[str]
    schema: list[dict[str, Any]]
    schema_fingerprint: str
    row_count: int
    content_digest: str
    created_at: datetime
    origin: str = ""
    run_id: str | None = None
    quarantine: str | None = None
    bad_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class BatchReader(Protocol):
    """Reading the raw batches' manifest."""

    def get_batch(self, batch_id: str) -> RawBatch: ...

    def list_batches(self, *, source: str | None = None, limit: int = 100) -> list[RawBatch]:
        """Newest first."""
        ...


def missing_batch(batch_id: str) -> NotFoundError:
    """What ``get_batch`` raises when no batch has ``batch_id``."""
    return NotFoundError(
        f"no raw batch with id {batch_id!r}; list batches with `gristmill ls batches`"
    )


class BatchCatalog(BatchReader, Protocol):
    """The raw batches' manifest, kept in the metadata store."""

    def add_batch(self, batch: RawBatch) -> RawBatch:
        """Record ``batch``; if ``(source, content_digest)`` exists, return that one instead."""
        ...

    def find_batch_by_digest(self, source: str, content_digest: str) -> RawBatch | None: ...

    def latest_batch(self, source: str) -> RawBatch | None: ...


@dataclass(frozen=True)
class WrittenBatch:
    """What ``RawStore.write_batch`` did: the batch, and whether it is new."""

    batch: RawBatch
    created: bool


class RawStore(Protocol):
    """Writes and reads immutable raw batches (Parquet through fsspec)."""

    def write_batch(
        self,
        source: str,
        parts: Iterable[pa.Table],
        *,
        content_digest: str,
        origin: str = "",
        run_id: str | None = None,
        quarantine: pa.Table | None = None,
    ) -> WrittenBatch:
        """Write ``parts`` (in parallel) as one new batch, atomically and idempotently."""
        ...

    def get(self, batch_id: str) -> RawBatch: ...

    def read(self, batch_id: str, *, columns: list[str] | None = None) -> pa.Table: ...

    def list(self, *, source: str | None = None, limit: int = 100) -> list[RawBatch]: ...
