"""Verbs that look: ``ls`` runs and batches, ``show`` one object, ``lineage`` of an object."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gristmill.cli.console import console
from gristmill.cli.settings import read_metadata, stop_if_nothing_yet
from gristmill.cli.tables import print_json, print_table, table, when
from gristmill.errors import NotFoundError
from gristmill.stores.reports import LEADERBOARD_KIND

if TYPE_CHECKING:  # what the verbs read with is imported when they run (`--help` stays fast)
    from gristmill.stores.metadata import MetadataReader


class Kind(StrEnum):
    runs = "runs"
    batches = "batches"
    feature_sets = "feature-sets"
    reports = "reports"
    candidates = "candidates"


def ls(
    ctx: typer.Context,
    kind: Annotated[
        Kind,
        typer.Argument(help="What to list: runs, batches, feature-sets, reports, candidates."),
    ],
    source: Annotated[
        str | None, typer.Option(help="Only batches of this source / sets of this name.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """List runs, raw batches, feature sets, reports or model candidates, newest first.

    \b
        gristmill ls runs
        gristmill ls batches --source penguins --limit 5
        gristmill ls feature-sets
        gristmill ls reports --json
    """
    stop_if_nothing_yet(ctx, listing=True, as_json=as_json)
    from gristmill.cli.runs import list_runs, stale_window

    with read_metadata(ctx) as store:
        if kind is Kind.feature_sets:
            sets = store.feature_sets.list_feature_sets(name=source, limit=limit)
            rows = [asdict(f) for f in sets]
            shown = table(
                "feature set", "name", "rows", "columns", "inputs", "created", ids=("feature set",)
            )
            for f in sets:
                shown.add_row(
                    f.feature_set_id,
                    f.name,
                    f"{f.row_count:,}",
                    str(len(f.columns)),
                    str(len(f.inputs)),
                    when(f.created_at),
                )
        elif kind is Kind.candidates:
            found = store.candidates.list_candidates(limit=limit)
            rows = [asdict(c) for c in found]
            shown = table("candidate", "name", "algorithm", "status", "metrics", ids=("candidate",))
            for c in found:
                metrics = ", ".join(
                    f"{k}={v:.4g}" for k, v in c.metrics.items() if isinstance(v, int | float)
                )
                shown.add_row(c.candidate_id, c.name, c.algorithm, c.status, metrics or "-")
        elif kind is Kind.reports:
            reports = store.reports.list_reports(limit=limit)
            rows = [{k: v for k, v in asdict(r).items() if k != "body"} for r in reports]
            shown = table(
                "report",
                "kind",
                "subject",
                "status",
                "anomalies",
                "created",
                ids=("report", "subject"),
            )
            for r in reports:
                shown.add_row(
                    r.report_id,
                    r.kind,
                    r.subject,
                    r.status,
                    str(len(r.body.get("anomalies", []))),
                    when(r.created_at),
                )
        elif kind is Kind.runs:
            rows, shown = list_runs(store, limit, stale_window(ctx))
        else:
            batches = store.batches.list_batches(source=source, limit=limit)
            rows = [asdict(b) for b in batches]
            shown = table(
                "batch", "source", "rows", "columns", "bad rows", "created", ids=("batch",)
            )
            for b in batches:
                shown.add_row(
                    b.batch_id,
                    b.source,
                    f"{b.row_count:,}",
                    str(len(b.schema)),
                    str(b.bad_rows),
                    when(b.created_at),
                )
    if as_json:
        print_json(rows)
    elif rows:
        print_table(shown, console)
    elif source:
        console.print(f"no batches of source {source!r}; `gristmill ls batches` lists them all")
    else:
        console.print(f"no {kind.value} yet; try: gristmill run examples/penguins/pipeline.yaml")


def _find(
    store: MetadataReader, object_id: str, stale: timedelta
) -> tuple[str, str, dict[str, Any]]:
    from gristmill.cli.ids import resolve_id
    from gristmill.cli.runs import run_record

    kind, full, found = resolve_id(store, object_id)
    record = asdict(found)
    if kind == "run":
        record = run_record(store, found, stale)
    return kind, full, record


def _print_joined(joined: list[dict[str, Any]]) -> None:
    """The joined input rows' schema: each column, its type, the input it came from."""
    shown = table("column", "type", "from", title="joined inputs", title_justify="left")
    for column in joined:
        origin = str(column.get("from"))
        if column.get("column"):
            origin += f" ({column['column']})"
        shown.add_row(str(column.get("name")), str(column.get("type")), origin)
    print_table(shown, console)


def _print_feature_set(record: dict[str, Any]) -> None:
    selection = record.get("selection") or {}
    if selection.get("joined"):
        _print_joined(selection["joined"])
    scores = selection.get("scores") or {}
    shown = table("column", "type", "selection score", title="columns", title_justify="left")
    for column in record["columns"]:
        score = scores.get(column["name"])
        shown.add_row(column["name"], column["type"], "" if score is None else f"{score:.4g}")
    print_table(shown, console)
    console.print(
        f"  selection: {selection.get('method', 'all')} kept {len(selection.get('kept', []))} "
        f"of {len(scores) or len(selection.get('kept', []))} candidate features"
        + (f" ({selection['note']})" if selection.get("note") else ""),
        highlight=False,
    )
    fitted_on = selection.get("fitted_on") or {}
    if fitted_on:
        where = (
            f"the train subset of split {fitted_on['split_id']}"
            if fitted_on.get("split_id")
            else "all its rows (no model trains on it)"
        )
        key = " + ".join(fitted_on.get("key") or [])
        console.print(
            f"  fitted on: {where}, {fitted_on.get('rows', 0):,} rows · rows keyed by {key}",
            highlight=False,
            soft_wrap=True,
        )


def _print_report(record: dict[str, Any]) -> None:
    body = record["body"]
    anomalies = body.get("anomalies", [])
    console.print(
        f"  {body.get('row_count', 0):,} rows x {body.get('column_count', 0)} columns · "
        f"baseline: {body.get('baseline') or 'none'} · {len(anomalies)} anomalies",
        highlight=False,
    )
    if anomalies:
        shown = table("column", "kind", "message", title="anomalies", title_justify="left")
        for a in anomalies:
            shown.add_row(str(a.get("column")), str(a.get("kind")), str(a.get("message")))
        print_table(shown, console)
    stats = body.get("statistics", {}).get("columns", [])
    shown = table(
        "column",
        "kind",
        "missing",
        "min",
        "mean",
        "max",
        "distinct",
        title="statistics",
        title_justify="left",
    )
    for col in stats:
        shown.add_row(
            str(col.get("name")),
            str(col.get("kind", "")),
            _fmt(col.get("missing_share")),
            _fmt(col.get("min")),
            _fmt(col.get("mean")),
            _fmt(col.get("max")),
            str(col.get("distinct", "")),
        )
    print_table(shown, console)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def show(
    ctx: typer.Context,
    id: Annotated[
        str, typer.Argument(help="An id (run, batch, fs_, rep_, lb_, mc_, sp_), or its start.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """Show a run (its stage executions, its leaderboard), a raw batch (its schema), a
    feature set (fs_…, its columns and selection scores), a report (rep_… validation, lb_…
    leaderboard: ranking, gate, pictures), a model candidate (mc_…) or a split (sp_…).

    \b
        gristmill show 01M8F62MRZACAVEHTA8B9TG6W0
        gristmill show 01M8F62M          # a unique prefix is enough
        gristmill show fs_3fa9           # for every kind of id
        gristmill show lb_5e10           # a leaderboard: ranking, gate, pictures
    """
    stop_if_nothing_yet(ctx, listing=False)
    from gristmill.cli.runs import print_run, stale_window
    from gristmill.cli.summary import print_leaderboard_report

    with read_metadata(ctx) as store:
        kind, full_id, record = _find(store, id, stale_window(ctx))
    if as_json:
        console.print_json(json.dumps(record, default=str))
        return
    if kind == "report" and record.get("kind") == LEADERBOARD_KIND:
        print_leaderboard_report(record)
        return
    console.print(f"{kind} {full_id}", style="bold")
    hidden = (
        "schema",
        "executions",
        "summary",
        "files",
        "audit",
        "extra",
        "body",
        "columns",
        "selection",
        "leaderboards",
        "spec",
        "pending",
    )
    for key, value in record.items():
        if key not in hidden:
            console.print(f"  {key}: {value}", highlight=False, soft_wrap=True)
    if kind == "feature set":
        _print_feature_set(record)
    elif kind == "report" and record.get("kind") == "validation":
        _print_report(record)
    elif kind == "report":
        console.print_json(json.dumps(record.get("body", {}), default=str))
    elif kind == "batch":
        shown = table("column", "type", "nullable", title="schema", title_justify="left")
        for col in record["schema"]:
            shown.add_row(str(col.get("name")), str(col.get("type")), str(col.get("nullable")))
        print_table(shown, console)
    elif kind == "run":
        print_run(record)


def _lineage_node(store: MetadataReader, object_id: str) -> str:
    """The lineage node ``object_id`` names: an id, a source's name, a file (by any path
    or ``file://`` URL of it, present or deleted), or an id's unique start."""
    from gristmill.cli.ids import resolve_id
    from gristmill.stores.lineage import file_node, file_spellings

    if object_id.startswith("file://"):
        object_id = file_node(object_id)
    candidates = [object_id, f"source:{object_id}", file_node(object_id)]
    for candidate in dict.fromkeys(candidates):
        spellings = file_spellings(candidate) if candidate == candidates[2] else [candidate]
        if any(store.lineage.parents(s) or store.lineage.children(s) for s in spellings):
            return candidate
    try:
        return resolve_id(store, object_id)[1]
    except NotFoundError:
        raise NotFoundError(
            f"no lineage recorded for {object_id!r}; give a batch id (or its start), a "
            "source name or a file path"
        ) from None


def lineage(
    ctx: typer.Context,
    id: Annotated[
        str, typer.Argument(help="A batch id (or its start), a source name or a file path.")
    ],
    depth: Annotated[int, typer.Option(min=1, help="How many hops to follow each way.")] = 10,
) -> None:
    """Show where an object came from (upstream) and what was made from it (downstream).

    \b
        gristmill lineage 01M8F62MRZ      # a batch: its file and source
        gristmill lineage penguins         # a source: its files and batches
        gristmill lineage data/new.csv     # a file: its batches, the jobs that scored it
    """
    stop_if_nothing_yet(ctx, listing=False)
    from rich.text import Text
    from rich.tree import Tree

    from gristmill.stores.lineage import lineage_graph

    with read_metadata(ctx) as store:
        node = _lineage_node(store, id)
        ancestors, descendants = lineage_graph(store.lineage, node, depth=depth)
    tree = Tree(Text(str(node), style="bold"))
    up = tree.add("upstream")
    for edge in ancestors:
        up.add(f"{edge.parent_kind} {edge.parent_id} → {edge.child_kind} {edge.child_id}")
    down = tree.add("downstream")
    for edge in descendants:
        down.add(f"{edge.child_kind} {edge.child_id} ← {edge.parent_kind} {edge.parent_id}")
    console.print(tree, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Inspect")(ls)
    app.command(rich_help_panel="Inspect")(show)
    app.command(rich_help_panel="Inspect")(lineage)
