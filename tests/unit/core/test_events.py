"""The event envelope: exact byte round trip, causation, version refusal."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gristmill.core.events import ENVELOPE_VERSION, Event
from gristmill.errors import EnvelopeVersionError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(payload=st.dictionaries(st.text(), json_values, max_size=5), key=st.text())
def test_bytes_round_trip_exactly(payload: dict[str, object], key: str) -> None:
    event = Event(type="thing.happened", key=key, payload=payload)
    assert Event.from_bytes(event.to_bytes()) == event


def test_caused_keeps_the_correlation_and_points_at_its_cause() -> None:
    root = Event(type="source.available", key="s", correlation_id="run-1")
    child = root.caused("raw.ingested", {"rows": 3})
    assert (child.correlation_id, child.causation_id, child.key) == ("run-1", root.id, "s")
    assert child.id != root.id and child.occurred_at.tzinfo is not None
    assert root.occurred_at <= datetime.now(UTC)


def test_a_newer_envelope_is_refused_with_an_upgrade_hint() -> None:
    body = (
        Event(type="x")
        .model_dump_json()
        .replace(f'"schema_version":{ENVELOPE_VERSION}', f'"schema_version":{ENVELOPE_VERSION + 1}')
    )
    with pytest.raises(EnvelopeVersionError, match="upgrade gristmill") as info:
        Event.from_bytes(body)
    assert (info.value.seen, info.value.known) == (ENVELOPE_VERSION + 1, ENVELOPE_VERSION)
