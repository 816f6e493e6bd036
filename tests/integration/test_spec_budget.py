"""A spec's ``serve.latency_budget_ms`` is the budget of the versions its runs train: a
request without the header to a version made slow on purpose is answered by its fallback
within that budget, though the server has no budget of its own; the header still
overrides it. The real prediction server in this process (its ASGI app, lifespan and all)."""

from __future__ import annotations

import asyncio
import time

import pytest

from gristmill.config.settings import Settings, load_settings
from gristmill.runtime.wiring import open_services
from gristmill.server.budget import spec_budget_ms
from gristmill.stores.models import TrafficPolicy
from gristmill.testing.registered import train_and_register, write_csv
from gristmill.training.gate import promote

from .test_server import SECTION, _penguins, _rows
from .test_server_policies import _apply, _serving, _Sleeping

pytestmark = pytest.mark.slow
BUDGET_MS = 100
SLOW = 1.0  # seconds the primary takes per call
EPSILON = 0.4  # seconds an overtaken answer may take beyond its budget on a busy machine


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """birds/1 (logreg) and birds/2 (forest), trained by a spec with a latency budget; the
    server's settings have none."""
    folder = tmp_path_factory.mktemp("spec_budget")
    settings = load_settings(
        overrides={
            "home": str(folder / "home"),
            "executor": {"backend": "inline"},
            "serve": {"poll_seconds": 3600},
        }
    )
    assert settings.serve.latency_budget_ms is None

    async def train() -> None:
        async with open_services(settings) as services:
            made = await train_and_register(
                services,
                write_csv(_penguins(), folder, "penguins"),
                model="penguins",
                section=SECTION,
                candidates=[
                    {"name": "logreg", "algorithm": "logistic_regression"},
                    {"name": "forest", "algorithm": "random_forest", "params": {"n_estimators": 5}},
                ],
                metric="accuracy",
                sections={"serve": {"latency_budget_ms": BUDGET_MS}},
            )
            promote(services.metadata, made["logreg"].candidate_id, "birds")
            promote(services.metadata, made["forest"].candidate_id, "birds")

    asyncio.run(train())
    return settings


async def test_the_specs_budget_is_the_versions_own(budgeted: Settings) -> None:
    async with open_services(budgeted) as services:
        assert spec_budget_ms(services.metadata, "birds", 2) == BUDGET_MS
    async with _serving(budgeted) as (client, models):
        policy = TrafficPolicy(model="birds", primary=2, fallback=(1,), revision=1)
        route = await models._built(policy)
        assert route.primary is not None
        await _apply(models, policy, primary=_Sleeping(route.primary, SLOW))

        started = time.monotonic()
        answer = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
        took = time.monotonic() - started
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == 1 and answer.headers["x-gristmill-fallback"] == "true"
        assert took < BUDGET_MS / 1000 + EPSILON, took

        # the request's header still decides: 0 turns the budget off
        waited = await client.post(
            "/v1/models/birds/predict",
            json={"rows": _rows(1)},
            headers={"x-gristmill-latency-budget-ms": "0"},
        )
        assert waited.status_code == 200 and waited.json()["version"] == 2
