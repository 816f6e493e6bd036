"""Feature verbs: ``prepare`` feature sets from the latest batches, ``lookup`` online vectors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gristmill.cli.console import console
from gristmill.cli.ids import resolve_prefixed
from gristmill.cli.settings import settings_from
from gristmill.config.spec import load_spec
from gristmill.errors import ConfigError
from gristmill.features.online_views import OnlineView
from gristmill.features.online_views import lookup as online_lookup
from gristmill.features.prepare import Prepared, prepare
from gristmill.runtime.wiring import Services, open_services
from gristmill.stores.features import VectorLookup
from gristmill.stores.raw import RawBatch
from gristmill.training.splits import split_for


def _prepared_table(results: list[Prepared]) -> Table:
    table = Table(title="feature sets", title_justify="left")
    for column in ("feature set", "id", "rows", "features", "online", "validation"):
        table.add_column(column, no_wrap=column == "id")
    for item in results:
        fs = item.feature_set
        warnings = sum(len(r.body.get("anomalies", [])) for r in item.reports)
        verdict = (
            "stopped" if item.stopped else (f"{warnings} warning(s)" if warnings else "passed")
        )
        table.add_row(
            item.name,
            fs.feature_set_id if fs else "-",
            f"{fs.row_count:,}" if fs else "-",
            str(len(fs.columns)) if fs else "-",
            f"{item.materialized:,}",
            verdict + ("" if item.created or fs is None else " (already computed)"),
        )
    return table


def _latest_file_batch(services: Services, source: str) -> RawBatch | None:
    """The newest batch of ``source`` that is not a streamed micro-batch (streams only
    feed the online store; a feature set is fitted on whole arrivals)."""
    batches = services.metadata.batches.list_batches(source=source, limit=1000)
    return next((b for b in batches if not b.origin.startswith("stream:")), None)


def prepare_command(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="The pipeline spec (YAML).")],
    feature_set: Annotated[
        list[str] | None,
        typer.Option("--feature-set", "-f", help="Only this feature set (repeatable)."),
    ] = None,
) -> None:
    """Compute feature sets from the latest raw batch of each of their sources.

    Validates each input batch, fits the feature pipeline, stores the set offline and
    materializes the newest vectors online. The set train: uses is split first (split:)
    and fitted on its training rows only. Already computed? It is found, not redone.

    \b
        gristmill prepare examples/penguins/pipeline.yaml
        gristmill prepare pipeline.yaml -f penguins_v1
    """
    pipeline = load_spec(spec)
    sets = pipeline.features or {}
    chosen = feature_set or list(sets)
    unknown = [name for name in chosen if name not in sets]
    if unknown or not sets:
        known = ", ".join(sets) or "none"
        raise ConfigError(
            f"{spec} has no feature set {unknown[0] if unknown else ''!r}; known: {known}"
        )

    async def go() -> list[Prepared]:
        async with open_services(settings_from(ctx)) as services:
            stores = services.feature_stores()
            results = []
            for name in chosen:
                fs = sets[name]
                inputs = {s: _latest_file_batch(services, s) for s in fs.from_}
                missing = [s for s, b in inputs.items() if b is None]
                if missing:
                    raise ConfigError(
                        f"feature set {name!r} needs batches of {', '.join(missing)}; ingest "
                        f"them first: gristmill ingest {missing[0]} --spec {spec}"
                    )
                found = {s: b for s, b in inputs.items() if b}
                fit_for = split_for(pipeline, name, stores)
                with console.status(f"preparing {name}"):
                    results.append(
                        await asyncio.to_thread(prepare, name, fs, found, stores, split=fit_for)
                    )
            return results

    results = asyncio.run(go())
    console.print(_prepared_table(results))
    for item in results:
        if item.stopped:
            failed = [r.report_id for r in item.reports if r.status == "failed"]
            console.print(
                f"[red]✗ validation stopped {item.name}:[/] {len(item.anomalies)} anomalies; "
                f"see gristmill show {failed[0] if failed else item.reports[0].report_id}",
                highlight=False,
                soft_wrap=True,
            )
    if any(item.stopped for item in results):
        raise typer.Exit(1)


def lookup(
    ctx: typer.Context,
    view: Annotated[str, typer.Argument(help="The feature set's name (its online view).")],
    entities: Annotated[list[str], typer.Argument(help="Entity keys to look up.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="The vectors of this model's pipeline: a candidate id (mc_…), "
            "<model>@<alias> or <model>/<version>.",
        ),
    ] = None,
    pipeline: Annotated[
        str | None,
        typer.Option("--pipeline", help="The vectors of this fitted pipeline (sha256:…)."),
    ] = None,
    feature: Annotated[
        list[str] | None, typer.Option("--feature", help="Only these features (repeatable).")
    ] = None,
) -> None:
    """Look up the newest feature vectors of entities in the online store.

    Every vector is one fitted pipeline's: the newest feature set's by default, or a
    model's (--model) or any pipeline's (--pipeline). Each entity reads found, missing
    (no vector of that pipeline), expired (older than the TTL) or superseded (another
    pipeline has a newer vector of the entity).

    \b
        gristmill lookup penguins_v1 p0001 p0002
        gristmill lookup penguins_v1 p0001 --model birds@champion
    """

    async def go() -> tuple[OnlineView, list[VectorLookup]]:
        async with open_services(settings_from(ctx)) as services:
            chosen = model
            if chosen and "@" not in chosen and "/" not in chosen:
                chosen, _ = resolve_prefixed(services.metadata, "mc_", chosen)
            return online_lookup(
                services.feature_stores(),
                view,
                entities,
                model=chosen,
                pipeline=pipeline,
                features=feature,
            )

    chosen_view, found = asyncio.run(go())
    rows = {
        "feature_set": chosen_view.name,
        "pipeline": chosen_view.pipeline,
        "feature_set_id": chosen_view.feature_set_id,
        "used_by": list(chosen_view.used_by),
        "entities": {item.entity: _shown(item) for item in found},
    }
    console.print_json(json.dumps(rows, default=str))
    if any(not item.found for item in found):
        console.print(
            "missing: this pipeline has no vector of the entity; expired: its vector is older "
            "than the TTL; superseded: another pipeline has a newer vector of the entity "
            "(look it up with that pipeline, or prepare and promote a model of it)",
            style="dim",
        )


def _shown(item: VectorLookup) -> dict[str, Any]:
    """One entity's lookup as JSON: its status, times, origin and values."""
    shown: dict[str, Any] = {"status": item.status}
    if item.event_time is not None:
        shown["event_time"] = item.event_time.isoformat()
    if item.newer_time is not None:
        shown["newer_time"] = item.newer_time.isoformat()
    if item.vector is not None:
        written = item.vector.written_at
        shown["written_at"] = written.isoformat() if written else None
        shown["feature_set_id"] = item.vector.feature_set_id
        shown["values"] = item.vector.values
    return shown


def register(app: typer.Typer) -> None:
    app.command("prepare", rich_help_panel="Run")(prepare_command)
    app.command(rich_help_panel="Inspect")(lookup)
