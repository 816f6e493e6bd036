"""Verbs that look: ``ls`` runs and batches, ``show`` one object, ``lineage`` of an object."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from gristmill.cli.console import console
from gristmill.cli.settings import settings_from
from gristmill.errors import NotFoundError
from gristmill.runtime.wiring import build_metadata
from gristmill.stores.lineage import lineage_graph
from gristmill.stores.metadata import MetadataStore


class Kind(StrEnum):
    runs = "runs"
    batches = "batches"


@contextmanager
def _metadata(ctx: typer.Context) -> Iterator[MetadataStore]:
    settings = settings_from(ctx)
    settings.home.mkdir(parents=True, exist_ok=True)
    store = build_metadata(settings)
    store.open()
    try:
        yield store
    finally:
        store.close()


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def ls(
    ctx: typer.Context,
    kind: Annotated[Kind, typer.Argument(help="What to list: runs or batches.")],
    source: Annotated[str | None, typer.Option(help="Only batches of this source.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
) -> None:
    """List runs or raw batches, newest first.

    gristmill ls runs
    gristmill ls batches --source penguins
    """
    with _metadata(ctx) as store:
        if kind is Kind.runs:
            table = Table("run", "pipeline", "status", "started", "seconds")
            for run in store.runs.list_runs(limit=limit):
                secs = run.summary.get("seconds", "")
                table.add_row(
                    run.run_id, run.pipeline, run.status, _when(run.started_at), str(secs)
                )
        else:
            table = Table("batch", "source", "rows", "columns", "bad rows", "created")
            for b in store.batches.list_batches(source=source, limit=limit):
                table.add_row(
                    b.batch_id,
                    b.source,
                    f"{b.row_count:,}",
                    str(len(b.schema)),
                    str(b.bad_rows),
                    _when(b.created_at),
                )
    if table.row_count == 0:
        console.print(f"no {kind.value} yet; try: gristmill run examples/penguins/pipeline.yaml")
    else:
        console.print(table)


def _find(store: MetadataStore, object_id: str) -> tuple[str, dict[str, Any]]:
    run = store.runs.find_run(object_id)
    if run is not None:
        executions = store.executions.list_executions(object_id)
        audit = store.audit.list_entries(subject=object_id)
        return "run", {
            **asdict(run),
            "executions": [asdict(e) for e in executions],
            "audit": [asdict(a) for a in audit],
        }
    try:
        return "batch", asdict(store.batches.get_batch(object_id))
    except NotFoundError:
        pass
    raise NotFoundError(
        f"no run or batch with id {object_id!r}; list them with `gristmill ls runs` "
        "or `gristmill ls batches`"
    )


def show(
    ctx: typer.Context,
    object_id: Annotated[str, typer.Argument(help="A run id or a batch id.", metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """Show one run (with its stage executions) or one raw batch (with its schema)."""
    with _metadata(ctx) as store:
        kind, record = _find(store, object_id)
    if as_json:
        console.print_json(json.dumps(record, default=str))
        return
    console.print(f"[bold]{kind} {object_id}[/]")
    for key, value in record.items():
        if key in ("schema", "executions", "summary", "files", "audit"):
            continue
        console.print(f"  {key}: {value}", highlight=False)
    if kind == "batch":
        table = Table("column", "type", "nullable", title="schema", title_justify="left")
        for col in record["schema"]:
            table.add_row(str(col.get("name")), str(col.get("type")), str(col.get("nullable")))
        console.print(table)
    else:
        table = Table(
            "stage",
            "status",
            "input event",
            "outputs",
            "error",
            title="executions",
            title_justify="left",
        )
        for e in record["executions"]:
            table.add_row(
                e["stage"],
                e["status"],
                str(e["input_event_id"]),
                str(len(e["outputs"])),
                str(e["error"] or ""),
            )
        console.print(table)
        for entry in record["audit"]:
            console.print(f"  {_when(entry['at'])} {entry['actor']} {entry['action']}", style="dim")


def lineage(
    ctx: typer.Context,
    object_id: Annotated[
        str, typer.Argument(help="Any id: a batch, a source, a file.", metavar="ID")
    ],
    depth: Annotated[int, typer.Option(help="How many hops to follow each way.")] = 10,
) -> None:
    """Show where an object came from (upstream) and what was made from it (downstream)."""
    with _metadata(ctx) as store:
        ancestors, descendants = lineage_graph(store.lineage, object_id, depth=depth)
    if not ancestors and not descendants:
        raise NotFoundError(f"no lineage recorded for {object_id!r}; is the id right?")
    tree = Tree(f"[bold]{object_id}[/]")
    up = tree.add("upstream")
    for edge in ancestors:
        up.add(f"{edge.parent_kind} {edge.parent_id} → {edge.child_kind} {edge.child_id}")
    down = tree.add("downstream")
    for edge in descendants:
        down.add(f"{edge.child_kind} {edge.child_id} ← {edge.parent_kind} {edge.parent_id}")
    console.print(tree)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Inspect")(ls)
    app.command(rich_help_panel="Inspect")(show)
    app.command(rich_help_panel="Inspect")(lineage)
