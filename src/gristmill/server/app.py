"""The prediction server's application: Starlette routes over one ``RegistryModels``.

Raw Starlette routes (no FastAPI request models or dependency injection on the request path)
and orjson answers; see docs/adr/0014-prediction-server.md. At start (``lifespan``) the
stores and the bus open, the prediction log's writer starts, the models of
``serve.models`` load, and only then does ``/readyz`` say ready; reloading (bus and poll)
runs until shutdown, when the log is written one last time. The wire protocols are mounted
here, and only here: the native API, and the Open Inference Protocol and MLflow's scoring
protocol when their modules are present.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from gristmill.config.settings import Settings
from gristmill.runtime.wiring import open_services
from gristmill.servables.loading import parse_ref
from gristmill.server import reload
from gristmill.server.http import JSONResponse, check_token, error_response, request_id
from gristmill.server.metrics import CONTENT_TYPE, Metrics
from gristmill.server.models import RegistryModels
from gristmill.server.prediction_log import PredictionLog
from gristmill.server.protocols import native

logger = logging.getLogger(__name__)

SETTINGS_VARIABLE = "_GRISTMILL_SERVE_SETTINGS"
"""How ``gristmill serve`` hands its settings to uvicorn's worker processes (JSON)."""

PROTOCOLS = ("oip", "mlflow")
"""Protocol modules mounted when present (``gristmill.server.protocols.<name>.routes``)."""


def protocol_routes(models: RegistryModels) -> list[BaseRoute]:
    """The native API's routes, then each present protocol module's."""
    mounted: list[BaseRoute] = list(native.routes(models))
    for name in PROTOCOLS:
        module_name = f"gristmill.server.protocols.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        mounted += module.routes(models)
    return mounted


def create_app(settings: Settings, models: RegistryModels | None = None) -> Starlette:
    """The server of ``settings`` (``models`` given by tests that build their own)."""
    serve = settings.serve
    log = PredictionLog(
        Path(settings.predictions_url()),
        sample=serve.log_sample,
        flush_seconds=serve.log_flush_seconds,
        flush_rows=serve.log_flush_rows,
    )
    models = models or RegistryModels(serve, log=log)
    if models.log is None:
        models.log = log
    metrics: Metrics = models.metrics

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        ok = models.ready()
        return JSONResponse({"ready": ok}, 200 if ok else 503)

    async def scrape(request: Request) -> Response:
        return PlainTextResponse(metrics.render(), media_type=CONTENT_TYPE)

    async def admin_reload(request: Request) -> Response:
        rid = request_id(request)
        try:
            _admin(request, settings)
            switched = await models.refresh()
        except Exception as exc:
            return error_response(exc, rid)
        return JSONResponse({"switched": switched, "aliases": models.aliases()})

    routes: list[BaseRoute] = [
        Route("/healthz", live, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),
        Route("/metrics", scrape, methods=["GET"]),
        Route("/admin/reload", admin_reload, methods=["POST"]),
        *protocol_routes(models),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            log.publish = services.bus.publish
            models.attach(services.feature_stores())
            tasks = [asyncio.create_task(log.run(), name="prediction-log")]
            try:
                for ref in serve.models:
                    name, which = parse_ref(ref)
                    if isinstance(which, int):
                        await models.find(name, version=which)
                    else:
                        await models.find(name, alias=which)
                # What start-up made (libraries, models) lives as long as the process: keep
                # the collector from walking it again on every full collection.
                gc.collect()
                gc.freeze()
                models.set_ready(True)
                tasks.append(asyncio.create_task(reload.poll(models, serve.poll_seconds)))
                tasks.append(asyncio.create_task(reload.listen(models, services.bus)))
                logger.info("serving %s", ", ".join(serve.models) or "models on first request")
                yield
            finally:
                models.set_ready(False)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def failed(request: Request, exc: Exception) -> Response:
        return error_response(exc, request_id(request))

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={Exception: failed},
    )


def _admin(request: Request, settings: Settings) -> None:
    check_token(request, settings.serve.token)


def worker_app() -> Starlette:
    """The app of a uvicorn worker process, from the settings ``gristmill serve`` handed it."""
    text = os.environ.get(SETTINGS_VARIABLE)
    settings = Settings.model_validate_json(text) if text else Settings()
    return create_app(settings)
