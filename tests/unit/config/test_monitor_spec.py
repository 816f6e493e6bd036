"""``monitor.quality_window``: a duration, whole seconds, one hour by default."""

from __future__ import annotations

from typing import Any

import pytest

from gristmill.config.monitoring import DEFAULT_QUALITY_WINDOW
from gristmill.config.spec import parse_spec
from gristmill.errors import SpecError

SOURCES = {"s": {"format": "csv", "path": "s.csv"}}


def _spec(monitor: dict[str, Any]) -> Any:
    return parse_spec({"name": "p", "sources": SOURCES, "monitor": monitor})


@pytest.mark.parametrize(("given", "seconds"), [("1d", 86400), ("15m", 900), (60, 60)])
def test_a_quality_window_is_a_duration(given: Any, seconds: float) -> None:
    monitor = _spec({"quality_window": given}).monitor
    assert monitor is not None and monitor.quality_window == seconds


def test_the_default_window_is_an_hour() -> None:
    monitor = _spec({}).monitor
    assert monitor is not None and monitor.quality_window == DEFAULT_QUALITY_WINDOW == 3600


@pytest.mark.parametrize("given", ["soon", "1.5s", 0, "-1h"])
def test_a_bad_window_names_the_key(given: Any) -> None:
    with pytest.raises(SpecError, match=r"monitor\.quality_window"):
        _spec({"quality_window": given})
