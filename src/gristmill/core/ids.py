"""Identifiers: sortable ULIDs for new objects, content digests for data and definitions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ulid import ULID


def new_id() -> str:
    """A new ULID string: 26 characters, lexicographically sortable by creation time."""
    return str(ULID())


def digest_bytes(data: bytes) -> str:
    """The content digest of bytes, as ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_json(value: Any) -> str:
    """A stable digest of a JSON-able value (keys sorted), for ids derived from definitions."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return digest_bytes(text.encode())
