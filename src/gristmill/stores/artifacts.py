"""The artifact store port: immutable blobs (fitted pipelines, models, images) by digest.

An artifact is written once under a content digest and verified on every read: bytes that
do not match their digest raise ``ConflictError`` instead of being returned. Nothing read
from an artifact store is trusted unless its digest matches the one recorded with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact is (``uri``), what it is (``kind``, ``media_type``), its digest."""

    uri: str
    digest: str
    kind: str
    media_type: str = "application/octet-stream"
    size: int = 0


class ArtifactStore(Protocol):
    def put(
        self, data: bytes, *, kind: str, media_type: str = "application/octet-stream"
    ) -> ArtifactRef:
        """Store ``data`` atomically; the same bytes again return the same reference."""
        ...

    def get(self, ref: ArtifactRef) -> bytes:
        """The bytes, verified against ``ref.digest``; ``NotFoundError`` if absent."""
        ...

    def find(self, digest: str) -> ArtifactRef | None: ...
