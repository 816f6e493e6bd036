"""fsspec filesystems for the Parquet adapters, and the pyarrow filesystem over each one."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import fsspec
import pyarrow.fs as pafs
from fsspec.implementations.local import LocalFileSystem


def open_filesystem(root: str) -> tuple[Any, str, pafs.FileSystem]:
    """``(fsspec filesystem, root path in it, pyarrow filesystem)`` for a root URL or path.

    Local paths use pyarrow's native filesystem (fastest); anything else is wrapped, so
    object storage works with the same code.
    """
    fs, path = fsspec.core.url_to_fs(root)
    arrow = (
        pafs.LocalFileSystem()
        if isinstance(fs, LocalFileSystem)
        else pafs.PyFileSystem(pafs.FSSpecHandler(fs))
    )
    return fs, path.rstrip("/") or "/", arrow


def modified_age(info: dict[str, Any]) -> float | None:
    """Seconds since an ``fs.info`` entry was last modified, where the filesystem says."""
    for key in ("mtime", "created", "LastModified", "last_modified", "updated"):
        value = info.get(key)
        if isinstance(value, int | float):
            return time.time() - float(value)
        if isinstance(value, datetime):
            return time.time() - value.timestamp()
    return None
