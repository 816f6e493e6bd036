"""The leaderboard: candidates ordered by one metric, the best one marked.

Candidates whose metric is missing or not a finite number (a failed candidate, a metric
that could not be computed) come last, unranked, in name order. Equal values share a rank
(1, 1, 3); among them the first by name is marked best, so the choice is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Standing:
    """One candidate's place: ``rank`` is ``None`` when it has no value to rank by."""

    candidate: str
    value: float | None
    rank: int | None
    best: bool = False


def leaderboard(
    rows: Mapping[str, Mapping[str, Any]], metric: str, higher_is_better: bool
) -> list[Standing]:
    """``rows`` (candidate name to its metrics) ordered best first by ``metric``."""
    ranked: list[tuple[str, float]] = []
    unranked: list[str] = []
    for name, metrics in rows.items():
        value = metrics.get(metric)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            ranked.append((name, float(value)))
        else:
            unranked.append(name)
    sign = -1.0 if higher_is_better else 1.0
    ranked.sort(key=lambda item: (sign * item[1], item[0]))
    standings: list[Standing] = []
    for position, (name, value) in enumerate(ranked, start=1):
        tied = standings and standings[-1].value == value
        rank = standings[-1].rank if tied else position
        standings.append(Standing(name, value, rank, best=position == 1))
    standings.extend(Standing(name, None, None) for name in sorted(unranked))
    return standings
