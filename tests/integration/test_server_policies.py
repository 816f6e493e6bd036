"""Traffic policies in the prediction server (its ASGI app, lifespan and all, through httpx):
a canary's share and sticky keys, the fallback chain, shadows that are slow or raise.

Two real versions of ``birds`` (1: the logistic regression, 2: the forest). Policies are
set through ``PUT /admin/policies/birds`` (stored in the registry, applied by the server),
except where a version must fail or sleep: such versions are real versions wrapped
(``_Raising``, ``_Sleeping``), a model cannot be made to fail on demand otherwise, and
their policy is applied the way ``refresh`` applies a stored one (versions loaded, then
the route switched in one assignment).
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from gristmill.config.settings import Settings, load_settings
from gristmill.runtime.wiring import open_services, open_stores
from gristmill.servables import compile_version
from gristmill.servables.port import Predictions, Servable, ServableManifest
from gristmill.servables.storage import recorded
from gristmill.server.app import create_app
from gristmill.server.models import RegistryModels
from gristmill.stores.models import TrafficPolicy
from gristmill.training.gate import promote

from .test_server import _rows, _train

pytestmark = pytest.mark.slow
REQUESTS = 2_000
TOLERANCE = 0.03  # points of share, over REQUESTS requests
SHADOW_BOUND = 0.005  # seconds a shadow may add to the median answer's latency


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("policies")
    settings = load_settings(
        overrides={
            "home": str(folder / "home"),
            "executor": {"backend": "inline"},
            "serve": {"poll_seconds": 3600, "log_flush_seconds": 0.05},
        }
    )

    async def train() -> None:
        made = await _train(settings, folder)  # birds/1: logreg
        async with open_services(settings) as services:
            promote(services.metadata, made["forest"].candidate_id, "birds")  # birds/2

    asyncio.run(train())
    return settings


class _Raising:
    """A real version that raises on every call (a broken runtime, a lost GPU)."""

    def __init__(self, inner: Servable) -> None:
        self.inner = inner

    @property
    def manifest(self) -> ServableManifest:
        return self.inner.manifest

    def predict(self, columns: Mapping[str, np.ndarray]) -> Predictions:
        raise RuntimeError("the model's runtime is gone")

    def predict_features(self, columns: Mapping[str, np.ndarray]) -> Predictions:
        raise RuntimeError("the model's runtime is gone")


class _Sleeping(_Raising):
    """A real version that takes ``seconds`` per call (sleeping releases the GIL, as a
    model waiting on I/O or a remote accelerator does)."""

    def __init__(self, inner: Servable, seconds: float) -> None:
        super().__init__(inner)
        self.seconds = seconds

    def predict(self, columns: Mapping[str, np.ndarray]) -> Predictions:
        time.sleep(self.seconds)
        return self.inner.predict(columns)


@asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, RegistryModels]]:
    # a bus of its own: a server reads the events retained before it started, and the
    # policies other tests announced must not replace the routes these tests apply
    bus = settings.bus.model_copy(update={"url": str(settings.home / f"bus-{uuid4().hex}.db")})
    settings = settings.model_copy(update={"bus": bus})
    models = RegistryModels(settings.serve)  # the app gives it its prediction log
    app = create_app(settings, models)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            yield client, models


async def _apply(models: RegistryModels, policy: TrafficPolicy, **wrapped: Any) -> None:
    """Apply ``policy`` as ``refresh`` does (versions loaded first, then one assignment);
    ``wrapped`` replaces route fields (primary, shadows, …) with wrapped versions."""
    route = await models._built(policy)
    models._routes[policy.model] = dataclasses.replace(route, **wrapped)


async def _version(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> int:
    answer = await client.post(
        "/v1/models/birds/predict", json={"rows": _rows(1)}, headers=headers or {}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-gristmill-model-version"] == str(answer.json()["version"])
    version: int = answer.json()["version"]
    return version


async def test_a_canary_takes_its_share_and_keys_stick(two_versions: Settings) -> None:
    async with _serving(two_versions) as (client, _models):
        assert await _version(client) == 2  # no policy: @champion
        body = {"primary": 1, "canary": 2, "canary_share": 0.2, "reason": "try the forest"}
        put = await client.put("/admin/policies/birds", json=body)
        assert put.status_code == 200, put.text
        assert put.json()["applied"] == put.json()["revision"]

        random_picks = [await _version(client) for _ in range(REQUESTS)]
        share = random_picks.count(2) / REQUESTS
        assert abs(share - 0.2) <= TOLERANCE, share

        keys = [f"customer-{i}" for i in range(REQUESTS)]
        first = {k: await _version(client, {"x-gristmill-key": k}) for k in keys}
        keyed_share = list(first.values()).count(2) / REQUESTS
        assert abs(keyed_share - 0.2) <= TOLERANCE, keyed_share
        for key in keys[:300]:  # the same key, the same version, every time
            assert await _version(client, {"x-gristmill-key": key}) == first[key]

        # entities are the key when no header is given: one entity, one version
        seen = set()
        for _ in range(20):
            answer = await client.post("/v1/models/birds/predict", json={"entities": ["p0007"]})
            seen.add(answer.json()["version"])
        assert len(seen) == 1

        # a name with an alias or a version bypasses the policy
        for ref, expected in (("birds/versions/2", 2), ("birds@champion", 1)):
            pinned = await client.post(f"/v1/models/{ref}/predict", json={"rows": _rows(1)})
            assert pinned.json()["version"] == expected  # set_policy moved @champion to 1

        # the other protocols follow the policy and name the version that answered
        oip_versions = set()
        for key in keys[:200]:
            meta = (await client.get("/v2/models/birds")).json()
            tensors = [
                {"name": i["name"], "shape": [1], "datatype": i["datatype"]}
                | {"data": [_rows(1)[0].get(i["name"])]}
                for i in meta["inputs"]
            ]
            answer = await client.post(
                "/v2/models/birds/infer",
                json={"inputs": tensors},
                headers={"x-gristmill-key": key},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["model_version"] == str(first[key])
            oip_versions.add(first[key])
            mlflow = await client.post(
                "/invocations?model=birds",
                json={"dataframe_records": _rows(1)},
                headers={"x-gristmill-key": key},
            )
            assert mlflow.status_code == 200, mlflow.text
            assert mlflow.headers["x-gristmill-model-version"] == str(first[key])
        assert oip_versions == {1, 2}


async def test_the_fallback_answers_when_the_primary_raises(two_versions: Settings) -> None:
    async with _serving(two_versions) as (client, models):
        await _apply(models, TrafficPolicy("birds", primary=2, fallback=(1,)))
        route = models._routes["birds"]
        assert route is not None and route.primary is not None
        await _apply(
            models,
            TrafficPolicy("birds", primary=2, fallback=(1,)),
            primary=_Raising(route.primary),
        )
        for _ in range(5):
            assert await _version(client) == 1
        # the client's own error is not passed down the chain
        bad = await client.post("/v1/models/birds/predict", json={"rows": [{"island": "x"}]})
        assert bad.status_code == 400
        metrics = (await client.get("/metrics")).text
        line = next(
            m
            for m in metrics.splitlines()
            if m.startswith('gristmill_fallbacks_total{model_name="birds",model_version="2"')
        )
        assert line.endswith(" 5"), line

        # a primary that cannot be loaded: the fallback answers, counted too
        await _apply(models, TrafficPolicy("birds", primary=2, fallback=(1,)), primary=None)
        assert await _version(client) == 1
        # nothing left to answer: 503, not a 500
        await _apply(
            models, TrafficPolicy("birds", primary=2, fallback=(1,)), primary=None, fallbacks=()
        )
        answer = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
        assert answer.status_code == 503, answer.text


async def _latencies(client: httpx.AsyncClient, count: int) -> tuple[list[float], list[Any]]:
    seconds, answers = [], []
    for index in range(count):
        started = time.perf_counter()
        answer = await client.post(
            "/v1/models/birds/predict", json={"rows": _rows(1, start=index % 300)}
        )
        seconds.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        answers.append((body["version"], body["predictions"], body["probabilities"]))
    return seconds, answers


async def _added_latency(
    client: httpx.AsyncClient,
    models: RegistryModels,
    policy: TrafficPolicy,
    shadow: Any,
    expected: list[Any],
    count: int,
) -> float:
    """What ``shadow`` adds to the median latency: the smallest of up to three tries, each
    comparing with the median measured alone just before it (the machine is shared: one
    window may fall in a busy moment; a shadow that slows answers slows every try)."""
    added = float("inf")
    for _ in range(3):
        await _apply(models, TrafficPolicy("birds", primary=1))
        alone, answers = await _latencies(client, count)
        assert answers == expected
        await _apply(models, policy, shadows=(shadow,))
        shadowed, answers = await _latencies(client, count)
        assert answers == expected  # never the shadow's answer
        added = min(added, statistics.median(shadowed) - statistics.median(alone))
        if added <= SHADOW_BOUND:
            break
    return added


async def test_a_slow_or_raising_shadow_changes_neither_answer_nor_latency(
    two_versions: Settings,
) -> None:
    count = 200
    async with _serving(two_versions) as (client, models):
        policy = TrafficPolicy("birds", primary=1, shadow=(2,))
        await _apply(models, TrafficPolicy("birds", primary=1))
        await _latencies(client, 20)  # warm
        _, expected = await _latencies(client, count)

        route = await models._built(policy)
        slow = _Sleeping(route.shadows[0], 0.2)
        assert await _added_latency(client, models, policy, slow, expected, count) <= SHADOW_BOUND
        raising = _Raising(route.shadows[0])
        assert (
            await _added_latency(client, models, policy, raising, expected, count) <= SHADOW_BOUND
        )
        deadline = time.monotonic() + 10
        while models.shadows.pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        metrics = (await client.get("/metrics")).text
        assert 'gristmill_shadow_errors_total{model_name="birds",model_version="2"' in metrics
        assert "gristmill_shadow_requests_total" in metrics
        await asyncio.sleep(0.3)  # a log write
    written = Path(two_versions.predictions_url()) / "birds" / "2"
    shadow_rows = [
        r for f in written.glob("*.parquet") for r in pq.read_table(f).to_pylist() if r["shadow"]
    ]
    assert shadow_rows, "the slow shadow's answers were not logged"


async def test_admin_policy_changes_under_load_fail_no_request(two_versions: Settings) -> None:
    """A canary starts, is promoted and rolled back through PUT /admin/policies while
    clients send without pause: no request fails, and each stage's versions answer."""
    async with _serving(two_versions) as (client, _models):
        seen: list[int] = []
        failures: list[str] = []
        stop = asyncio.Event()

        async def load() -> None:
            while not stop.is_set():
                answer = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
                if answer.status_code != 200:
                    failures.append(answer.text)
                else:
                    seen.append(answer.json()["version"])

        senders = [asyncio.create_task(load()) for _ in range(4)]

        async def put(body: dict[str, Any]) -> dict[str, Any]:
            answer = await client.put("/admin/policies/birds", json=body)
            assert answer.status_code == 200, answer.text
            stored: dict[str, Any] = answer.json()
            assert stored["applied"] == stored["revision"]
            await asyncio.sleep(0.3)  # traffic under this policy
            return stored

        async def answered(count: int) -> list[int]:
            """The versions of the next ``count`` answers (waited for, however busy the
            machine is)."""
            start = len(seen)
            for _ in range(300):
                if len(seen) >= start + count:
                    break
                await asyncio.sleep(0.1)
            return seen[start : start + count]

        try:
            await answered(8)
            canary = await put({"primary": 1, "canary": 2, "canary_share": 0.3, "reason": "try"})
            assert {1, 2} <= set(await answered(60))  # no 2 in 60 at 30%: p < 1e-9
            promoted = await put({"primary": 2, "fallback": [1], "reason": "good"})
            assert promoted["revision"] == canary["revision"] + 1
            # requests in flight when the policy changed may finish on 1
            assert set((await answered(38))[8:]) == {2}
            await put({"primary": 1, "reason": "roll back"})
            assert set((await answered(38))[8:]) == {1}
        finally:
            stop.set()
            await asyncio.gather(*senders)
        assert not failures, failures[:3]

        listed = (await client.get("/admin/policies")).json()
        assert [p["model"] for p in listed["policies"]] == ["birds"]
        assert listed["applied"]["birds"] == listed["policies"][0]["revision"]
        shown = (await client.get("/admin/policies/birds")).json()
        assert shown["primary"] == 1 and shown["reason"] == "roll back"
        for body, field in (
            ({"primary": 9}, "primary"),
            ({"primary": 1, "canary": 2, "canary_share": 1.5}, "canary_share"),
            ({"primary": 1, "canary_share": 0.2}, "canary"),
            ({"primary": "one"}, "primary"),
            ({"primary": 1, "shadows": [2]}, "shadows"),
            ({"primary": 1, "promote_after_requests": 10}, "promote_after_requests"),
            (
                {"primary": 1, "canary": 2, "canary_share": 0.1, "promote_after_minutes": 0},
                "promote_after_minutes",
            ),
            (
                {"primary": 1, "canary": 2, "canary_share": 0.1, "promote_after_requests": 1.5},
                "promote_after_requests",
            ),
        ):
            answer = await client.put("/admin/policies/birds", json=body)
            assert answer.status_code == 400, answer.text
            assert answer.json()["field"] == field
        assert (await client.get("/admin/policies/fish")).status_code == 404


async def test_a_primary_that_cannot_load_is_passed_over_for_its_fallback(
    two_versions: Settings,
) -> None:
    """Version 2's servable fails its digest (tampered): the policy is applied without it,
    and its requests are answered by the fallback, counted."""
    settings = two_versions
    with open_stores(settings) as stores:
        version = stores.metadata.registry.get_version("birds", 2)
        digest = recorded(stores, version)
        assert digest is not None
        manifest = Path(settings.artifacts_url()) / "servable" / digest.removeprefix("sha256:")
        manifest.write_bytes(manifest.read_bytes().replace(b'"onnx"', b'"native"', 1))
    try:
        async with _serving(settings) as (client, _models):
            body = {"primary": 2, "fallback": [1], "reason": "version 2 is broken"}
            put = await client.put("/admin/policies/birds", json=body)
            assert put.status_code == 200, put.text
            assert put.json()["applied"] == put.json()["revision"]
            for _ in range(3):
                assert await _version(client) == 1
            metrics = (await client.get("/metrics")).text
            line = next(
                m
                for m in metrics.splitlines()
                if m.startswith('gristmill_fallbacks_total{model_name="birds",model_version="2"')
            )
            assert line.endswith(" 3"), line
    finally:
        with open_stores(settings) as stores:
            assert compile_version(stores, version).manifest.digest == digest


BUDGET_MS = 50
EPSILON = 0.25  # seconds an overtaken answer may take beyond its budget on a busy machine


async def test_a_slow_primary_is_overtaken_by_its_fallback_within_the_budget(
    two_versions: Settings,
) -> None:
    """Better wrong than late: under a load of concurrent clients, every answer comes from
    the fallback within the budget + EPSILON, says so, and each miss is counted."""
    async with _serving(two_versions) as (client, models):
        policy = TrafficPolicy("birds", primary=2, fallback=(1,))
        route = await models._built(policy)
        assert route.primary is not None
        await _apply(models, policy, primary=_Sleeping(route.primary, 0.5))
        budget = {"x-gristmill-latency-budget-ms": str(BUDGET_MS)}
        timings: list[float] = []
        failures: list[str] = []

        async def send(index: int) -> None:
            started = time.perf_counter()
            answer = await client.post(
                "/v1/models/birds/predict", json={"rows": _rows(1, start=index)}, headers=budget
            )
            timings.append(time.perf_counter() - started)
            body = answer.json()
            if answer.status_code != 200 or body["version"] != 1 or not body["fallback"]:
                failures.append(answer.text)
            elif answer.headers.get("x-gristmill-fallback") != "true":
                failures.append(f"no fallback header: {dict(answer.headers)}")

        sent = 0
        for _ in range(10):  # 10 waves of 16 concurrent clients
            await asyncio.gather(*(send(sent + i) for i in range(16)))
            sent += 16
        assert failures == []
        assert max(timings) <= BUDGET_MS / 1000 + EPSILON, sorted(timings)[-5:]
        # every request of the slow version was a miss (most not even asked: it holds as
        # many calls as it may after missing their budget), and each was handed over
        assert models.budgets.abandoned(route.primary) <= two_versions.serve.budget_max_abandoned
        metrics = (await client.get("/metrics")).text
        for counter in ("gristmill_latency_budget_misses_total", "gristmill_fallbacks_total"):
            assert f'{counter}{{model_name="birds",model_version="2",' in metrics
            line = next(
                m
                for m in metrics.splitlines()
                if m.startswith(f'{counter}{{model_name="birds",model_version="2"')
            )
            assert line.endswith(f" {sent}"), line

        # with no budget (0), the slow version answers itself, late, not as a fallback
        answer = await client.post(
            "/v1/models/birds/predict",
            json={"rows": _rows(1)},
            headers={"x-gristmill-latency-budget-ms": "0"},
        )
        assert answer.json()["version"] == 2 and answer.json()["fallback"] is False
        assert "x-gristmill-fallback" not in answer.headers
        # the last version of a chain is awaited: answered late, the miss counted
        await _apply(
            models, TrafficPolicy("birds", primary=2), primary=_Sleeping(route.primary, 0.1)
        )
        answer = await client.post(
            "/v1/models/birds/predict", json={"rows": _rows(1)}, headers=budget
        )
        assert answer.status_code == 200 and answer.json()["version"] == 2
        # a budget that is not a number of milliseconds is the client's error, named
        for wrong in ("soon", "-5", "nan"):
            answer = await client.post(
                "/v1/models/birds/predict",
                json={"rows": _rows(1)},
                headers={"x-gristmill-latency-budget-ms": wrong},
            )
            assert answer.status_code == 400, answer.text
            assert "x-gristmill-latency-budget-ms" in answer.json()["error"]
        metrics = (await client.get("/metrics")).text
        line = next(
            m
            for m in metrics.splitlines()
            if m.startswith(
                'gristmill_latency_budget_misses_total{model_name="birds",model_version="2"'
            )
        )
        assert line.endswith(f" {sent + 1}"), line
