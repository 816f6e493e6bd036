"""``gristmill serve``: the prediction server (uvicorn over ``gristmill.server``)."""

from __future__ import annotations

import errno
import importlib.util
import logging
import socket
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gristmill.cli.console import console
from gristmill.cli.settings import settings_from
from gristmill.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:  # settings and the server are imported when `serve` runs
    from gristmill.config.settings import Settings

MAX_PORT = 65535


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (serve.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (serve.port).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes, 1 or more (serve.workers).")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Load this model at start: NAME, NAME@ALIAS or NAME/VERSION (repeatable; "
            "serve.models). Others load on their first request.",
        ),
    ] = None,
) -> None:
    """Serve registered models over HTTP: gristmill's JSON API, the Open Inference
    Protocol v2 and MLflow's scoring protocol.

    A model named without a version answers at its @champion; promoting another version
    (`gristmill promote`) is picked up without a restart. Endpoints, settings and examples:
    docs/serving.md.

    \b
        gristmill serve --model penguins
        gristmill serve --port 8080 --workers 4
        curl -s localhost:8000/v1/models/penguins/predict -H 'content-type: application/json' \\
             -d '{"rows": [{"island": "Dream", "bill_length_mm": 41.2, ...}]}'
    """
    from pydantic import ValidationError

    from gristmill.config.settings import ServeSettings

    settings = settings_from(ctx)
    overrides: dict[str, Any] = {
        key: value
        for key, value in (("host", host), ("port", port), ("workers", workers))
        if value is not None
    }
    if model:
        overrides["models"] = list(model)
    if port is not None and not 0 <= port <= MAX_PORT:
        raise ConfigError(f"--port {port} is not a port: give a number from 0 to {MAX_PORT}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers} is no number of server processes: give 1 or more")
    try:
        serve_settings = ServeSettings.model_validate({**settings.serve.model_dump(), **overrides})
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ConfigError(f"serve.{where}: {problem['msg']}") from None
    settings = settings.model_copy(update={"serve": serve_settings})
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("orjson") is None:
        raise MissingExtraError("the server needs its extra: pip install 'gristmill[serve]'")
    _check_models(settings)
    from gristmill.server import supervisor

    supervisor.hand_over(settings, logging.getLogger().getEffectiveLevel())
    _check_port(serve_settings.host, serve_settings.port)
    console.print(
        f"starting on http://{serve_settings.host}:{serve_settings.port} "
        f"({serve_settings.workers} worker(s)); docs/serving.md lists the endpoints",
        highlight=False,
    )
    if serve_settings.workers > 1:
        # the workers are spawned: their parent's __main__ must not be this CLI (see
        # server.supervisor)
        supervisor.supervise_in_new_process()
    supervisor.run(settings)


def _check_port(host: str, port: int) -> None:
    """A port another process holds is one clear line now, before anything says it started
    (uvicorn would log its own error after the start-up line). The probe binds and lets go
    at once, with the address reuse uvicorn sets too (a port in TIME_WAIT is free)."""
    if port == 0:  # any free port: uvicorn picks one
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} is in use on {host}; choose another with --port"
                ) from None
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror}); check --host and --port"
            ) from None


def _check_models(settings: Settings) -> None:
    """Each model to preload loads here first: a wrong name or a damaged artifact is one
    clear line now, not a worker's traceback; a version not compiled yet is compiled once,
    not by every worker at the same time."""
    if not settings.serve.models:
        return
    from gristmill.runtime.wiring import open_stores
    from gristmill.servables import load_servable, parse_ref

    with open_stores(settings) as stores:
        for ref in settings.serve.models:
            load_servable(stores, *parse_ref(ref))


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Models")(serve)
