"""The leaderboard orders candidates by one metric, in its direction, failures last."""

from __future__ import annotations

import math

from gristmill.evaluation import Standing, leaderboard


def test_lower_is_better_with_ties_and_failures() -> None:
    rows = {
        "forest": {"rmse": 3.0},
        "linear": {"rmse": 2.5},
        "tree": {"rmse": 3.0},
        "broken": {},
        "nan": {"rmse": math.nan},
        "boosting": {"rmse": 4.0, "r2": 0.2},
    }
    board = leaderboard(rows, "rmse", higher_is_better=False)
    assert board == [
        Standing("linear", 2.5, 1, best=True),
        Standing("forest", 3.0, 2),
        Standing("tree", 3.0, 2),
        Standing("boosting", 4.0, 4),
        Standing("broken", None, None),
        Standing("nan", None, None),
    ]


def test_higher_is_better_and_a_tie_for_best_picks_by_name() -> None:
    rows = {"b": {"f1": 0.9}, "a": {"f1": 0.9}, "c": {"f1": 0.5}}
    board = leaderboard(rows, "f1", higher_is_better=True)
    assert [(s.candidate, s.rank, s.best) for s in board] == [
        ("a", 1, True), ("b", 1, False), ("c", 3, False),
    ]  # fmt: skip
    assert leaderboard({}, "f1", True) == []
