"""Verbs of the model registry: ``promote`` a candidate, list the ``models`` and their versions."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from gristmill.cli.console import console, err_console, print_error
from gristmill.cli.settings import opened_metadata, settings_from, stop_if_nothing_yet
from gristmill.cli.tables import print_table
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


GATE_REFUSED = 3
"""``promote --best``'s exit code when the gate did not pass: nothing was promoted."""


def promote_command(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="MC_ID | RUN",
            help=f"A trained candidate's id (mc_…) or its unique start ({FIND_CANDIDATES}); "
            "with --best, a run id or its unique start (`gristmill ls runs`; default: the "
            "newest run that evaluated candidates).",
            show_default=False,
        ),
    ] = None,
    best: Annotated[
        bool,
        typer.Option(
            "--best",
            help="Promote the gate's winner of the run (the newest by default): the best "
            "candidate, if the gate let it pass. Exit code 3 (nothing promoted) when the gate "
            "did not pass.",
        ),
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            help="Registry name of the model (default: deploy.model, else the name, of the "
            "spec whose run trained the candidate; with --best, the model the gate judged for)."
        ),
    ] = None,
    alias: Annotated[
        str, typer.Option(help="The alias to point at the version: champion, challenger, …")
    ] = CHAMPION,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object (what was promoted, or why not) on stdout; the "
            "messages go to stderr.",
        ),
    ] = False,
) -> None:
    """Make a trained candidate a version of a model and point an alias at it.

    The candidate becomes the model's next version (a candidate promoted before keeps the
    version it has). The alias moves to that version; when it is `champion`, the version it
    leaves becomes `previous`. The version is compiled for serving before the alias moves
    (`gristmill compile` shows how: ONNX, checked against the native scorer, or native), so
    a running server only loads it; a version that cannot be served (a tampered artifact)
    is refused and the alias stays where it is. The evaluation gate compares every new best
    candidate with the champion.

    With --best, the candidate is the gate's winner of a run's leaderboard: of the newest
    run that evaluated candidates, or of RUN. For scripts: exit code 0 when it is promoted
    (or is that version at the alias already: "moved": false), 3 when the gate did not pass
    (nothing changes; "reason" says why), 1 when there is no such run or leaderboard, 2 for
    a wrong argument; with --json, stdout holds one object: promoted, reason, run, report,
    candidate_id, candidate, model, version, alias, registered, moved, previous.

    \b
        gristmill ls candidates                        find the id of the one to promote
        gristmill promote mc_5b1e0c9d2a7f4e3b8c6d1a0f
        gristmill promote mc_5b1e0c9d2a7f4e3b8c6d1a0f --model churn --alias challenger
        gristmill promote mc_5b1e                      a unique start is enough
        gristmill promote --best                       the gate's winner of the newest run
        gristmill promote --best 01HV3K --json         of that run, as JSON (exit 3: refused)
        gristmill models churn                         its versions and aliases
    """
    out = err_console if as_json else console
    try:
        answer = _promoted(ctx, target, best, model, alias, out)
    except GristmillError as exc:
        if not as_json:
            raise
        # a script reads one object whatever happened: here, the error
        error = {"promoted": False, "error": str(exc), "error_type": type(exc).__name__}
        console.print_json(json.dumps(error))
        print_error(str(exc))
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from exc
    if as_json:
        console.print_json(json.dumps(answer))
    if not answer["promoted"]:
        out.print(f"nothing promoted: {answer['reason']}", highlight=False, soft_wrap=True)
        raise typer.Exit(GATE_REFUSED)


def _promoted(
    ctx: typer.Context, target: str | None, best: bool, model: str | None, alias: str, out: Any
) -> dict[str, Any]:
    """What ``promote`` did (or, with ``best``, why the gate promoted nothing), as the
    object ``--json`` prints; ``GristmillError`` for a wrong target."""
    if best:
        chosen = _gate_winner(ctx, target)
        if not chosen["promoted"]:
            return chosen
        candidate_id = str(chosen["candidate_id"])
        model = model or str(chosen["model"])
    elif target is None:
        raise ConfigError(
            "name the candidate to promote (gristmill promote MC_ID; find ids with "
            f"{FIND_CANDIDATES}), or promote the gate's winner: gristmill promote --best"
        )
    else:
        candidate_id, chosen = target, {}
    done = _promote(ctx, candidate_id, model, alias, out)
    return {**chosen, "promoted": True, **done}


def _gate_winner(ctx: typer.Context, run: str | None) -> dict[str, Any]:
    """The gate's decision of ``run``'s leaderboard (the newest run's without one): the
    winner's ``candidate_id`` and ``model`` and ``promoted`` (whether the gate passed),
    with the ``run``, the ``report`` and the gate's ``reason``."""
    from gristmill.cli.ids import resolve_id
    from gristmill.errors import NotFoundError
    from gristmill.runtime.run_views import newest_leaderboard, run_leaderboards
    from gristmill.stores.metadata import Run

    with opened_metadata(ctx) as store:
        if run is None:
            found = newest_leaderboard(store)
            if found is None:
                raise NotFoundError(
                    "no run has evaluated candidates yet, so there is no gate's winner to "
                    "promote; run a pipeline with a train: and evaluate: section first"
                )
            recorded, report = found
        else:
            if run.lower().startswith("mc_"):
                raise ConfigError(
                    f"{run!r} is a candidate; with --best name a run (`gristmill ls runs`), "
                    f"or promote the candidate itself: gristmill promote {run}"
                )
            kind, full, record = resolve_id(store, run)
            if not isinstance(record, Run):
                raise ConfigError(f"{run!r} is a {kind}, not a run; list runs: gristmill ls runs")
            boards = run_leaderboards(store, record)
            if not boards:
                raise NotFoundError(
                    f"run {full} evaluated no candidates (no leaderboard); see "
                    f"gristmill show {full}"
                )
            recorded, report = record, boards[-1]
    gate = report.body.get("gate") or {}
    return {
        "promoted": bool(gate.get("passed")),
        "reason": str(gate.get("reason", "")),
        "run": recorded.run_id if recorded else report.run_id,
        "report": report.report_id,
        "candidate_id": gate.get("candidate_id"),
        "candidate": gate.get("candidate"),
        "model": gate.get("model"),
    }


def _promote(
    ctx: typer.Context, candidate_id: str, model: str | None, alias: str, out: Any
) -> dict[str, Any]:
    """Register, compile and move the alias (see ``promote_command``); what was done."""
    from gristmill.cli.ids import resolve_prefixed
    from gristmill.training.gate import promote, register_candidate

    with opened_metadata(ctx) as store:
        candidate_id, candidate = resolve_prefixed(store, "mc_", candidate_id)
        name = model or _model_of(store, candidate)
        version, registered = register_candidate(store, candidate_id, name, actor=current_actor())
    if registered:
        out.print(
            f"registered {candidate.name} ({candidate_id}) as {name} version {version.version}",
            highlight=False,
        )
    else:
        out.print(
            f"{candidate.name} ({candidate_id}) is {name} version {version.version} already",
            highlight=False,
        )
    # Compiled *before* the alias moves: a server that sees the alias move (its poll may come
    # before the announcement) then only loads the servable; it never compiles it itself
    # while it answers requests.
    compile_servable(ctx, version, out=out)
    with opened_metadata(ctx) as store:
        done = promote(store, candidate_id, name, alias=alias, actor=current_actor())
    target = f"{name}@{alias}"
    moved = done.replaced is None or done.replaced.version != version.version
    if moved:
        _announce(ctx, version, alias, done.replaced)
    if done.replaced is None:
        out.print(f"{target} → version {version.version}", highlight=False)
    elif not moved:
        out.print(f"{target} is version {version.version} already; nothing moved")
    else:
        kept = f", which is now {name}@{PREVIOUS}" if alias == CHAMPION else ""
        out.print(
            f"{target} → version {version.version} (was version {done.replaced.version}{kept})",
            highlight=False,
        )
    return {
        "candidate_id": candidate_id,
        "candidate": candidate.name,
        "model": name,
        "version": version.version,
        "alias": alias,
        "registered": registered,
        "moved": moved,
        "previous": None if done.replaced is None else done.replaced.version,
    }


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
    ctx: typer.Context,
    version: ModelVersion,
    *,
    refused: str = "no alias moves to it",
    out: Any = None,
) -> None:
    """Compile the version's servable now, so the first request does not wait for it; a
    version that cannot be served is a ``ConfigError`` saying ``refused`` (what is not done).
    What it says goes to ``out`` (the console by default)."""
    out = out or console
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
    out.print(summary, highlight=False)
    if not isinstance(reference, str):
        out.print(
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
    stop_if_nothing_yet(
        ctx, listing=name is None, as_json=as_json, missing=f"no model named {name!r}"
    )
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
        print_table(_versions_table(versions, aliases, names), console)
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
