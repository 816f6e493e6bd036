"""The traffic policy's pick: sticky by key, the share kept, the fallback chain in order."""

from __future__ import annotations

from typing import Any

import pytest

from gristmill.server.http import NotReadyError
from gristmill.server.routing import Route, key_share
from gristmill.stores.models import TrafficPolicy


class _Version:
    """Stands for a loaded servable: ``choose`` only hands it on."""

    def __init__(self, number: int) -> None:
        self.number = number


def _route(policy: TrafficPolicy, missing: tuple[int, ...] = ()) -> Route:
    def held(n: int | None) -> Any:
        return None if n is None or n in missing else _Version(n)

    return Route(
        policy,
        held(policy.primary),
        held(policy.canary),
        tuple(held(n) for n in policy.shadow),
        tuple(held(n) for n in policy.fallback),
    )


def test_a_key_always_picks_the_same_version_and_keys_keep_the_share() -> None:
    route = _route(TrafficPolicy("churn", primary=1, canary=2, canary_share=0.1))
    picks = {}
    for i in range(5_000):
        chosen, _, _ = route.choose(f"k{i}")
        picks[f"k{i}"] = chosen.number
        assert route.choose(f"k{i}")[0].number == chosen.number
    share = list(picks.values()).count(2) / len(picks)
    assert abs(share - 0.1) < 0.02, share
    # growing the canary keeps the keys it had
    wider = _route(TrafficPolicy("churn", primary=1, canary=2, canary_share=0.3))
    assert all(wider.choose(k)[0].number == 2 for k, v in picks.items() if v == 2)
    assert key_share("churn", "k1") != key_share("fraud", "k1")  # per model


def test_without_a_key_the_draw_is_random_at_the_share() -> None:
    route = _route(TrafficPolicy("churn", primary=1, canary=2, canary_share=0.25))
    picks = [route.choose(None)[0].number for _ in range(10_000)]
    assert abs(picks.count(2) / len(picks) - 0.25) < 0.02


def test_the_chain_falls_back_in_order_and_says_what_was_missing() -> None:
    policy = TrafficPolicy("churn", primary=3, canary=4, canary_share=0.5, fallback=(2, 1))
    route = _route(policy)
    to_canary = next(f"k{i}" for i in range(100) if key_share("churn", f"k{i}") < 0.5)
    chosen, rest, missing = route.choose(to_canary)
    assert (chosen.number, [r.number for r in rest], missing) == (4, [3, 2, 1], None)

    broken = _route(policy, missing=(3,))
    to_primary = next(f"k{i}" for i in range(100) if key_share("churn", f"k{i}") >= 0.5)
    chosen, rest, missing = broken.choose(to_primary)
    assert (chosen.number, [r.number for r in rest], missing) == (2, [1], 3)

    with pytest.raises(NotReadyError, match="could be loaded"):
        _route(TrafficPolicy("churn", primary=3, fallback=(2,)), missing=(2, 3)).choose(None)
