"""The canary judge in the prediction server (its ASGI app, lifespan and all, through httpx):
a canary with a promotion rule is promoted once it answered enough requests, and a canary
that raises is pulled at its first errors — no request fails either way, and each verdict is
one policy revision, one audit entry.

Two real versions of ``birds`` (1: the logistic regression, 2: the forest). The server
records its stats every 50 ms (``serve.stats_flush_seconds``) in the real SQLite metadata
store and judges after each record. A version that raises is a real version wrapped
(``_Raising``), applied as ``refresh`` applies a stored policy.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from gristmill.config.settings import Settings
from gristmill.runtime.wiring import open_stores
from gristmill.server.models import RegistryModels
from gristmill.training.canary import JUDGE

from .test_server import _rows, _tuned
from .test_server_policies import _apply, _Raising, _serving, two_versions  # noqa: F401

pytestmark = pytest.mark.slow
FLUSH = 0.05


def _judged(settings: Settings) -> list[dict[str, Any]]:
    """The policy changes the canary judge stored for birds, newest first."""
    with open_stores(settings) as stores:
        entries = stores.metadata.audit.list_entries(subject="model:birds", limit=1000)
    return [e.details for e in entries if e.actor == JUDGE and e.action == "model.policy_set"]


async def _answer(client: httpx.AsyncClient) -> int:
    answer = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
    assert answer.status_code == 200, answer.text
    version: int = answer.json()["version"]
    return version


async def _until(
    client: httpx.AsyncClient, done: Any, within: float = 60.0
) -> tuple[list[int], dict[str, Any]]:
    """Send requests without pause until ``done(stored policy)``; the versions that answered
    and that policy (as this server applies it)."""
    answered: list[int] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        answered.append(await _answer(client))
        if len(answered) % 10 == 0:
            body = (await client.get("/admin/policies/birds")).json()
            if done(body) and body["applied"] == body["revision"]:
                return answered, body
    raise AssertionError(f"not done within {within}s after {len(answered)} answers")


async def test_a_canary_is_promoted_after_its_requests(two_versions: Settings) -> None:  # noqa: F811
    settings = _tuned(two_versions, stats_flush_seconds=FLUSH)
    before = len(_judged(settings))
    async with _serving(settings) as (client, _models):
        body = {
            "primary": 1,
            "canary": 2,
            "canary_share": 0.5,
            "promote_after_requests": 30,
            "reason": "try the forest",
        }
        put = await client.put("/admin/policies/birds", json=body)
        assert put.status_code == 200, put.text
        started = put.json()
        assert (started["promote_after_requests"], started["canary_revision"]) == (
            30,
            started["revision"],
        )
        answered, promoted = await _until(client, lambda p: p["primary"] == 2)
        assert answered.count(2) >= 30  # the canary answered its 30 before it was promoted
        assert (promoted["canary"], promoted["fallback"]) == (None, [1])
        assert promoted["revision"] == started["revision"] + 1
        assert promoted["changed_by"] == JUDGE
        assert "canary 2 promoted" in promoted["reason"]
        assert {await _answer(client) for _ in range(20)} == {2}
    judged = _judged(settings)
    assert len(judged) == before + 1
    assert judged[0]["revision"] == promoted["revision"]


async def test_a_canary_that_raises_is_pulled(two_versions: Settings) -> None:  # noqa: F811
    settings = _tuned(two_versions, stats_flush_seconds=FLUSH)
    before = len(_judged(settings))
    async with _serving(settings) as (client, models):
        body = {
            "primary": 1,
            "canary": 2,
            "canary_share": 0.5,
            "promote_after_requests": 1000,
            "reason": "try the forest",
        }
        put = await client.put("/admin/policies/birds", json=body)
        assert put.status_code == 200, put.text
        started = put.json()
        await _raising_canary(models)
        answered, pulled = await _until(client, lambda p: p["canary"] is None)
        assert set(answered) == {1}  # the canary failed; its fallback, the primary, answered
        assert (pulled["primary"], pulled["fallback"]) == (1, [])
        assert pulled["revision"] == started["revision"] + 1
        assert "canary 2 pulled" in pulled["reason"]
        assert not re.search(r"(?<!\d)0 errors", pulled["reason"]), pulled["reason"]
        metrics = (await client.get("/metrics")).text
        assert 'gristmill_errors_total{model_name="birds",model_version="2"' in metrics
        assert {await _answer(client) for _ in range(20)} == {1}
    judged = _judged(settings)
    assert len(judged) == before + 1
    assert judged[0]["before"]["canary"] == 2 and judged[0]["policy"]["canary"] is None


async def _raising_canary(models: RegistryModels) -> None:
    """Make the canary of the route this server applies raise on every call."""
    route = models._routes["birds"]
    assert route is not None and route.canary is not None
    await _apply(models, route.policy, canary=_Raising(route.canary))
