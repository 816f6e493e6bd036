"""``gristmill feedback FILE``: actual outcomes from a file, published for the feedback stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gristmill.cli.console import console
from gristmill.cli.settings import opened_metadata, settings_from


def feedback(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="A .csv or .parquet file: request_id[,row],actual or entity[,at],actual.",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(help="The model the outcomes are of (needed for entity outcomes)."),
    ] = None,
    per_message: Annotated[int, typer.Option(min=1, help="Outcomes per bus message.")] = 1000,
) -> None:
    """Send actual outcomes of served predictions, to measure their live quality.

    Each row names a prediction by the request_id its answer carried (and row, for a
    request of several rows) or by entity (and at: the entity's last prediction at or
    before that time, default now), and gives what actually happened in actual. Every row
    is checked first; then they are published as feedback.received events, which a
    `gristmill worker --stage feedback` joins to the logged predictions. Prediction
    servers take the same outcomes as POST /v1/feedback.

    \b
        gristmill feedback labels.csv                  request_id,actual
        gristmill feedback churned.parquet --model churn   entity,at,actual
    """
    import asyncio

    from gristmill.runtime.feedback_files import feedback_events
    from gristmill.runtime.wiring import build_bus

    settings = settings_from(ctx)
    events = feedback_events(file, model, per_event=per_message)
    if model is not None:
        from gristmill.runtime.serving_views import check_model

        with opened_metadata(ctx) as metadata:
            check_model(metadata.registry, model)  # NotFoundError naming it: exit 1

    async def publish() -> None:
        settings.home.mkdir(parents=True, exist_ok=True)  # the embedded bus's folder
        bus = build_bus(settings)
        await bus.open()
        try:
            await bus.publish(events)
        finally:
            await bus.close()

    asyncio.run(publish())
    outcomes = sum(len(e.payload["outcomes"]) for e in events)
    console.print(
        f"sent {outcomes} outcome(s) in {len(events)} feedback.received event(s); a "
        "`gristmill worker --stage feedback` joins them to the logged predictions"
    )


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Models")(feedback)
