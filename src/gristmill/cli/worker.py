"""``gristmill worker``: stages as long-lived consumers, stopped gracefully by SIGTERM/SIGINT."""

from __future__ import annotations

import gc
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gristmill.cli.console import console, styled
from gristmill.cli.settings import settings_from
from gristmill.core.urls import mask_url
from gristmill.errors import ConfigError
from gristmill.runtime.stage_names import ALL_STAGES, STAGE_NAMES

if TYPE_CHECKING:  # the stages are imported when `worker` runs (`--help` stays fast)
    from gristmill.config.settings import Settings
    from gristmill.config.spec import PipelineSpec


async def serve_stages(
    settings: Settings,
    names: tuple[str, ...],
    concurrency: int = 1,
    spec: PipelineSpec | None = None,
    folder: Path | None = None,
) -> int:
    """Run the named stages until a stop signal; returns how many events they handled.

    ``spec`` (read from a file in ``folder``) is recorded in the spec store, so other
    workers find it too for the events of its sources that belong to no run, and its
    schedules become its pipeline's.
    """
    import asyncio

    from gristmill.runtime.run_records import record_spec
    from gristmill.runtime.stages import build_workers
    from gristmill.runtime.wiring import open_services

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with open_services(settings) as services:
        if spec is not None:
            record_spec(services.metadata, spec, folder)
        workers = build_workers(services, names, spec=spec)
        for w in workers:
            console.print(
                styled(
                    "worker ",
                    (w.consumer, "bold"),
                    " consumes ",
                    (str(w.consumes), "cyan"),
                    f" on {settings.bus.backend} bus {mask_url(settings.bus_url())}",
                )
            )
        console.print("ready; SIGTERM or Ctrl-C stops after the event in hand", style="dim")
        await asyncio.gather(*(w.run(stop, concurrency=concurrency) for w in workers))
        return sum(w.handled for w in workers)


def worker(
    ctx: typer.Context,
    stage: Annotated[
        list[str] | None,
        typer.Option("--stage", help=f"Stage to run (repeatable): {', '.join(STAGE_NAMES)}."),
    ] = None,
    all_stages: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Run every stage, the scheduler and the score: triggers (scoring-batches, "
            "scoring-features) included.",
        ),
    ] = False,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Events each stage handles at once (threads).")
    ] = 1,
    spec: Annotated[
        Path | None,
        typer.Option(
            help="Pipeline spec for events outside any run (e.g. streamed batches); the "
            "events of a run follow the spec the run recorded."
        ),
    ] = None,
) -> None:
    """Run stages as long-lived consumers of their events.

    Start as many workers as you like, on one machine or several sharing a Redis/NATS bus
    and a PostgreSQL metadata store: workers of one stage share its events, and a
    redelivered event never does its work twice.

    \b
        gristmill worker --stage ingestion
        gristmill --bus redis --metadata postgres worker --all
        gristmill worker --stage scoring --stage scoring-batches    score new batches
        gristmill worker --stage scheduler --stage scoring     fire schedules (UTC)
        gristmill worker --stage monitoring      drift of the prediction log (gristmill drift)

    The scheduler fires the ticks of the recorded schedules (a source's `schedule:`, the
    spec's `score: {on: schedule}`), each tick once however many workers run it;
    `gristmill schedules` lists them. The score: triggers turn a new raw batch
    (scoring-batches) or feature set (scoring-features) into a score job when the spec
    says `score: {on: new_batch}`; the batches of other pipelines they pass over, recording
    nothing.
    """
    import asyncio

    from gristmill.config.spec import load_spec

    if all_stages == bool(stage):
        raise ConfigError("pass --stage NAME (repeatable) or --all, not both and not neither")
    names = ALL_STAGES if all_stages else tuple(stage or ())
    pipeline = load_spec(spec) if spec else None
    folder = spec.parent if spec else None
    handled = asyncio.run(serve_stages(settings_from(ctx), names, concurrency, pipeline, folder))
    console.print(f"stopped after handling {handled} event(s)")
    # Stopped, services closed: spare the interpreter's collections of the whole heap while
    # it exits (seconds of CPU with the learning libraries loaded — eight workers stopped
    # at once on two cores took 20 s to exit). Frozen objects are still freed; only the
    # search for cycles among them is skipped, and the process is ending.
    gc.freeze()


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Run")(worker)
