"""Identifiers: sortable ULIDs for new objects, content digests for data and definitions."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from ulid import ULID


def new_id() -> str:
    """A new ULID string: 26 characters, lexicographically sortable by creation time."""
    return str(ULID())


def derived_id(at: datetime, *parts: str) -> str:
    """A ULID whose time is ``at`` and whose random part is a digest of ``parts``: the same
    id wherever it is derived, for work that several processes may start at once (a tick
    of a schedule)."""
    millis = int(at.timestamp() * 1000)
    tail = hashlib.sha256("\x1f".join(parts).encode()).digest()[:10]
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + tail))


def digest_bytes(data: bytes) -> str:
    """The content digest of bytes, as ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_json(value: Any) -> str:
    """A stable digest of a JSON-able value (keys sorted), for ids derived from definitions."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return digest_bytes(text.encode())
