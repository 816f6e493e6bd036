"""Verbs of the model registry: ``promote`` a candidate, list the ``models`` and their versions."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from gristmill.cli.console import console, err_console
from gristmill.cli.settings import opened_metadata, settings_from
from gristmill.core.actor import current_actor
from gristmill.errors import ConfigError, GristmillError, NotFoundError
from gristmill.stores.models import CHAMPION, PREVIOUS, Candidate, ModelVersion

if TYPE_CHECKING:  # the registry's work is imported when a verb runs (`--help` stays fast)
    from gristmill.stores.metadata import MetadataStore

FIND_CANDIDATES = "`gristmill ls candidates`"


def _model_of(store: MetadataStore, candidate: Candidate) -> str:
    """The model a candidate belongs to: the ``deploy.model`` or ``name`` of its run's spec."""
    from gristmill.stages.specs import spec_of_run
    from gristmill.training.gate import model_name

    run = store.runs.find_run(candidate.run_id) if candidate.run_id else None
    if run is None:
        raise ConfigError(
            f"candidate {candidate.candidate_id} was trained outside a pipeline run, so the "
            "model it belongs to is unknown; name it: gristmill promote "
            f"{candidate.candidate_id} --model NAME"
        )
    return model_name(spec_of_run(store, run))


def promote_command(
    ctx: typer.Context,
    candidate_id: Annotated[
        str,
        typer.Argument(
            metavar="MC_ID",
            help=f"A trained candidate's id (mc_…) or its unique start; list them with "
            f"{FIND_CANDIDATES}.",
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            help="Registry name of the model (default: deploy.model, else the name, of the "
            "spec whose run trained the candidate)."
        ),
    ] = None,
    alias: Annotated[
        str, typer.Option(help="The alias to point at the version: champion, challenger, …")
    ] = CHAMPION,
) -> None:
    """Make a trained candidate a version of a model and point an alias at it.

    The candidate becomes the model's next version (a candidate promoted before keeps the
    version it has). The alias moves to that version; when it is `champion`, the version it
    leaves becomes `previous`. The version is compiled for serving before the alias moves
    (`gristmill compile` shows how: ONNX, checked against the native scorer, or native), so
    a running server only loads it; a version that cannot be served (a tampered artifact)
    is refused and the alias stays where it is. The evaluation gate compares every new best
    candidate with the champion.

    \b
        gristmill ls candidates                        find the id of the one to promote
        gristmill promote mc_5b1e0c9d2a7f4e3b8c6d1a0f
        gristmill promote mc_5b1e0c9d2a7f4e3b8c6d1a0f --model churn --alias challenger
        gristmill promote mc_5b1e                      a unique start is enough
        gristmill models churn                         its versions and aliases
    """
    from gristmill.cli.ids import resolve_prefixed
    from gristmill.training.gate import promote, register_candidate

    with opened_metadata(ctx) as store:
        candidate_id, candidate = resolve_prefixed(store, "mc_", candidate_id)
        name = model or _model_of(store, candidate)
        version, registered = register_candidate(store, candidate_id, name, actor=current_actor())
    if registered:
        console.print(
            f"registered {candidate.name} ({candidate_id}) as {name} version {version.version}",
            highlight=False,
        )
    else:
        console.print(
            f"{candidate.name} ({candidate_id}) is {name} version {version.version} already",
            highlight=False,
        )
    # Compiled *before* the alias moves: a server that sees the alias move (its poll may come
    # before the announcement) then only loads the servable; it never compiles it itself
    # while it answers requests.
    compile_servable(ctx, version)
    with opened_metadata(ctx) as store:
        done = promote(store, candidate_id, name, alias=alias, actor=current_actor())
    target = f"{name}@{alias}"
    if done.replaced is None or done.replaced.version != version.version:
        _announce(ctx, version, alias, done.replaced)
    if done.replaced is None:
        console.print(f"{target} → version {version.version}", highlight=False)
    elif done.replaced.version == version.version:
        console.print(f"{target} is version {version.version} already; nothing moved")
    else:
        kept = f", which is now {name}@{PREVIOUS}" if alias == CHAMPION else ""
        console.print(
            f"{target} → version {version.version} (was version {done.replaced.version}{kept})",
            highlight=False,
        )


def _announce(
    ctx: typer.Context, version: ModelVersion, alias: str, replaced: ModelVersion | None
) -> None:
    """Publish ``model.deployed`` so running servers switch now; a bus that cannot be
    reached is a warning (servers also read the registry every serve.poll_seconds)."""
    import asyncio

    from gristmill.core.events import MODEL_DEPLOYED, Event
    from gristmill.runtime.wiring import build_bus

    settings = settings_from(ctx)
    payload = {
        "model": version.model,
        "alias": alias,
        "version": version.version,
        "previous": None if replaced is None else replaced.version,
    }

    async def publish() -> None:
        bus = build_bus(settings)
        await bus.open()
        try:
            await bus.publish([Event(type=MODEL_DEPLOYED, key=version.model, payload=payload)])
        finally:
            await bus.close()

    try:
        asyncio.run(publish())
    except GristmillError as exc:
        err_console.print(
            f"warning: could not announce {version.model}@{alias} on the bus ({exc}); running "
            f"servers pick it up within serve.poll_seconds ({settings.serve.poll_seconds}s)",
            style="yellow",
            highlight=False,
        )


def compile_servable(
    ctx: typer.Context, version: ModelVersion, *, refused: str = "no alias moves to it"
) -> None:
    """Compile the version's servable now, so the first request does not wait for it; a
    version that cannot be served is a ``ConfigError`` saying ``refused`` (what is not done)."""
    from gristmill.monitoring.reference import reference_at_registration
    from gristmill.runtime.wiring import open_stores
    from gristmill.servables.loading import compile_for_serving
    from gristmill.servables.parity import describe as parity_line

    with open_stores(settings_from(ctx)) as stores:
        manifest = compile_for_serving(stores, version.model, version.version, refused=refused)
        reference = reference_at_registration(stores, version)
    if isinstance(reference, str):
        err_console.print(
            f"warning: no drift reference for {version.ref} yet ({reference}); the monitoring "
            "stage tries again when its predictions are logged",
            style="yellow",
            highlight=False,
        )
    if manifest is None:
        err_console.print(
            f"warning: {version.ref} was not compiled for serving here (ONNX Runtime is not "
            "installed); servers compile it when they first load it",
            style="yellow",
            highlight=False,
        )
        return
    summary = f"servable: {manifest.kind}"
    if manifest.parity is not None:
        summary += f" (parity: {parity_line(manifest.parity)})"
    console.print(summary, highlight=False)
    if not isinstance(reference, str):
        console.print(
            f"drift reference: {len(reference.columns)} column(s), {reference.source}",
            highlight=False,
        )


def models(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="Only this model (default: every model).")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, help="At most this many versions, newest first.")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """List registered model versions, newest first, with their aliases.

    \b
        gristmill models                   every model's versions
        gristmill models churn             the versions of churn, with @champion, @previous …
        gristmill models churn --json
    """
    with opened_metadata(ctx) as store:
        versions = store.registry.list_versions(name, limit=limit)
        aliases: dict[tuple[str, int], list[str]] = {}
        for model in sorted({v.model for v in versions}):
            for a in store.registry.list_aliases(model):
                aliases.setdefault((a.model, a.version), []).append(a.alias)
        names = {v.candidate_id: _candidate_name(store, v) for v in versions}
    if name and not versions:
        raise NotFoundError(
            f"no versions of model {name!r}; promote a candidate with `gristmill promote "
            f"MC_ID --model {name}` (find ids with {FIND_CANDIDATES})"
        )
    if as_json:
        rows = [{**asdict(v), "aliases": aliases.get((v.model, v.version), [])} for v in versions]
        console.print_json(json.dumps(rows, default=str))
    elif versions:
        console.print(_versions_table(versions, aliases, names))
    else:
        console.print(
            "no models registered yet; promote a trained candidate with `gristmill promote "
            f"MC_ID` (find ids with {FIND_CANDIDATES})",
            highlight=False,
        )


def _candidate_name(store: MetadataStore, version: ModelVersion) -> str:
    candidate = store.candidates.find_candidate(version.candidate_id)
    return candidate.name if candidate else "?"


def _versions_table(
    versions: list[ModelVersion],
    aliases: dict[tuple[str, int], list[str]],
    names: dict[str, str],
) -> Table:
    table = Table()
    for column in ("model", "version", "aliases", "candidate", "id", "metrics", "registered"):
        table.add_column(column, no_wrap=column in ("id", "aliases"), justify="left")
    for v in versions:
        table.add_row(
            v.model,
            str(v.version),
            " ".join(f"@{a}" for a in aliases.get((v.model, v.version), [])) or "-",
            names.get(v.candidate_id, "?"),
            v.candidate_id,
            _metrics(v.metrics),
            v.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    return table


def _metrics(metrics: dict[str, Any]) -> str:
    numbers = [
        f"{k}={v:.4g}"
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    return ", ".join(numbers) or "-"


def register(app: typer.Typer) -> None:
    app.command("promote", rich_help_panel="Models")(promote_command)
    app.command(rich_help_panel="Models")(models)
