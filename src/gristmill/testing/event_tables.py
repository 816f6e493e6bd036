"""Test data builders for joins: departures (an event table) and hourly weather per station.

Generated, seeded, nothing downloaded. Timestamps are naive and mean UTC, as everywhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

START = datetime(2019, 3, 1)
SITES = ("ATL", "BOS", "DEN", "SEA")


def departures(rows: int = 2_000, *, seed: int = 7, days: int = 10) -> pd.DataFrame:
    """``flight`` (0…), ``origin`` (a site), ``dep_time`` (a random minute of ``days`` days
    from ``START``), ``dep_hour`` (its hour) and ``delay`` (minutes), in no time order."""
    rng = np.random.default_rng(seed)
    minutes = rng.integers(0, days * 24 * 60, rows)
    times = [START + timedelta(minutes=int(m)) for m in minutes]
    return pd.DataFrame(
        {
            "flight": np.arange(rows),
            "origin": rng.choice(list(SITES), rows),
            "dep_time": pd.to_datetime(times),
            "dep_hour": pd.to_datetime([t.replace(minute=0) for t in times]),
            "delay": rng.normal(10, 20, rows).round(1),
        }
    )


def hourly_weather(*, seed: int = 3, days: int = 10, kept: float = 0.7) -> pd.DataFrame:
    """``station``, ``hour``, ``temp``, ``wind`` and ``delay`` (-1, a name the departures
    use too) for each station's hours, of which only about ``kept`` are there (gaps)."""
    rng = np.random.default_rng(seed)
    hours = [START + timedelta(hours=h) for h in range(days * 24)]
    rows = [(s, h) for s in SITES for h in hours if rng.random() < kept]
    frame = pd.DataFrame(rows, columns=["station", "hour"])
    frame["temp"] = rng.normal(12, 6, len(frame)).round(2)
    frame["wind"] = rng.gamma(2, 4, len(frame)).round(2)
    frame["delay"] = -1.0
    return frame
