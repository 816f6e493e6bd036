"""The prediction server's application: Starlette routes over one ``RegistryModels``.

Raw Starlette routes (no FastAPI request models or dependency injection on the request path)
and orjson answers; see docs/adr/0015-prediction-server.md. At start (``lifespan``) the
stores and the bus open, the prediction log's writer starts, the models of
``serve.models`` load, and only then does ``/readyz`` say ready; reloading (bus and poll)
runs until shutdown, when the log is written one last time and the process's bus consumer
group is deleted. Every ``serve.stats_flush_seconds`` the serving stats are recorded in the
metadata store, the canaries with a promotion rule judged, then the policies with a
rollback rule (``server.stats_flush``, ``server.canary_judge``, ``server.rollback_judge``);
the stats once more at shutdown. The wire protocols are mounted here, and
only here: the native API, the Open Inference Protocol and MLflow's scoring protocol;
beside them the batch score jobs (``server.jobs``) and the feedback (``server.feedback``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from gristmill.config.settings import Settings
from gristmill.errors import DataError
from gristmill.runtime.wiring import open_services
from gristmill.servables.loading import parse_ref
from gristmill.server import canary_judge, feedback, policies, reload, rollback_judge
from gristmill.server import jobs as score_jobs
from gristmill.server.hot_path import PredictionFirst, prediction_routes
from gristmill.server.http import (
    InFlight,
    JSONResponse,
    check_token,
    error_response,
    json_of,
    prediction_token,
    request_id,
)
from gristmill.server.metrics import CONTENT_TYPE
from gristmill.server.models import RegistryModels
from gristmill.server.openapi import document, documented, operation, parameter
from gristmill.server.port import ServedModels
from gristmill.server.prediction_log import PredictionLog, Publish
from gristmill.server.protocols import mlflow, native, oip
from gristmill.server.stats_flush import StatsFlusher

logger = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.0005
"""Seconds a thread holds the GIL while another waits (Python's default: 0.005)."""


def protocol_routes(models: RegistryModels) -> list[BaseRoute]:
    """The native API's routes, then the Open Inference Protocol's and MLflow's, all over
    the same ``models``, every prediction endpoint guarded by the same token (when
    ``serve.token_for_predictions``). MLflow's ``/invocations`` names no model: it scores
    the one model the server preloads, when it preloads exactly one."""
    settings = models.settings
    served: ServedModels = models  # what the protocols are given (checked by mypy)
    preloaded = settings.models[0] if len(settings.models) == 1 else None
    token = prediction_token(settings)
    return [
        *native.routes(models),
        *oip.routes(
            served,
            max_bytes=settings.max_body_bytes,
            token=token,
            budget_ms=settings.latency_budget_ms,
        ),
        *mlflow.routes(
            served,
            default=preloaded,
            token=token,
            max_bytes=settings.max_body_bytes,
            budget_ms=settings.latency_budget_ms,
        ),
    ]


def _prediction_log(settings: Settings) -> PredictionLog:
    serve = settings.serve
    return PredictionLog(
        Path(settings.predictions_url()),
        sample=serve.log_sample,
        flush_seconds=serve.log_flush_seconds,
        flush_rows=serve.log_flush_rows,
    )


def _logged(models: RegistryModels, log: PredictionLog) -> RegistryModels:
    """``models``, its answers and its shadows' written to ``log`` (unless given one)."""
    if models.log is None:
        models.log = log
    if models.shadows.log is None:
        models.shadows.log = log
    return models


def create_app(settings: Settings, models: RegistryModels | None = None) -> Starlette:
    """The server of ``settings`` (``models`` given by tests that build their own)."""
    serve = settings.serve
    log = _prediction_log(settings)
    models = _logged(models or RegistryModels(serve, log=log), log)
    publish: list[Publish] = []  # the bus's, once the lifespan opened it
    jobs = score_jobs.ScoreJobs(settings)
    protocols = protocol_routes(models)
    routes: list[BaseRoute] = [*protocols, *score_jobs.routes(jobs)]
    routes += feedback.routes(serve, publish, models)
    routes += service_routes(models, settings, routes)
    routes += policy_routes(models, settings, publish)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_services(settings) as services:
            log.publish = services.bus.publish
            publish[:] = [services.bus.publish]  # this lifespan's bus (an app may start again)
            models.attach(services.feature_stores())
            jobs.attach(services)
            tasks = [
                asyncio.create_task(log.run(), name="prediction-log"),
                asyncio.create_task(models.shadows.run(), name="shadows"),
            ]
            windows = models.metrics.windows
            flusher = None
            if windows is not None and serve.stats_flush_seconds > 0:
                flusher = StatsFlusher(windows, services.metadata.serving_stats)
            interval = sys.getswitchinterval()
            try:
                await _preload(models, serve.models)
                # What start-up made (libraries, models) lives as long as the process: keep
                # the collector from walking it again on every full collection.
                gc.collect()
                gc.freeze()
                # The log's writer thread holds the GIL for pure-Python work; by default the
                # event loop would wait up to 5 ms for it after each socket call.
                sys.setswitchinterval(SWITCH_INTERVAL)
                models.set_ready(True)
                tasks.append(asyncio.create_task(reload.poll(models, serve.poll_seconds)))
                tasks.append(asyncio.create_task(reload.listen(models, services.bus)))
                if flusher is not None:
                    flusher.start(
                        serve.stats_flush_seconds,
                        functools.partial(_judge, models, services.bus.publish),
                    )
                logger.info("serving %s", ", ".join(serve.models) or "models on first request")
                yield
            finally:
                sys.setswitchinterval(interval)
                gc.unfreeze()
                models.set_ready(False)
                publish.clear()  # its bus closes: routes that publish answer 503 until open
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                models.budgets.close()  # calls that missed their budget are not waited for
                if flusher is not None:
                    await flusher.stop()  # the last figures, before the stores close
                await jobs.close()  # the jobs this server runs end before its stores close
                await reload.leave(services.bus)  # no consumer group left behind
                logger.info("stopped serving (process %d)", os.getpid())

    return PredictionFirst(
        hot=prediction_routes(protocols),
        counter=models.batcher,
        routes=routes,
        middleware=[Middleware(InFlight, counter=models.batcher)],
        lifespan=lifespan,
        exception_handlers={HTTPException: _refused, Exception: _failed},
    )


async def _judge(models: RegistryModels, publish: Publish) -> None:
    """After a stats flush: the canary judge, then the rollback judge (on the policies as
    the canary judge left them); one failing does not keep the other from judging."""
    for judge, what in (
        (canary_judge.judge, "the canaries"),
        (rollback_judge.judge, "the rollback rules"),
    ):
        try:
            await judge(models, publish)
        except Exception:
            logger.exception("could not judge %s; trying again after the next flush", what)


async def _preload(models: RegistryModels, refs: list[str]) -> None:
    for ref in refs:
        if "@" not in ref and "/" not in ref:  # the model alone: its policy's versions
            await models.find(ref)
            continue
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

    async def admin_unload(request: Request) -> Response:
        rid = request_id(request)
        try:
            check_token(request, settings.serve.token)
            ref = _unload_ref(await json_of(request, settings.serve.max_body_bytes))
            name, which = parse_ref(ref)
            unloaded = models.unload(name, which, alone="@" not in ref and "/" not in ref)
        except Exception as exc:
            return error_response(exc, rid)
        loaded = [m.ref for m in models.list()]
        return JSONResponse({"unloaded": unloaded, "loaded": loaded})

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
            documented(
                admin_reload,
                operation(
                    "Read the aliases in use from the registry now",
                    answer="ReloadResponse",
                    errors=(401, 503),
                ),
            ),
            methods=["POST"],
        ),
        Route(
            "/admin/unload",
            documented(
                admin_unload,
                operation(
                    "Unload a model version (loaded again on next use)",
                    body="UnloadRequest",
                    answer="UnloadResponse",
                    errors=(400, 401, 413, 415),
                ),
            ),
            methods=["POST"],
        ),
        Route("/openapi.json", documented(openapi, operation("This document", answer=up))),
    ]


def policy_routes(
    models: RegistryModels, settings: Settings, publish: list[Publish]
) -> list[BaseRoute]:
    """``/admin/policies``: read the stored traffic policies, change one (see
    ``server.policies``); every one needs the server's token."""
    token = settings.serve.token

    async def listed(request: Request) -> Response:
        rid = request_id(request)
        try:
            check_token(request, token)
            stored = await asyncio.to_thread(policies.stored_policies, models.stores)
        except Exception as exc:
            return error_response(exc, rid)
        applied = {m: p.revision for m, p in models.policies().items()}
        body = {"policies": [policies.policy_body(p) for p in stored], "applied": applied}
        return JSONResponse(body)

    async def shown(request: Request) -> Response:
        rid = request_id(request)
        model = request.path_params["model"]
        try:
            check_token(request, token)
            stored = await asyncio.to_thread(policies.stored_policy, models.stores, model)
        except Exception as exc:
            return error_response(exc, rid)
        applied = models.policies().get(model)
        body = policies.policy_body(stored)
        body["applied"] = None if applied is None else applied.revision
        return JSONResponse(body)

    async def changed(request: Request) -> Response:
        rid = request_id(request)
        model = request.path_params["model"]
        try:
            check_token(request, token)
            given = await json_of(request, settings.serve.max_body_bytes)
            asked = policies.parse_policy(model, given)
            bus = publish[0] if publish else None
            keep = policies.keeps_rollback_rule(given)
            stored = await policies.store_policy(models.stores, asked, bus, keep_rollback_rule=keep)
            applied = await models.apply_policy(model)
        except Exception as exc:
            return error_response(exc, rid)
        body = policies.policy_body(stored)
        body["applied"] = None if applied is None else applied.revision
        return JSONResponse(body)

    model = parameter("model", "The model's registry name")
    return [
        Route(
            "/admin/policies",
            documented(
                listed,
                operation(
                    "The stored traffic policies, and the revisions this process applies",
                    answer="PolicyList",
                    errors=(401, 503),
                ),
            ),
            methods=["GET"],
        ),
        Route(
            "/admin/policies/{model}",
            documented(
                shown,
                operation(
                    "A model's stored traffic policy",
                    parameters=(model,),
                    answer="Policy",
                    errors=(401, 404, 503),
                ),
            ),
            methods=["GET"],
        ),
        Route(
            "/admin/policies/{model}",
            documented(
                changed,
                operation(
                    "Set a model's traffic policy: stored, announced, applied here",
                    parameters=(model,),
                    body="PolicyRequest",
                    answer="Policy",
                    errors=(400, 401, 404, 413, 415, 503),
                ),
            ),
            methods=["PUT"],
        ),
    ]


def _unload_ref(body: object) -> str:
    """The ``ref`` of an ``/admin/unload`` body, or a ``DataError`` naming the field."""
    ref = body.get("ref") if isinstance(body, dict) else None
    if not isinstance(ref, str) or not ref.strip("@/"):
        raise DataError(
            'the body of /admin/unload is {"ref": "NAME", "NAME@ALIAS" or "NAME/VERSION"}',
            column="ref",
        )
    return ref


async def _failed(request: Request, exc: Exception) -> Response:
    return error_response(exc, request_id(request))


_NOT_A_VERSION = re.compile(r"^/v1/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)(/predict)?$")


async def _refused(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path, a wrong method) as JSON errors."""
    status = exc.status_code if isinstance(exc, HTTPException) else 400
    detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
    headers = exc.headers if isinstance(exc, HTTPException) else None
    message = f"{detail}: {request.method} {request.url.path}"
    version = _NOT_A_VERSION.match(request.url.path) if status == 404 else None
    if version is not None:
        message += (
            f"; {version['version']!r} is not a version: a version is a number "
            f"(/v1/models/{version['name']}/versions/3), an alias is named as "
            f"/v1/models/{version['name']}@ALIAS"
        )
    return JSONResponse({"error": message}, status, headers=headers)
