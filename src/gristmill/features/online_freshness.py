"""Whether an online view's TTL leaves its vectors fresh: the warning a run's summary shows.

Historical data with a TTL counted from event times (``online.ttl_from: event``, the
default) is the usual way to an empty online store: every event is older than the TTL, so
nothing is written and every lookup reads ``missing``.
"""

from __future__ import annotations

from datetime import datetime

from gristmill.config.features import FeatureSetSpec
from gristmill.features.materialize import Materialized

NEARLY_EMPTY = 0.01
"""A TTL that leaves fewer than this share of entities fresh is warned about."""


def ttl_warning(
    spec: FeatureSetSpec, counted: Materialized | None, arrival: datetime
) -> str | None:
    """What to tell when the TTL leaves the online view (nearly) empty, with the figure."""
    online = spec.online
    if counted is None or online is None or online.ttl is None or not counted.entities:
        return None
    if counted.fresh >= counted.entities * NEARLY_EMPTY:
        return None
    ttl = _duration_text(online.ttl)
    share = f"{counted.fresh:,} of {counted.entities:,} entities are fresh"
    if online.ttl_from == "arrival":
        return (
            f"ttl {ttl} from arrival: {share}; the data arrived {arrival:%Y-%m-%d %H:%M} UTC; "
            "ingest it again or set a longer ttl"
        )
    newest = f"{counted.newest:%Y-%m-%d %H:%M} UTC" if counted.newest else "unknown"
    return (
        f"ttl {ttl} from event times: {share}; the newest event is {newest}; set "
        "online.ttl_from: arrival or a longer ttl"
    )


def _duration_text(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
