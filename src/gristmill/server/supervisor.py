"""The processes of ``gristmill serve``: uvicorn's, started from a module that imports little.

With ``--workers N`` (N > 1) uvicorn's supervisor *spawns* each worker: a fresh
interpreter that first imports the parent's ``__main__`` again (as ``__mp_main__``) and only
then answers the supervisor's health check. Run from the ``gristmill`` console script, that
``__main__`` imports the whole CLI — pandas, scikit-learn, the learners: seconds of CPU —
and uvicorn kills a worker that has not answered within ``timeout_worker_healthcheck``
(5 s by default). On a loaded machine no worker ever came up. So ``gristmill serve`` with
several workers replaces its process (``os.execv``, same pid) by
``python -m gristmill.server.supervisor``: this module is the workers' ``__main__``, and it
imports only the standard library at the top. Each worker then builds its app through
``worker_app`` (the server, without pandas or scikit-learn until a version needs them:
``servables.loading``), while its health-check thread already answers; the check's
timeout is ``serve.worker_healthcheck_seconds``.

A worker that dies (or stops answering and is killed) is replaced by uvicorn; this module's
supervisor says so in gristmill's log at warning level (uvicorn says it at info level,
which ``gristmill serve`` does not show).

The settings travel from the CLI to every process as JSON in ``_GRISTMILL_SERVE_SETTINGS``,
the log level in ``_GRISTMILL_SERVE_LOG_LEVEL``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from gristmill.config.settings import Settings

logger = logging.getLogger(__name__)

SETTINGS_VARIABLE = "_GRISTMILL_SERVE_SETTINGS"
"""How ``gristmill serve`` hands its settings to the server processes (JSON)."""

LOG_LEVEL_VARIABLE = "_GRISTMILL_SERVE_LOG_LEVEL"
"""The level of gristmill's log in the server processes (``-v``: INFO, ``-vv``: DEBUG)."""

FACTORY = "gristmill.server.supervisor:worker_app"
"""What uvicorn imports in each worker: a function, so the app is built there."""

COALESCING = "gristmill.server.coalescing:CoalescingHttpToolsProtocol"
"""uvicorn's httptools protocol, an answer's head and body sent in one write."""

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def hand_over(settings: Settings, level: int) -> None:
    """Put ``settings`` and the log ``level`` where the server processes read them."""
    os.environ[SETTINGS_VARIABLE] = settings.model_dump_json()
    os.environ[LOG_LEVEL_VARIABLE] = logging.getLevelName(level)


def handed_settings() -> Settings:
    """The settings ``gristmill serve`` handed over (the defaults when run by hand)."""
    from gristmill.config.settings import Settings

    text = os.environ.get(SETTINGS_VARIABLE)
    return Settings.model_validate_json(text) if text else Settings()


def configure_logging() -> None:
    """gristmill's log in a server process: the CLI's format, at the level it was run with."""
    level = os.environ.get(LOG_LEVEL_VARIABLE, "WARNING")
    logging.basicConfig(level=level if level.isalpha() else "WARNING", format=LOG_FORMAT)


def worker_app() -> Starlette:
    """The app of one server process (uvicorn calls this in each worker)."""
    configure_logging()
    from gristmill.server.app import create_app

    return create_app(handed_settings())


def supervise_in_new_process() -> None:
    """Replace this process by ``python -m gristmill.server.supervisor`` (same pid, same
    environment), whose ``__main__`` is light for the workers it spawns. Never returns."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", __name__])


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for ``settings.serve``."""
    serve = settings.serve
    return {
        "factory": True,
        "host": serve.host,
        "port": serve.port,
        "workers": serve.workers,
        "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "http": COALESCING if importlib.util.find_spec("httptools") else "h11",
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": 10,
        "timeout_worker_healthcheck": serve.worker_healthcheck_seconds,
    }


def run(settings: Settings) -> None:
    """Serve until stopped: one process (uvicorn in this one), or uvicorn's supervisor and
    ``serve.workers`` spawned workers, each death said in the log."""
    import uvicorn

    options = uvicorn_options(settings)
    if settings.serve.workers == 1:
        uvicorn.run(FACTORY, **options)
        return
    config = uvicorn.Config(FACTORY, **options)
    socket = config.bind_socket()
    try:
        _watched_workers()(config, sockets=[socket]).run()
    except KeyboardInterrupt:
        pass
    finally:
        socket.close()


def _watched_workers() -> type:
    """uvicorn's ``Multiprocess`` supervisor, saying in gristmill's log when it replaces a
    worker (and why) — a class made here, so that importing this module imports no uvicorn."""
    from uvicorn.supervisors.multiprocess import Multiprocess

    class WatchedWorkers(Multiprocess):
        def keep_subprocess_alive(self) -> None:
            before = list(self.processes)
            running = {id(p): p.process.is_alive() for p in before}
            super().keep_subprocess_alive()
            for old, new in zip(before, self.processes, strict=False):
                if new is not old:
                    logger.warning(
                        "server worker %s %s; worker %s replaces it",
                        old.pid,
                        _why(old.exitcode, running[id(old)], self.config),
                        new.pid,
                    )

    return WatchedWorkers


def _why(exitcode: int | None, was_running: bool, config: Any) -> str:
    if was_running:
        return (
            f"did not answer its health check within {config.timeout_worker_healthcheck}s "
            "and was killed (serve.worker_healthcheck_seconds)"
        )
    if exitcode is not None and exitcode < 0:
        try:
            return f"died (killed by {signal.Signals(-exitcode).name})"
        except ValueError:
            pass
    return f"died (exit code {exitcode})"


def main() -> None:
    """``python -m gristmill.server.supervisor``: serve the handed-over settings."""
    configure_logging()
    run(handed_settings())


if __name__ == "__main__":
    main()
