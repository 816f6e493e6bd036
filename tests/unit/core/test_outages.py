"""OutageLog: an outage's start said once, reminders ever further apart, its end once."""

from __future__ import annotations

from gristmill.core.outages import OutageLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_start_once_then_reminders_doubling_up_to_the_cap_then_the_end_once() -> None:
    clock = Clock()
    outages = OutageLog(first=10.0, cap=60.0, clock=clock)
    said: list[tuple[float, str]] = []
    for second in range(300):  # a failure every second for five minutes
        clock.now = 1000.0 + second
        if (what := outages.failed("loop")) is not None:
            said.append((float(second), what))
    assert said == [
        (0.0, "started"),
        (10.0, "still"),
        (30.0, "still"),
        (70.0, "still"),
        (130.0, "still"),
        (190.0, "still"),
        (250.0, "still"),
    ]
    clock.now = 1400.0
    assert outages.lasted == 400.0
    assert outages.recovered("loop") == 400.0
    assert outages.recovered("loop") is None and not outages.on
    assert outages.failed("loop") == "started"  # a new outage starts the count again
    clock.now = 1405.0
    assert outages.failed("loop") is None


def test_shared_by_several_parties_it_ends_when_none_fails() -> None:
    outages = OutageLog(clock=Clock())
    assert outages.failed("a") == "started"
    assert outages.failed("b") is None  # the same outage: said once for both
    assert outages.recovered("idle") is None  # a party that never failed ends nothing
    assert outages.recovered("a") is None  # b still fails
    assert outages.on
    assert outages.recovered("b") == 0.0
    assert not outages.on
