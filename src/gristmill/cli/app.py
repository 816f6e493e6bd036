"""The ``gristmill`` command: global options, error display, and the verbs.

A verb's module is imported, and its command built, only when the verb is run or listed
(``--help`` lists them all): ``VERBS`` names the module of each. A verb's module imports
typer, rich and light constants only; what the verb runs (settings, stores, the runtime,
the learning libraries) is imported when it runs. So ``--help`` and ``--version`` answer at
once, and ``ls``/``show`` load only their own module, the settings and the metadata reader
(tests/unit/cli/test_light_imports.py and tests/e2e/test_cli_startup.py hold it so).
"""

from __future__ import annotations

import importlib
import logging
import sys
import sysconfig
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

from gristmill import __version__
from gristmill.cli.console import console, err_console, print_error
from gristmill.errors import ConfigError, GristmillError

HELP = """\
gristmill takes data from its sources to a model serving predictions, and keeps watching it.

Every stage reads and writes stores and announces its work on an event bus. By default
everything is embedded (SQLite bus and metadata, Parquet files under .gristmill/); point
it at Redis, NATS or PostgreSQL with a gristmill.toml, GRISTMILL_* variables or the flags
below — the same pipeline runs unchanged.

Start here:

\b
  gristmill run examples/penguins/pipeline.yaml   run a whole pipeline, print a summary
  gristmill ls batches                            what has been ingested
  gristmill show ID                               one run or batch in detail
  gristmill lineage penguins                      where data came from, what it became
  gristmill doctor                                settings in force, backends reachable?
"""

# verb -> the module of gristmill.cli whose ``register(app)`` adds it; ``--help`` lists
# the verbs in this order (a test holds it equal to what the modules register).
VERBS = {
    "send": "running",
    "run": "running",
    "ingest": "running",
    "prepare": "features",
    "lookup": "features",
    "split": "training",
    "train": "training",
    "evaluate": "training",
    "worker": "worker",
    "schedules": "schedules",
    "ls": "inspect",
    "show": "inspect",
    "lineage": "inspect",
    "doctor": "doctor",
    "gc": "maintenance",
    "promote": "registry",
    "models": "registry",
    "deploy": "deployments",
    "rollback": "deployments",
    "deployments": "deployments",
    "predict": "scoring",
    "compile": "scoring",
    "package": "packaging",
    "score": "score_jobs",
    "jobs": "score_jobs",
    "serve": "serving",
    "monitor": "monitoring",
    "feedback": "feedback",
    "drift": "monitor_drift",
    "dead-letters": "dead_letters",
}


def _verbs() -> typer.Typer:
    """A Typer to register verbs on, set as the ``gristmill`` one is."""
    return typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)


def verbs_of(module: str) -> dict[str, Any]:
    """The commands the module ``gristmill.cli.<module>`` registers, by verb."""
    verbs = _verbs()
    importlib.import_module(f"gristmill.cli.{module}").register(verbs)
    return dict(typer.main.get_group(verbs).commands)


class VerbGroup(TyperGroup):
    """The ``gristmill`` group, building a verb's command when it is asked for: a verb that
    runs imports its own module only, and typer reads the signatures of its commands only.
    A name that is no verb loads them all, so the error can suggest the nearest."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(VERBS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            wanted = [VERBS[cmd_name]] if cmd_name in VERBS else dict.fromkeys(VERBS.values())
            for module in wanted:
                self.commands.update(verbs_of(module))
        return self.commands.get(cmd_name)


app = typer.Typer(
    cls=VerbGroup,
    help=HELP,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"gristmill {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Settings file (default: ./gristmill.toml if any)."),
    ] = None,
    home: Annotated[
        Path | None, typer.Option(help="Folder of the embedded stores (default .gristmill).")
    ] = None,
    bus: Annotated[str | None, typer.Option(help="Bus backend: sqlite, redis or nats.")] = None,
    bus_url: Annotated[str | None, typer.Option(help="URL of the bus backend.")] = None,
    namespace: Annotated[
        str | None, typer.Option(help="Bus namespace (stream / subject / table prefix).")
    ] = None,
    metadata: Annotated[
        str | None, typer.Option(help="Metadata backend: sqlite or postgres.")
    ] = None,
    metadata_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the metadata store.")
    ] = None,
    raw_url: Annotated[
        str | None, typer.Option(help="Raw store root: a path or fsspec URL.")
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logs.")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    """Settings precedence: defaults < gristmill.toml < GRISTMILL_* environment < these flags."""
    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = home
    for section, key, value in (
        ("bus", "backend", bus),
        ("bus", "url", bus_url),
        ("bus", "namespace", namespace),
        ("metadata", "backend", metadata),
        ("metadata", "url", metadata_url),
        ("raw", "url", raw_url),
    ):
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if verbose < 2:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx.obj = {"config": config, "overrides": overrides}


def main() -> None:
    """Entry point: usage errors are click's; gristmill errors become one clear line.

    Any other exception (a bug, or custom code named in a spec failing in a way nothing
    foresaw) is one line too, saying where it came from; ``-vv`` adds its traceback.
    """
    try:
        app()  # standalone: click prints usage errors and exits 2, Ctrl-C exits 1
    except GristmillError as exc:
        print_error(str(exc))
        sys.exit(2 if isinstance(exc, ConfigError) else 1)
    except Exception as exc:
        print_error(
            f"unexpected {type(exc).__name__}{_origin(exc)}: {exc}; "
            "run again with -vv to see the traceback"
        )
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            err_console.print_exception()
        sys.exit(1)


def _origin(exc: BaseException) -> str:
    """`` in FILE:LINE``: the innermost frame of ``exc``'s traceback outside the installed
    libraries (the user's own module, when custom code failed), else the innermost one."""
    installed = tuple({sysconfig.get_path(name) for name in ("stdlib", "purelib", "platlib")})
    own = innermost = None
    trace = exc.__traceback__
    while trace is not None:
        innermost = (trace.tb_frame.f_code.co_filename, trace.tb_lineno)
        if not innermost[0].startswith(installed):
            own = innermost
        trace = trace.tb_next
    found = own or innermost
    return f" in {found[0]}:{found[1]}" if found else ""
