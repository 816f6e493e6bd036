"""The prediction cache: answers to one-row requests, by servable digest and row values.

A least-recently-used map of at most ``size`` answers, each kept ``ttl`` seconds. The key
is the servable's digest (a new version, or a recompiled one, never meets the answers of
another) and the row's value in each input column, in the manifest's order. Rows whose
values cannot be hashed (a nested list) are not cached.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any

from gristmill.servables.port import Predictions, ServableManifest


class PredictionCache:
    """LRU with a time to live (see the module docstring); ``size`` 0 keeps nothing."""

    def __init__(self, size: int, ttl: float) -> None:
        self.size = size
        self.ttl = ttl
        self._answers: OrderedDict[Hashable, tuple[float, Predictions]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.size > 0

    def key(self, manifest: ServableManifest, columns: Mapping[str, Any]) -> Hashable | None:
        """The key of the one row ``columns`` holds, or ``None`` when it has no key."""
        try:
            row = tuple(_first(columns[c.name]) for c in manifest.inputs)
            hash(row)
        except (KeyError, TypeError, IndexError):
            return None
        return (manifest.digest, row)

    def get(self, key: Hashable) -> Predictions | None:
        found = self._answers.get(key)
        if found is None:
            return None
        expires, answer = found
        if expires < time.monotonic():
            del self._answers[key]
            return None
        self._answers.move_to_end(key)
        return answer

    def put(self, key: Hashable, answer: Predictions) -> None:
        self._answers[key] = (time.monotonic() + self.ttl, answer)
        self._answers.move_to_end(key)
        while len(self._answers) > self.size:
            self._answers.popitem(last=False)

    def __len__(self) -> int:
        return len(self._answers)


def _first(values: Any) -> Any:
    value = values[0]
    return value.item() if hasattr(value, "item") else value
