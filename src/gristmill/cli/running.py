"""Verbs that make things happen: ``run`` a pipeline, ``ingest`` one source."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gristmill.cli.adhoc import adhoc_source, delimiter_of, names_of, unknown_source
from gristmill.cli.console import console, quiet_unless_verbose, styled
from gristmill.cli.settings import settings_from
from gristmill.errors import ConfigError

if TYPE_CHECKING:  # the runtime is imported by the verbs when they run: `--help` stays fast
    from gristmill.config.settings import Settings
    from gristmill.config.spec import PipelineSpec
    from gristmill.runtime.pipeline_run import RunReport
    from gristmill.runtime.wiring import Services
    from gristmill.stores.specs import StoredSpec

DEFAULT_SPECS = ("pipeline.yaml", "gristmill.yaml")


def _execute(
    settings: Settings,
    spec: PipelineSpec,
    queue: bool,
    only: list[str] | None = None,
    folder: Path | None = None,
    *,
    command: str,
    spec_file: Path | None = None,
) -> RunReport | None:
    import asyncio

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from gristmill.core.events import RAW_INGESTED, STAGE_FAILED, Event
    from gristmill.runtime.pipeline_run import run_pipeline
    from gristmill.runtime.wiring import open_services

    async def go() -> RunReport | None:
        # the summary shows each failure; the worker's own warning would repeat it
        with quiet_unless_verbose("gristmill.runtime.worker"):
            return await _go()

    async def _go() -> RunReport | None:
        async with open_services(settings) as services:
            if queue:
                await _queue(services, spec, only, folder, spec_file)
                return None
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", markup=False),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as progress:
                tasks = {
                    name: progress.add_task(f"ingesting {name}", total=1)
                    for name in spec.sources
                    if only is None or name in only
                }

                def on_event(event: Event) -> None:
                    if event.type in (RAW_INGESTED, STAGE_FAILED) and event.key in tasks:
                        progress.update(tasks[event.key], completed=1)

                def on_progress(source: str, rows: int, size: int | None) -> None:
                    if source in tasks:
                        progress.update(
                            tasks[source], description=f"ingesting {source}: {rows:,} rows"
                        )

                return await run_pipeline(
                    spec,
                    services,
                    on_event=on_event,
                    on_progress=on_progress,
                    only=only,
                    folder=folder,
                    command=command,
                    spec_file=spec_file,
                )

    return asyncio.run(go())


async def _queue(
    services: Services,
    spec: PipelineSpec,
    only: list[str] | None,
    folder: Path | None,
    spec_file: Path | None = None,
) -> None:
    """Record a run following ``spec`` (so any worker finds the spec through the events'
    ``correlation_id``) and announce its sources; workers do the rest."""
    from gristmill.core.ids import new_id
    from gristmill.runtime.pipeline_run import source_events
    from gristmill.runtime.run_records import start_run
    from gristmill.stages.spec_checks import preflight
    from gristmill.stores.run_status import QUEUE_COMMAND

    preflight(spec)
    run_id = new_id()
    events = source_events(spec, run_id, only)
    run = start_run(
        services.metadata,
        spec,
        command=QUEUE_COMMAND,
        folder=folder,
        spec_file=spec_file,
        run_id=run_id,
        announced=events,
        in_process=False,  # workers do its work; its status is read from their executions
        sources=[e.key for e in events],
    )
    await services.bus.publish(events)
    for event in events:
        console.print(styled("queued source.available for ", (event.key, "bold"), f" ({event.id})"))
    console.print(
        f"run {run.run_id} (spec {run.spec_digest}) is queued; workers run it: "
        "gristmill worker --all"
    )


def run(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="The pipeline spec (YAML).")],
) -> None:
    """Run a whole pipeline on the configured backends and print a summary.

    Every source is ingested (concurrently) through the bus; stages not built yet are
    reported as skipped. Example:

    \b
        gristmill run examples/penguins/pipeline.yaml
    """
    from gristmill.cli.summary import print_run_summary
    from gristmill.config.spec import load_spec

    report = _execute(
        settings_from(ctx),
        load_spec(spec),
        queue=False,
        folder=spec.parent,
        command="run",
        spec_file=spec,
    )
    if report is not None:
        print_run_summary(report)
        if report.run.status != "succeeded":
            raise typer.Exit(1)


class Format(StrEnum):
    csv = "csv"
    parquet = "parquet"
    jsonl = "jsonl"
    folder = "folder"


class BadRows(StrEnum):
    fail = "fail"
    quarantine = "quarantine"


class SchemaChange(StrEnum):
    fail = "fail"
    allow = "allow"


def ingest(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="A source name from the spec, or a file/folder path.")
    ],
    spec_file: Annotated[
        Path | None,
        typer.Option("--spec", "-s", help="Spec naming the source (default: ./pipeline.yaml)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Source name for a path (default: file stem).")
    ] = None,
    fmt: Annotated[
        Format | None, typer.Option("--format", help="Format of a path (default: by extension).")
    ] = None,
    on_bad_rows: Annotated[
        BadRows, typer.Option(help="For a path: fail, or quarantine bad rows beside the batch.")
    ] = BadRows.fail,
    on_schema_change: Annotated[
        SchemaChange, typer.Option(help="For a path: fail, or allow a schema that changed.")
    ] = SchemaChange.fail,
    pattern: Annotated[
        str | None, typer.Option(help="For a folder: glob of the files to take, e.g. '*.csv'.")
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(
            help=r"For a CSV path: the field separator (default ',', a tab for .tsv); "
            r"'\t' or tab: a tab."
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            help="For a CSV path without a header row: its columns' names, in order, "
            "comma-separated; its first line is then data (as pandas' names=). Raw batches "
            "keep every column that arrived: choose the ones to use in the spec's features.",
        ),
    ] = None,
    queue: Annotated[
        bool, typer.Option("--queue", help="Only announce source.available for workers.")
    ] = False,
) -> None:
    """Ingest one source into the raw store and announce raw.ingested.

    SOURCE is a name from the spec, or a path ingested ad hoc. The summary says which type
    each column was read as (inferred, unless the spec's source declares `columns`).

    \b
        gristmill ingest customers --spec pipeline.yaml
        gristmill ingest data/penguins.csv --name penguins
        gristmill ingest landing/ --format folder --on-bad-rows quarantine
        gristmill ingest sales.txt --format csv --delimiter ';'
        gristmill ingest export.csv --columns id,when,amount   a file without a header
    """
    from gristmill.cli.summary import print_column_types, print_run_summary
    from gristmill.config.spec import load_spec, parse_spec

    target = Path(source)
    if target.exists():
        src = adhoc_source(
            target,
            name,
            fmt.value if fmt else None,
            on_bad_rows=on_bad_rows.value,
            on_schema_change=on_schema_change.value,
            pattern=pattern,
            delimiter=delimiter_of(delimiter),
            names=names_of(columns),
        )
        spec = parse_spec({"name": "adhoc", "sources": {src.name: src.model_dump()}})
        only, folder, read_from = None, None, None
    else:
        spec_path = spec_file or next((Path(p) for p in DEFAULT_SPECS if Path(p).exists()), None)
        full = None if spec_path is None else load_spec(spec_path)
        if full is None or spec_path is None or source not in full.sources:
            raise ConfigError(unknown_source(source, spec_path, full))
        if delimiter is not None or columns is not None:
            raise ConfigError(
                f"--delimiter and --columns are for a path; {source!r} is a source of "
                f"{spec_path}: set `delimiter:` or `names:` under sources.{source} there"
            )
        spec, only, folder, read_from = full, [source], spec_path.parent, spec_path
    report = _execute(
        settings_from(ctx),
        spec,
        queue=queue,
        only=only,
        folder=folder,
        command="ingest",
        spec_file=read_from,
    )
    if report is not None:
        print_run_summary(report)
        print_column_types(report, spec)
        if report.run.status != "succeeded":
            raise typer.Exit(1)


def send(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="The stream: a source its spec marks `stream: true`.")
    ],
    file: Annotated[Path, typer.Argument(help="JSON Lines file of records to append.")],
    per_message: Annotated[int, typer.Option(min=1, help="Records per bus message.")] = 100,
    spec_file: Annotated[
        Path | None,
        typer.Option("--spec", "-s", help="A spec naming the stream; it is recorded for workers."),
    ] = None,
) -> None:
    """Append records to a stream: publish them as records.appended events on the bus.

    A `gristmill worker --stage stream-ingestion` writes them to the raw store in
    micro-batches (by size or time) and announces raw.ingested for each. The stream must be
    a source of a spec the metadata store knows (a run, a queued run or an earlier
    `send --spec` recorded it), so that workers can tell which spec prepares it, and the
    spec must mark it `stream: true` (without --spec, the newest recorded spec naming it
    decides). When the source declares `columns`, every record must carry each declared
    field (null for no value) with a value of its type. Nothing is sent unless all fit.

    \b
        gristmill send clicks events.jsonl --spec pipeline.yaml
        gristmill send clicks more.jsonl
    """
    import asyncio

    from gristmill.config.spec import load_spec
    from gristmill.runtime.run_records import record_spec
    from gristmill.runtime.sending import check_records, stream_source
    from gristmill.runtime.stream import read_numbered_records, records_event
    from gristmill.runtime.wiring import open_services

    spec = load_spec(spec_file) if spec_file else None
    if spec is not None:
        stream = stream_source(spec, source, origin=str(spec_file))
    numbered = read_numbered_records(file)
    if spec is not None:
        check_records(numbered, stream, file=file, origin=str(spec_file))
    records = [record for _, record in numbered]
    events = [
        records_event(source, records[i : i + per_message])
        for i in range(0, len(records), per_message)
    ]

    async def go() -> None:
        async with open_services(settings_from(ctx)) as services:
            specs = services.metadata.specs
            if spec is not None and spec_file is not None:
                record_spec(services.metadata, spec, spec_file.parent)
            else:
                _check_against_recorded(specs.specs_naming(source, limit=1), source, numbered, file)
            await services.bus.publish(events)

    asyncio.run(go())
    console.print(f"published {len(records)} record(s) in {len(events)} message(s) to {source!r}")


def _check_against_recorded(
    recorded: list[StoredSpec], source: str, numbered: list[tuple[int, Any]], file: Path
) -> None:
    """The checks of ``send --spec``, against the newest recorded spec naming ``source``."""
    from gristmill.config.spec import parse_spec
    from gristmill.runtime.sending import check_records, stream_source

    if not recorded:
        raise ConfigError(
            f"no pipeline spec known to the metadata store names a source {source!r}, "
            "so no worker could tell what to do with its records; pass --spec FILE "
            f"(a spec with sources.{source}), or check the stream's name"
        )
    origin = f"the recorded spec of pipeline {recorded[0].pipeline!r}"
    stream = stream_source(parse_spec(recorded[0].body, origin=origin), source, origin=origin)
    check_records(numbered, stream, file=file, origin=origin)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Run")(send)
    app.command(rich_help_panel="Run")(run)
    app.command(rich_help_panel="Run")(ingest)
