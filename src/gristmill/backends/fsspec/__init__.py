"""Adapters on fsspec filesystems (local disk, memory, object storage): the artifact store."""

from gristmill.backends.fsspec.artifacts import FsspecArtifactStore

__all__ = ["FsspecArtifactStore"]
