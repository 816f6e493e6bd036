"""The readable end-of-run summary printed by ``run`` and ``ingest``."""

from __future__ import annotations

from rich.table import Table

from gristmill.cli.console import console
from gristmill.core.events import RAW_INGESTED
from gristmill.runtime.pipeline_run import RunReport
from gristmill.stages.base import STAGE_FAILED

STATUS_STYLE = {"succeeded": "green", "partial": "yellow", "failed": "red", "running": "cyan"}


def print_run_summary(report: RunReport) -> None:
    run = report.run
    style = STATUS_STYLE.get(run.status, "white")
    console.print(
        f"\n[bold]run {run.run_id}[/] of [bold]{run.pipeline}[/]: "
        f"[{style}]{run.status}[/] in {report.seconds:.2f}s"
    )
    ingested = report.of_type(RAW_INGESTED)
    if ingested:
        table = Table(title="ingested", title_justify="left")
        for column in ("source", "batch", "rows", "columns", "bad rows", "note"):
            table.add_column(column, justify="right" if column in ("rows", "columns") else "left")
        for event in ingested:
            p = event.payload
            note = "new" if p.get("created", True) else "same bytes as an earlier batch"
            table.add_row(
                str(p.get("source")),
                str(p.get("batch_id")),
                f"{p.get('rows', 0):,}",
                str(len(p.get("schema", []))),
                str(p.get("bad_rows", 0)) + (" (quarantined)" if p.get("quarantine") else ""),
                note,
            )
        console.print(table)
    heard = {e.key for e in report.events}
    quiet = [name for name in report.sources if name not in heard]
    if quiet:
        console.print("nothing new from: " + ", ".join(quiet), style="dim")
    for event in report.of_type(STAGE_FAILED):
        console.print(
            f"[red]✗ {event.payload.get('stage')} failed for {event.key}:[/] "
            f"{event.payload.get('error')}",
            highlight=False,
            soft_wrap=True,
        )
    if report.skipped_sections:
        console.print(
            "skipped (stages not built yet): " + ", ".join(report.skipped_sections),
            style="dim",
        )
    if ingested:
        console.print(
            f"next: gristmill ls batches · gristmill show {ingested[0].payload.get('batch_id')}"
            f" · gristmill lineage {ingested[0].payload.get('batch_id')}",
            style="dim",
            soft_wrap=True,
        )
