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
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from gristmill.config.settings import Settings
from gristmill.runtime.wiring import open_services
from gristmill.servables.loading import parse_ref
from gristmill.server import reload
from gristmill.server.http import JSONResponse, check_token, error_response, request_id
from gristmill.server.metrics import CONTENT_TYPE
from gristmill.server.models import RegistryModels
from gristmill.server.openapi import document, documented, operation
from gristmill.server.port import ServedModels
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
    served: ServedModels = models  # what the protocols are given (checked by mypy)
    for name in PROTOCOLS:
        module_name = f"gristmill.server.protocols.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        mounted += module.routes(served)
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
    routes: list[BaseRoute] = [*protocol_routes(models)]  # matched first, in order
    routes += service_routes(models, settings, routes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            log.publish = services.bus.publish
            models.attach(services.feature_stores())
            tasks = [asyncio.create_task(log.run(), name="prediction-log")]
            try:
                await _preload(models, serve.models)
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

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _refused, Exception: _failed},
    )


async def _preload(models: RegistryModels, refs: list[str]) -> None:
    for ref in refs:
        name, which = parse_ref(ref)
        if isinstance(which, int):
            await models.find(name, version=which)
        else:
            await models.find(name, alias=which)


def service_routes(
    models: RegistryModels, settings: Settings, documented_routes: list[BaseRoute]
) -> list[BaseRoute]:
    """Health, readiness, metrics, admin, and the OpenAPI document of
    ``documented_routes`` (read when first asked for, so it includes these)."""
    schema: dict[str, object] = {}

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        ok = models.ready()
        return JSONResponse({"ready": ok}, 200 if ok else 503)

    async def scrape(request: Request) -> Response:
        return PlainTextResponse(models.metrics.render(), media_type=CONTENT_TYPE)

    async def admin_reload(request: Request) -> Response:
        rid = request_id(request)
        try:
            check_token(request, settings.serve.token)
            switched = await models.refresh()
        except Exception as exc:
            return error_response(exc, rid)
        return JSONResponse({"switched": switched, "aliases": models.aliases()})

    async def openapi(request: Request) -> Response:
        if not schema:
            schema.update(document(documented_routes))
        return JSONResponse(schema)

    up = {"type": "object"}
    text = {"type": "string"}
    return [
        Route("/healthz", documented(live, operation("The process is up", answer=up))),
        Route(
            "/readyz",
            documented(ready, operation("Ready to answer", answer=up, errors=(503,))),
        ),
        Route(
            "/metrics",
            documented(scrape, operation("Prometheus metrics", answer=text, media=CONTENT_TYPE)),
        ),
        Route(
            "/admin/reload",
            documented(admin_reload, operation("Read aliases now", answer=up, errors=(401,))),
            methods=["POST"],
        ),
        Route("/openapi.json", documented(openapi, operation("This document", answer=up))),
    ]


async def _failed(request: Request, exc: Exception) -> Response:
    return error_response(exc, request_id(request))


async def _refused(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, a wrong method) as JSON errors."""
    status = exc.status_code if isinstance(exc, HTTPException) else 400
    detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
    headers = exc.headers if isinstance(exc, HTTPException) else None
    message = f"{detail}: {request.method} {request.url.path}"
    return JSONResponse({"error": message}, status, headers=headers)


def worker_app() -> Starlette:
    """The app of a uvicorn worker process, from the settings ``gristmill serve`` handed it."""
    text = os.environ.get(SETTINGS_VARIABLE)
    settings = Settings.model_validate_json(text) if text else Settings()
    return create_app(settings)
