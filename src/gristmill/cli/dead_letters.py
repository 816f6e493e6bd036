"""``gristmill dead-letters ls | show | replay``: the events a stage gave up on."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from gristmill.cli.console import console
from gristmill.cli.settings import settings_from, stop_if_nothing_yet
from gristmill.cli.tables import print_table

if TYPE_CHECKING:  # settings, the bus and the stores are imported when a verb runs
    from gristmill.config.settings import Settings
    from gristmill.stores.dead_letters import DeadLetter

HELP = """\
The events a stage gave up on (after the bus's retry budget): list, show, replay.

A dead letter is named by its id, or by any unique start of it (as other ids are).

\b
    gristmill dead-letters ls                  newest first, with their ids
    gristmill dead-letters show 01J9Z3         one in full: why, and its event
    gristmill dead-letters replay 01J9Z3       publish its event again
"""

ID_HELP = "A dead letter's id, or its unique start; list them with `gristmill dead-letters ls`."

app = typer.Typer(help=HELP, no_args_is_help=True)


REPLAY_HINT = (
    "note: if the event failed in custom code you have since fixed, the fix is used when the "
    "code is a module beside the spec (workers read such modules again once their files "
    "change); code installed as a package, or run by a dask cluster's workers, stays as it "
    "was imported until those processes restart: restart them, then replay"
)


def _collected(settings: Settings) -> list[DeadLetter]:
    import asyncio

    from gristmill.runtime.dead_letters import collect
    from gristmill.runtime.wiring import open_services

    async def go() -> list[DeadLetter]:
        async with open_services(settings) as services:
            await collect(services.bus, services.metadata.dead_letters)
            return services.metadata.dead_letters.list_letters(limit=1000)

    return asyncio.run(go())


@app.command("ls")
def ls(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 50,
) -> None:
    """List dead letters, newest first (collecting those waiting on the bus first).

    \b
        gristmill dead-letters ls
        gristmill dead-letters ls --limit 5
    """
    if settings_from(ctx).bus.backend == "sqlite":  # dead letters live in the home too
        stop_if_nothing_yet(ctx, listing=True)
    letters = _collected(settings_from(ctx))[:limit]
    if not letters:
        console.print("no dead letters")
        return
    table = Table("id", "dead-lettered", "group", "event", "attempts", "error", "replayed as")
    for letter in letters:
        table.add_row(
            letter.letter_id,
            letter.dead_lettered_at.strftime("%Y-%m-%d %H:%M:%S"),
            letter.group,
            letter.event_type,
            str(letter.attempts),
            letter.error if len(letter.error) <= 60 else letter.error[:59] + "…",
            letter.replayed_as or "",
        )
    print_table(table, console)


@app.command("show")
def show(
    ctx: typer.Context,
    letter_id: Annotated[str, typer.Argument(metavar="ID", help=ID_HELP)],
) -> None:
    """One dead letter: who gave up, why, and the original event.

    \b
        gristmill dead-letters show 01J9Z3K4TW8Q2N6M5R7V0XBCDE
        gristmill dead-letters show 01J9Z3         a unique start is enough
    """
    import asyncio

    from gristmill.cli.ids import resolve_dead_letter

    if settings_from(ctx).bus.backend == "sqlite":
        stop_if_nothing_yet(ctx, listing=False)
    from gristmill.runtime.dead_letters import collect
    from gristmill.runtime.wiring import open_services

    settings = settings_from(ctx)

    async def go() -> DeadLetter:
        async with open_services(settings) as services:
            await collect(services.bus, services.metadata.dead_letters)
            return resolve_dead_letter(services.metadata, letter_id)[1]

    letter = asyncio.run(go())
    console.print(f"dead letter {letter.letter_id}", style="bold")
    console.print(f"group:          {letter.group}")
    console.print(f"event type:     {letter.event_type}")
    console.print(f"attempts:       {letter.attempts}")
    console.print(f"dead-lettered:  {letter.dead_lettered_at.isoformat()}")
    console.print(f"error:          {letter.error}", highlight=False, soft_wrap=True)
    if letter.replayed_as:
        console.print(f"replayed as:    {letter.replayed_as} ({letter.replayed_at})")
    console.print("original event:")
    console.print_json(json.dumps(letter.event))


@app.command("replay")
def replay_command(
    ctx: typer.Context,
    letter_id: Annotated[str, typer.Argument(metavar="ID", help=ID_HELP)],
    again: Annotated[
        bool, typer.Option("--again", help="Replay a letter that was replayed already.")
    ] = False,
) -> None:
    """Publish the original event again, under a fresh id (its attempts start over).

    Fixed custom code first? Workers read modules kept beside the spec again once their
    files change; code installed as a package, or run by a dask cluster, needs those
    workers restarted before the replay.

    \b
        gristmill dead-letters replay 01J9Z3K4TW8Q2N6M5R7V0XBCDE
        gristmill dead-letters replay 01J9Z3           a unique start is enough
        gristmill dead-letters replay 01J9Z3 --again   once more, after a replay
    """
    import asyncio

    from gristmill.cli.ids import resolve_dead_letter
    from gristmill.runtime.dead_letters import collect, replay
    from gristmill.runtime.wiring import open_services

    settings = settings_from(ctx)

    async def go() -> str:
        async with open_services(settings) as services:
            await collect(services.bus, services.metadata.dead_letters)
            full_id = resolve_dead_letter(services.metadata, letter_id)[0]
            copy = await replay(services.bus, services.metadata.dead_letters, full_id, again=again)
            return f"replayed {copy.type} as event {copy.id} (run {copy.correlation_id})"

    console.print(asyncio.run(go()))
    console.print(REPLAY_HINT, style="dim")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="dead-letters", rich_help_panel="Run")
