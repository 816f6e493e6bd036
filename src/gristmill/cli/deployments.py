"""Verbs of deployment: ``deploy`` a version (primary, canary or shadow), ``rollback`` to
``@previous``, and list the ``deployments`` (what is live, how requests are shared; with
``--history``, every change of the policies: who, what, when, why)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from gristmill.cli.announce import announce
from gristmill.cli.console import console
from gristmill.cli.deployment_history import POLICY_SET, history_rows, history_table
from gristmill.cli.registry import compile_servable
from gristmill.cli.settings import opened_metadata, stop_if_nothing_yet
from gristmill.cli.tables import print_table
from gristmill.core.actor import current_actor
from gristmill.errors import ConfigError, NotFoundError

if TYPE_CHECKING:  # the registry's work is imported when a verb runs (`--help` stays fast)
    from gristmill.stores.metadata import MetadataStore
    from gristmill.stores.models import ModelRegistry, TrafficPolicy
    from gristmill.training.canary import CanaryProgress
    from gristmill.training.deployment import DeployMode, PolicyChange
    from gristmill.training.rollback import Reading

ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why (kept in the policy and the audit log).")
]


def deploy_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Registry name of the model.")],
    version: Annotated[
        int,
        typer.Argument(
            metavar="VERSION", help="The version to deploy (see `gristmill models MODEL`)."
        ),
    ],
    canary: Annotated[
        float | None,
        typer.Option(
            "--canary",
            metavar="SHARE",
            help="Deploy as a canary answering this share of requests (0 < SHARE < 1), "
            "beside the primary.",
        ),
    ] = None,
    shadow: Annotated[
        bool,
        typer.Option(
            "--shadow",
            help="Deploy as a shadow: scored and logged beside every answer, never returned.",
        ),
    ] = False,
    promote_after_requests: Annotated[
        int | None,
        typer.Option(
            "--promote-after-requests",
            metavar="N",
            min=1,
            help="With --canary: promote it once it answered N requests without a server "
            "error (pulled at its first one).",
        ),
    ] = None,
    promote_after_minutes: Annotated[
        float | None,
        typer.Option(
            "--promote-after-minutes",
            metavar="M",
            help="With --canary: promote it once it ran M minutes without a server error "
            "(and answered at least one request).",
        ),
    ] = None,
    reason: ReasonOption = "",
) -> None:
    """Deploy a version of a model: as the primary, as a canary, or as a shadow.

    Without a flag the version becomes the primary (and @champion); the primary it replaces
    becomes @previous and the first fallback (a canary of this version is thereby promoted).
    With --canary the version answers that share of requests (sticky per entity or request
    key); with --shadow it scores every request beside the answer. A canary given
    --promote-after-requests and/or --promote-after-minutes is judged by the prediction
    servers: promoted once it ran so long without a server error, pulled at its first one
    (serve.stats_flush_seconds). Each change is a new policy revision, an audit entry and a
    model.deployed event; deploying what is live already changes nothing.

    \b
        gristmill models churn                           its versions
        gristmill deploy churn 3                         version 3 answers every request
        gristmill deploy churn 4 --canary 0.1            version 4 answers 10% of them
        gristmill deploy churn 4 --canary 0.1 --promote-after-requests 5000
                                                         ... promoted after 5000 clean answers
        gristmill deploy churn 4 --reason "canary clean" promote the canary
        gristmill deploy churn 5 --shadow                score beside, never answer
        gristmill rollback churn                         back to @previous
        gristmill deployments churn                      what is live now
    """
    from gristmill.core.events import MODEL_DEPLOYED
    from gristmill.training.deployment import PromotionRule, announcement, deploy

    if canary is not None and shadow:
        raise ConfigError(
            "--canary and --shadow exclude each other: deploy the version as a canary "
            f"(gristmill deploy {model} {version} --canary 0.1) or as a shadow, not both"
        )
    if canary is not None and not 0 < canary < 1:
        raise ConfigError(
            f"--canary {canary:g}: the share must be between 0 and 1 (exclusive), e.g. "
            f"gristmill deploy {model} {version} --canary 0.1 for a tenth of requests"
        )
    if promote_after_minutes is not None and not promote_after_minutes > 0:
        raise ConfigError(
            f"--promote-after-minutes {promote_after_minutes:g}: give the minutes a canary must "
            "run, above 0 (e.g. --promote-after-minutes 30)"
        )
    rule = PromotionRule(promote_after_requests, promote_after_minutes)
    if rule and canary is None:
        raise ConfigError(
            "--promote-after-requests / --promote-after-minutes say when a canary is "
            f"promoted; add --canary SHARE (gristmill deploy {model} {version} --canary 0.1 "
            "--promote-after-requests 1000)"
        )
    mode: DeployMode = "canary" if canary is not None else "shadow" if shadow else "primary"
    with opened_metadata(ctx) as store:
        target = store.registry.get_version(model, version)
    # compiled before the policy changes: servers then only load it, and a version that
    # cannot be served is never deployed
    compile_servable(ctx, target, refused="it is not deployed")
    with opened_metadata(ctx) as store:
        change = deploy(
            store.registry,
            model,
            version,
            mode=mode,
            share=canary if canary is not None else 0.1,
            rule=rule or None,
            reason=reason,
            actor=current_actor(),
        )
    if not change.changed:
        console.print(
            f"{model} is deployed so already (revision {change.after.revision}); nothing changed",
            highlight=False,
        )
        return
    console.print(_deployed_line(change, version, mode), highlight=False)
    announce(ctx, MODEL_DEPLOYED, model, announcement(change, version=version))


def _deployed_line(change: PolicyChange, version: int, mode: str) -> str:
    after, before = change.after, change.before
    revision = f"(policy revision {after.revision})"
    if mode == "canary":
        return (
            f"{after.model}: version {version} is a canary answering {after.canary_share:.0%} "
            f"of requests beside primary version {after.primary} {revision}{_rule_text(after)}"
        )
    if mode == "shadow":
        return (
            f"{after.model}: version {version} scores beside every answer of version "
            f"{after.primary} as a shadow {revision}"
        )
    line = f"{after.model}: version {version} answers every request {revision}"
    if before is not None and before.primary != after.primary:
        line += f"; version {before.primary} is now {after.model}@previous and first fallback"
    return line


def _rule_text(policy: TrafficPolicy) -> str:
    """``; promoted after 500 requests and 10 minutes without errors`` ('' without a rule)."""
    terms = []
    if policy.promote_after_requests is not None:
        terms.append(f"{policy.promote_after_requests} requests")
    if policy.promote_after_minutes is not None:
        terms.append(f"{policy.promote_after_minutes:g} minutes")
    if not terms:
        return ""
    return f"; promoted after {' and '.join(terms)} without errors, pulled at the first"


def rollback_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL", help="Registry name of the model.")],
    canary: Annotated[
        bool,
        typer.Option("--canary", help="Only pull the canary; the primary stays."),
    ] = False,
    reason: ReasonOption = "",
) -> None:
    """Send a model's traffic back to @previous (its first fallback), clearing any canary.

    The version rolled back leaves the policy; the next fallback, if any, becomes @previous.
    With --canary only the canary leaves (the primary answers every request again).

    \b
        gristmill rollback churn
        gristmill rollback churn --reason "error rate up after version 4"
        gristmill rollback churn --canary                drop the canary only
        gristmill deployments churn                      what answers now
    """
    from gristmill.core.events import MODEL_ROLLED_BACK
    from gristmill.training.deployment import announcement, rollback

    with opened_metadata(ctx) as store:
        change = rollback(
            store.registry, model, canary_only=canary, reason=reason, actor=current_actor()
        )
    after = change.after
    gone = f"; version {change.before.primary} is no longer served" if change.before else ""
    if canary and change.before is not None:
        gone = f"; canary version {change.before.canary} is no longer served"
    console.print(
        f"{model}: version {after.primary} answers every request again (policy revision "
        f"{after.revision}){gone}",
        highlight=False,
    )
    announce(ctx, MODEL_ROLLED_BACK, model, announcement(change))


def deployments_command(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Argument(metavar="MODEL", help="Only this model (default: every deployed model)."),
    ] = None,
    history: Annotated[
        bool,
        typer.Option(
            "--history",
            help="List the changes of the traffic policies instead, newest first: when, "
            "by whom, the policy set and the one it replaced, and why (--reason).",
        ),
    ] = False,
    limit: Annotated[
        int, typer.Option(min=1, help="With --history: at most this many changes.")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead.")] = False,
) -> None:
    """What is live: per model, the primary, canary and its share, shadows, fallbacks, the
    policy revision, since when and by whom; for a canary, its progress (requests answered,
    errors, minutes, against its promotion rule if it has one), summed over every server;
    for a policy with a rollback rule, the rule and the figures it is judged on (requests,
    latency budget misses, errors of its primary and canary in the rule's window).
    With --history: how it got there, every policy change (deploy, rollback, a canary
    promoted or pulled by the servers) from the audit log.

    A model with a @champion but no stored policy is served by its champion alone (revision
    0 in this list).

    \b
        gristmill deployments
        gristmill deployments churn
        gristmill deployments churn --history            who changed it, when, why
        gristmill deployments --history --limit 50       every model's changes
        gristmill deployments --json
    """
    stop_if_nothing_yet(
        ctx, listing=model is None, as_json=as_json, missing=f"no model named {model!r}"
    )
    from gristmill.training.canary import canary_progress
    from gristmill.training.rollback import readings

    with opened_metadata(ctx) as store:
        if model is not None:
            _check_known(store, model)
        if history:
            _print_history(store, model, limit, as_json=as_json)
            return
        policies = _live(store.registry, model)
        progress = {
            p.model: found
            for p in policies
            if (found := canary_progress(store.serving_stats, p)) is not None
        }
        judged = {p.model: readings(store.serving_stats, p) for p in policies if p.rollback_rule}
    if as_json:
        rows = [
            asdict(p)
            | _progress_json(progress.get(p.model))
            | {"rollback_readings": [_reading_json(r) for r in judged.get(p.model, [])]}
            for p in policies
        ]
        console.print_json(json.dumps(rows, default=str))
    elif policies:
        print_table(_table(policies), console)
        for found in progress.values():
            console.print(_progress_line(found), highlight=False)
        for policy in policies:
            if policy.rollback_rule is not None:
                line = _rollback_line(policy, judged.get(policy.model, []))
                console.print(line, highlight=False, soft_wrap=True)
    elif model:
        console.print(
            f"model {model!r} is not deployed; deploy a version with `gristmill deploy {model} "
            f"VERSION` (its versions: `gristmill models {model}`)",
            highlight=False,
        )
    else:
        console.print(
            "no model is deployed yet; deploy a version with `gristmill deploy MODEL VERSION` "
            "(registered versions: `gristmill models`)",
            highlight=False,
        )


def _check_known(store: MetadataStore, model: str) -> None:
    """``NotFoundError`` naming ``model`` when no version of it is registered."""
    import difflib

    registry = store.registry
    if registry.list_versions(model, limit=1) or registry.get_policy(model) is not None:
        return
    known = sorted({v.model for v in registry.list_versions(limit=100_000)})
    close = difflib.get_close_matches(model, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise NotFoundError(
        f"no model named {model!r} is registered; {hint}list the registered models with "
        "`gristmill models`"
    )


def _print_history(store: MetadataStore, model: str | None, limit: int, *, as_json: bool) -> None:
    subject = f"model:{model}" if model is not None else None
    entries = store.audit.list_entries(subject=subject, action=POLICY_SET, limit=limit)
    if as_json:
        console.print_json(json.dumps(history_rows(entries), default=str))
    elif entries:
        print_table(history_table(entries, one_model=model is not None), console)
    else:
        which = f"of {model} " if model is not None else ""
        console.print(
            f"no policy changes {which}yet; deploy a version with `gristmill deploy "
            f"{model or 'MODEL'} VERSION`",
            highlight=False,
        )


def _live(registry: ModelRegistry, model: str | None) -> list[TrafficPolicy]:
    from gristmill.stores.models import effective_policy

    if model is not None:
        found = effective_policy(registry, model)
        return [] if found is None else [found]
    stored = {p.model: p for p in registry.list_policies()}
    for name in {v.model for v in registry.list_versions(limit=100_000)} - set(stored):
        found = effective_policy(registry, name)
        if found is not None:
            stored[name] = found
    return [stored[name] for name in sorted(stored)]


def _rollback_line(policy: TrafficPolicy, judged: list[Reading]) -> str:
    """``churn: rollback rule miss rate > 5%; ≥ 100 requests in 5 min; cool-down 30 min —
    primary 2: 42 requests, 3 budget misses (7.1%), 0 errors``."""
    rule = policy.rollback_rule
    if rule is None:
        return ""
    line = f"{policy.model}: rollback rule {rule.describe()}"
    parts = []
    for reading in judged:
        stats = reading.stats
        misses = f"{stats.budget_misses} budget misses"
        if stats.miss_rate:
            misses += f" ({stats.miss_rate:.1%})"
        parts.append(
            f"{reading.role} {reading.version}: {stats.requests} requests, {misses}, "
            f"{stats.errors} errors"
        )
    if parts:
        line += f" — in the window, this revision: {'; '.join(parts)}"
    if not policy.fallback:
        line += f" (the primary has no @previous to roll back to: {policy.model} stays on it)"
    return line


def _reading_json(reading: Reading) -> dict[str, object]:
    return {"version": reading.version, "role": reading.role, **reading.figures()}


def _progress_json(progress: CanaryProgress | None) -> dict[str, object]:
    if progress is None:
        return {"canary_progress": None}
    stats = progress.stats
    return {
        "canary_progress": {
            "requests": stats.requests,
            "answered": stats.answered,
            "errors": stats.errors,
            "client_errors": stats.client_errors,
            "fallbacks": stats.fallbacks,
            "replicas": stats.replicas,
            "minutes": round(progress.minutes, 3),
            "judged": progress.policy.judged,
            "verdict": progress.verdict(),
        }
    }


def _progress_line(progress: CanaryProgress) -> str:
    """``churn: canary 4 so far: 120/500 requests, …; promoted …`` (figures of every server)."""
    policy = progress.policy
    line = f"{policy.model}: canary {policy.canary} so far: {progress.describe()}"
    if not policy.judged:
        return (
            line
            + f"; no promotion rule: promote it with gristmill deploy {policy.model} "
            + (f"{policy.canary}")
        )
    verdict = progress.verdict()
    if verdict == "wait":
        return line + "; promoted once its rule is met, pulled at its first error"
    return (
        line + f"; to be {'promoted' if verdict == 'promote' else 'pulled'} at the next judgement"
    )


def _table(policies: list[TrafficPolicy]) -> Table:
    table = Table()
    columns = ("model", "primary", "canary", "shadow", "fallback", "revision", "since", "by")
    for column in (*columns, "reason"):
        table.add_column(column, no_wrap=column != "reason")
    for p in policies:
        share = 1 - p.canary_share if p.canary is not None else 1.0
        table.add_row(
            p.model,
            f"{p.primary} ({share:.0%})",
            "-" if p.canary is None else f"{p.canary} ({p.canary_share:.0%})",
            " ".join(map(str, p.shadow)) or "-",
            " → ".join(map(str, p.fallback)) or "-",
            str(p.revision),
            p.changed_at.strftime("%Y-%m-%d %H:%M") if p.changed_at else "-",
            p.changed_by,
            p.reason or "-",
        )
    return table


def register(app: typer.Typer) -> None:
    app.command("deploy", rich_help_panel="Models")(deploy_command)
    app.command("rollback", rich_help_panel="Models")(rollback_command)
    app.command("deployments", rich_help_panel="Models")(deployments_command)
