"""Feature verbs: ``prepare`` feature sets from the latest batches, ``lookup`` online vectors."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from gristmill.cli.console import console, err_console, print_error, styled
from gristmill.cli.settings import settings_from, stop_if_nothing_yet
from gristmill.cli.tables import print_table
from gristmill.errors import ConfigError
from gristmill.stores.features import (
    VectorLookup,
    series_gaps_line,
    series_gaps_of,
    unlabelled_line,
)
from gristmill.stores.raw import RawBatch

if TYPE_CHECKING:  # imported by the verbs that run them: `gristmill --help` stays fast
    from gristmill.config.features import FeatureSetSpec
    from gristmill.features.online_views import OnlineView
    from gristmill.features.prepare import Prepared
    from gristmill.runtime.wiring import Services


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


def _waiting(name: str, spec: FeatureSetSpec, missing: list[str], services: Services) -> str:
    """Why feature set ``name`` cannot be prepared yet: the sources it lacks a batch of."""
    streamed = [s for s in missing if services.metadata.batches.list_batches(source=s, limit=1)]
    unseen = [s for s in missing if s not in streamed]
    lacking = []
    if unseen:
        lacking.append(
            f"{_names(unseen)} {'has' if len(unseen) == 1 else 'have'} not been ingested yet"
        )
    if streamed:
        lacking.append(
            f"{_names(streamed)} {'has' if len(streamed) == 1 else 'have'} only streamed "
            "micro-batches (a feature set is fitted on ingested batches)"
        )
    joins = (
        f"it joins {_names(spec.from_)} (a join waits for every input), and "
        if len(spec.from_) > 1
        else ""
    )
    return f"feature set {name!r} was not prepared: {joins}{'; '.join(lacking)}"


def _names(names: list[str]) -> str:
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


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
    and fitted on its training rows only. Already computed? It is found, not redone. A set
    whose sources are not all ingested yet (a join waits for every input) is named with
    the commands that ingest them; the others are prepared all the same.

    \b
        gristmill prepare examples/penguins/pipeline.yaml
        gristmill prepare pipeline.yaml -f penguins_v1
    """
    import asyncio

    from gristmill.config.spec import load_spec

    pipeline = load_spec(spec)
    sets = pipeline.features or {}
    chosen = feature_set or list(sets)
    unknown = [name for name in chosen if name not in sets]
    if unknown or not sets:
        known = ", ".join(sets) or "none"
        raise ConfigError(
            f"{spec} has no feature set {unknown[0] if unknown else ''!r}; known: {known}"
        )

    from gristmill.features.prepare import prepare
    from gristmill.runtime.wiring import open_services
    from gristmill.training.splits import split_for
    from gristmill.training.task import preset_task

    async def go() -> tuple[list[Prepared], list[str], list[str]]:
        async with open_services(settings_from(ctx)) as services:
            stores = services.feature_stores()
            results: list[Prepared] = []
            waiting: list[str] = []
            to_ingest: list[str] = []
            for name in chosen:
                fs = sets[name]
                inputs = {s: _latest_file_batch(services, s) for s in fs.from_}
                missing = [s for s, b in inputs.items() if b is None]
                if missing:
                    waiting.append(_waiting(name, fs, missing, services))
                    to_ingest.extend(s for s in missing if s not in to_ingest)
                    continue
                found = {s: b for s, b in inputs.items() if b}
                fit_for = split_for(pipeline, name, stores)
                task = preset_task(pipeline, name)
                with console.status(f"preparing {name}"):
                    results.append(
                        await asyncio.to_thread(
                            partial(prepare, split=fit_for, task=task), name, fs, found, stores
                        )
                    )
            return results, waiting, to_ingest

    results, waiting, to_ingest = asyncio.run(go())
    if results:
        print_table(_prepared_table(results), console)
    for item in results:
        if item.online_warning:
            console.print(
                styled((f"online {item.name}:", "yellow"), " ", item.online_warning),
                highlight=False,
                soft_wrap=True,
            )
        label = item.feature_set.label_outcome if item.feature_set else None
        gaps = series_gaps_of(item.feature_set) if item.feature_set else None
        for line in (
            unlabelled_line(item.name, label) if label else None,
            series_gaps_line(item.name, gaps) if gaps else None,
        ):
            if line:
                console.print(line, style="yellow", highlight=False, soft_wrap=True)
        if item.stopped:
            failed = [r.report_id for r in item.reports if r.status == "failed"]
            err_console.print(
                styled(
                    (f"✗ validation stopped {item.name}:", "red"),
                    f" {len(item.anomalies)} anomalies; see gristmill show "
                    f"{failed[0] if failed else item.reports[0].report_id}",
                ),
                highlight=False,
                soft_wrap=True,
            )
    for why in waiting:
        print_error(why)
    if to_ingest:
        commands = "; ".join(f"gristmill ingest {s} --spec {spec}" for s in to_ingest)
        err_console.print(
            f"ingest {'it' if len(to_ingest) == 1 else 'them'} first, then prepare again: "
            f"{commands}",
            highlight=False,
            soft_wrap=True,
        )
    if waiting or any(item.stopped for item in results):
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
    stop_if_nothing_yet(ctx, listing=False, missing=f"no feature set named {view!r}")
    import asyncio

    from gristmill.cli.ids import resolve_prefixed
    from gristmill.features.online_views import lookup as online_lookup
    from gristmill.runtime.wiring import open_services

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
