"""Automatic rollback in the prediction server (its ASGI app, lifespan and all, through httpx):
a primary made slow on purpose, under a load of concurrent clients with a latency budget, is
overtaken by its fallback within the budget + EPSILON and rolled back by the rollback judge
once — one policy revision, one audit entry, one ``model.rolled_back``, one alert on the bus
and one POST to the rule's webhook — and no request fails. Beside it, the admin API's
``rollback`` object: checked field by field, kept by a PUT that leaves it out.

Two real versions of ``birds`` (1: the logistic regression, 2: the forest). The server
records its stats every 50 ms (``serve.stats_flush_seconds``) in the real SQLite metadata
store and judges after each record. The slow version is the real version 2 wrapped
(``_Sleeping``), applied as ``refresh`` applies a stored policy.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import uuid4

import httpx
import pytest

from gristmill.config.settings import Settings
from gristmill.core.events import MODEL_ROLLED_BACK, MONITOR_ALERT, Event
from gristmill.runtime.wiring import build_bus, open_stores
from gristmill.server.app import create_app
from gristmill.server.models import RegistryModels
from gristmill.training.rollback import ROLLBACK_JUDGE

from .test_server import _rows, _tuned
from .test_server_policies import _apply, _Sleeping, two_versions  # noqa: F401

pytestmark = pytest.mark.slow
FLUSH = 0.05
BUDGET_MS = 50
EPSILON = 0.25  # seconds an overtaken answer may take beyond its budget on a busy machine
MIN_REQUESTS = 40
CLIENTS = 16


class _Hook:
    """A real HTTP endpoint on localhost that keeps the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    @contextmanager
    def running(self) -> Iterator[_Hook]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def _with_own_bus(settings: Settings) -> Settings:
    # a bus of its own: the events this test announces are read back from it alone
    bus = settings.bus.model_copy(update={"url": str(settings.home / f"bus-{uuid4().hex}.db")})
    return settings.model_copy(update={"bus": bus})


@asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, RegistryModels]]:
    models = RegistryModels(settings.serve)
    app = create_app(settings, models)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            yield client, models


async def _announced(settings: Settings, event_type: str) -> list[Event]:
    bus = build_bus(settings)
    await bus.open()
    try:
        found = await bus.consume(
            f"reader-{uuid4().hex[:8]}", event_type, "t", max_events=100, wait=0.5
        )
        return [d.event for d in found]
    finally:
        await bus.close()


def _judged(settings: Settings) -> list[dict[str, Any]]:
    """The policy changes the rollback judge stored for birds, newest first."""
    with open_stores(settings) as stores:
        entries = stores.metadata.audit.list_entries(subject="model:birds", limit=1000)
    return [
        e.details for e in entries if e.actor == ROLLBACK_JUDGE and e.action == "model.policy_set"
    ]


async def test_a_slow_primary_under_load_is_rolled_back_once_and_no_request_fails(
    two_versions: Settings,  # noqa: F811
) -> None:
    settings = _with_own_bus(_tuned(two_versions, stats_flush_seconds=FLUSH))
    before = len(_judged(settings))
    with _Hook().running() as hook:
        async with _serving(settings) as (client, models):
            rule = {"max_miss_rate": 0.5, "min_requests": MIN_REQUESTS, "webhook": hook.url}
            put = await client.put(
                "/admin/policies/birds",
                json={"primary": 2, "fallback": [1], "rollback": rule, "reason": "try 2"},
            )
            assert put.status_code == 200, put.text
            started = put.json()
            assert started["rollback"]["max_miss_rate"] == 0.5
            route = models._routes["birds"]
            assert route is not None and route.primary is not None
            await _apply(models, route.policy, primary=_Sleeping(route.primary, 0.5))

            budget = {"x-gristmill-latency-budget-ms": str(BUDGET_MS)}
            timings: list[float] = []
            answers: list[dict[str, Any]] = []
            failures: list[str] = []

            async def send(index: int) -> None:
                began = time.perf_counter()
                answer = await client.post(
                    "/v1/models/birds/predict",
                    json={"rows": _rows(1, start=index)},
                    headers=budget,
                )
                timings.append(time.perf_counter() - began)
                if answer.status_code != 200 or answer.json()["version"] != 1:
                    failures.append(answer.text)
                else:
                    answers.append(answer.json())

            def switched() -> bool:
                applied = models.policies().get("birds")
                return applied is not None and applied.revision > started["revision"]

            sent, waves_after, deadline = 0, 0, time.monotonic() + 60
            while waves_after < 10:  # then 10 waves more: no second rollback comes
                assert time.monotonic() < deadline, f"no rollback after {sent} requests"
                await asyncio.gather(*(send(sent + i) for i in range(CLIENTS)))
                sent += CLIENTS
                waves_after += switched()
            # the judge runs after each flush: give it a few more after the last requests
            await asyncio.sleep(10 * FLUSH)
            stored = (await client.get("/admin/policies/birds")).json()

    assert failures == []
    assert len(answers) == sent
    assert max(timings) <= BUDGET_MS / 1000 + EPSILON, sorted(timings)[-5:]
    overtaken = [a for a in answers if a["fallback"]]
    assert len(overtaken) >= MIN_REQUESTS  # answered by the fallback until the rollback
    assert not answers[-1]["fallback"]  # then version 1 answers as the primary
    # one rollback: one revision, one audit entry, one event, one alert, one POST
    assert (stored["primary"], stored["fallback"]) == (1, [])
    assert stored["revision"] == started["revision"] + 1
    assert stored["changed_by"] == ROLLBACK_JUDGE
    assert stored["rollback"] == started["rollback"]  # the rule stays with the policy
    assert stored["reason"].startswith(
        "primary 2 rolled back to version 1 by the rollback judge: miss rate 100% > 50% over "
    )
    judged = _judged(settings)
    assert len(judged) == before + 1
    assert judged[0]["revision"] == stored["revision"]
    [rolled] = await _announced(settings, MODEL_ROLLED_BACK)
    assert rolled.payload["source"] == ROLLBACK_JUDGE
    assert (rolled.payload["verdict"], rolled.payload["trigger"]) == ("rollback", "latency")
    stats = rolled.payload["stats"]
    assert stats["requests"] >= MIN_REQUESTS and stats["budget_misses"] == stats["requests"]
    [alert] = await _announced(settings, MONITOR_ALERT)
    assert (alert.payload["kind"], alert.payload["version"]) == ("rollback", 2)
    deadline = time.monotonic() + 10
    while not hook.bodies and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert hook.bodies == [alert.payload]


async def test_the_rollback_rule_through_the_admin_api(
    two_versions: Settings,  # noqa: F811
) -> None:
    settings = _with_own_bus(two_versions)
    async with _serving(settings) as (client, _models):
        for wrong, field in (
            ({"max_miss_rate": 2}, "rollback.max_miss_rate"),
            ({"max_miss_rate": 0.1, "window_minutes": 0}, "rollback.window_minutes"),
            ({"max_miss_rate": 0.1, "webhook": "ftp://x"}, "rollback.webhook"),
            ({"max_miss_rate": 0.1, "max_latency": 3}, "rollback.max_latency"),
            ({"min_requests": 10}, "rollback.max_miss_rate"),  # no trigger
            ("fast", "rollback"),
        ):
            answer = await client.put(
                "/admin/policies/birds", json={"primary": 1, "rollback": wrong}
            )
            assert answer.status_code == 400, answer.text
            assert answer.json()["field"] == field, answer.json()
            assert "rollback" in answer.json()["error"]
        rule = {"max_error_rate": 0.02, "min_requests": 500, "cooldown_minutes": 0}
        put = await client.put(
            "/admin/policies/birds", json={"primary": 2, "fallback": [1], "rollback": rule}
        )
        assert put.status_code == 200, put.text
        ruled = put.json()["rollback"]
        assert (ruled["max_error_rate"], ruled["min_requests"], ruled["window_minutes"]) == (
            0.02,
            500,
            5.0,
        )
        # a PUT that says nothing of the rule keeps it; null removes it
        kept = await client.put("/admin/policies/birds", json={"primary": 1, "fallback": [2]})
        assert kept.json()["rollback"] == ruled
        removed = await client.put("/admin/policies/birds", json={"primary": 1, "rollback": None})
        assert removed.status_code == 200 and removed.json()["rollback"] is None
        listed = (await client.get("/admin/policies")).json()["policies"]
        assert [p["rollback"] for p in listed if p["model"] == "birds"] == [None]
