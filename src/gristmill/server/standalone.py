"""The prediction server of one packaged model: a directory in, the same HTTP protocols out.

``gristmill package`` writes a directory holding one servable (``servables.directory``);
this module serves it with no metadata store, artifact store, bus or online store: the
same routes as ``gristmill serve`` — the native API, the Open Inference Protocol v2, the
MLflow scoring protocol, health, readiness and metrics — over ``DirectoryModels``, which
holds that one version. The package's ``serve.py`` calls ``main``; so does
``python -m gristmill.server.standalone DIR``.

Every file of the package is checked against its digest *before* the server listens: a
damaged or replaced file stops the start with one line naming it (exit 1), never a model
that answers from altered bytes.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import importlib.util
import logging
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute

from gristmill.config.settings import ServeSettings, Settings, load_settings
from gristmill.errors import DataError, GristmillError, NotFoundError
from gristmill.servables.directory import load_directory, read_index
from gristmill.servables.loading import CHAMPION, LATEST
from gristmill.servables.port import Servable, ServableManifest
from gristmill.server.app import _failed, _refused, service_routes
from gristmill.server.http import prediction_token
from gristmill.server.models import RegistryModels
from gristmill.server.port import EntityPredictions, Served, ServedModels
from gristmill.server.protocols import mlflow, native, oip

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8080


class DirectoryModels(RegistryModels):
    """``ServedModels`` over one servable loaded from a package: the registry's scoring path
    (micro-batching, cache, metrics) without the registry. It answers its model by version
    number, and by ``@champion``, ``@latest`` and the alias it was packaged from (it is the
    only version there is); anything else is a ``NotFoundError`` naming what it serves."""

    def __init__(
        self, settings: ServeSettings, servable: Servable, *, aliases: Sequence[str] = ()
    ) -> None:
        super().__init__(settings)
        self.servable = servable
        self.alias_names = tuple(dict.fromkeys((CHAMPION, LATEST, *aliases)))
        self._serving = False

    def set_ready(self, ready: bool) -> None:
        self._serving = ready

    def ready(self) -> bool:
        return self._serving

    async def find(
        self,
        model: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        key: str | None = None,  # one version, so no policy to route by
    ) -> Served:
        manifest = self.servable.manifest
        serves = f"this package serves {manifest.ref} only"
        if model != manifest.model:
            raise NotFoundError(f"no model named {model!r}: {serves}")
        if version is not None and version != manifest.version:
            raise NotFoundError(f"{model} has no version {version} here: {serves}")
        alias = alias or CHAMPION
        if version is None and alias not in self.alias_names:
            known = ", ".join(f"@{a}" for a in self.alias_names)
            raise NotFoundError(f"{model}@{alias} is not in this package ({known}): {serves}")
        asked = (
            f"{model}/{version}"
            if version is not None
            else model
            if alias == CHAMPION
            else f"{model}@{alias}"
        )
        return Served(self.servable, asked)

    def list(self) -> builtins.list[ServableManifest]:
        return [self.servable.manifest]

    def aliases(self) -> dict[str, int]:
        manifest = self.servable.manifest
        return {f"{manifest.model}@{a}": manifest.version for a in self.alias_names}

    async def refresh(self, model: str | None = None) -> builtins.list[str]:
        return []  # a package never changes while it runs

    def unload(self, model: str, which: int | str, *, alone: bool = False) -> builtins.list[str]:
        return []  # its one version stays: there is nothing to load it again from

    async def predict_entities(
        self,
        served: Served,
        entities: Sequence[str],
        columns: Mapping[str, Any] | None = None,
        *,
        protocol: str,
        request_id: str,
    ) -> EntityPredictions:
        raise DataError(
            f"a packaged model has no online feature store, so it cannot look up entities; "
            f"send the raw columns of {served.manifest.ref} in rows or columns instead",
            column="entities",
        )


def create_directory_app(models: DirectoryModels, settings: Settings) -> Starlette:
    """The app serving ``models`` (already loaded): protocol routes, then service routes."""
    served: ServedModels = models
    manifest = models.servable.manifest
    token = prediction_token(settings.serve)
    routes: list[BaseRoute] = [
        *native.routes(models),
        *oip.routes(served, max_bytes=settings.serve.max_body_bytes, token=token),
        *mlflow.routes(
            served,
            default=manifest.model,
            token=token,
            max_bytes=settings.serve.max_body_bytes,
        ),
    ]
    routes += service_routes(models, settings, routes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        models.set_ready(True)
        logger.info("serving %s (%s servable %s)", manifest.ref, manifest.kind, manifest.digest)
        try:
            yield
        finally:
            models.set_ready(False)

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _refused, Exception: _failed},
    )


def _arguments(argv: Sequence[str], serve: ServeSettings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="serve.py",
        description="Serve this packaged model over HTTP (gristmill's native API, the Open "
        "Inference Protocol v2, MLflow's scoring protocol).",
    )
    parser.add_argument("--host", default=serve.host, help=f"default {serve.host}")
    port = serve.port if serve.port != 8000 else DEFAULT_PORT
    parser.add_argument("--port", type=int, default=port, help=f"default {port}")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per call")
    return parser.parse_args(list(argv))


def main(directory: Path, argv: Sequence[str] = ()) -> int:
    """Verify and load the package in ``directory``, then serve it until stopped. A wrong
    package is one line on stderr and exit code 1."""
    try:  # GRISTMILL_SERVE__* variables (token, batching, limits) apply, or ./gristmill.toml
        settings = load_settings()
    except GristmillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args = _arguments(argv, settings.serve)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if importlib.util.find_spec("uvicorn") is None:
        print("error: the server needs uvicorn: pip install -r requirements.txt", file=sys.stderr)
        return 1
    try:
        index = read_index(directory)
        servable = load_directory(directory, threads=args.threads)
    except GristmillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    aliases = [str(index["alias"])] if index.get("alias") else []
    models = DirectoryModels(settings.serve, servable, aliases=aliases)
    import uvicorn

    manifest = servable.manifest
    print(
        f"serving {manifest.ref} ({manifest.kind}) on http://{args.host}:{args.port}; try "
        f"POST /v1/models/{manifest.model}/predict",
        flush=True,
    )
    uvicorn.run(
        create_directory_app(models, settings),
        host=args.host,
        port=args.port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m gristmill.server.standalone DIR [--host H] [--port P]")
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
