"""How a model's versions have served: the figures ``gristmill monitor`` shows.

Every reader of serving figures goes through here: it checks the model and version exist,
reads the model's recorded serving stats of the last day once, and sums them per version
over the sliding spans (``stores.serving_figures``) and per minute (the chart's points).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime

from gristmill.errors import NotFoundError
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.models import ModelRegistry, TrafficPolicy, effective_policy
from gristmill.stores.serving_figures import SPANS, Figures, Minute, figures, per_minute

HISTORY = max(span.length for span in SPANS)
"""How far back the figures go (the longest span, which the chart draws too)."""


@dataclass(frozen=True)
class VersionServing:
    """One version's figures: one per span of ``SPANS``, and one point per minute of the
    last day. ``role`` is what the live traffic policy makes of it (``primary``, ``canary
    10%``, ``shadow``, ``fallback``), ``""`` when it has none."""

    version: int
    role: str
    spans: tuple[Figures, ...]
    minutes: tuple[Minute, ...]


@dataclass(frozen=True)
class ServingReport:
    """A model's serving figures at ``until``, per version (by number). ``policy_revision``
    is the live traffic policy's (``None``: nothing is deployed)."""

    model: str
    until: datetime
    versions: tuple[VersionServing, ...]
    policy_revision: int | None = None


def serving_report(
    metadata: MetadataStore, model: str, version: int | None = None, *, until: datetime
) -> ServingReport:
    """``model``'s figures at ``until``: of ``version`` alone, else of every version that
    served in the last day or is live now. ``NotFoundError`` (with what to run instead) for
    a model that is not registered or a version it does not have."""
    registry = metadata.registry
    check_model(registry, model)
    if version is not None:
        registry.get_version(model, version)  # NotFoundError naming both, with the hint
    windows = metadata.serving_stats.list_windows(model, version, since=until - HISTORY)
    policy = effective_policy(registry, model)
    if version is not None:
        shown = [version]
    else:
        live = policy.versions() if policy is not None else ()
        shown = sorted({w.version for w in windows} | set(live))
    versions = []
    for number in shown:
        spans = tuple(
            figures(windows, model=model, version=number, until=until, span=span.length)
            for span in SPANS
        )
        minutes = per_minute(
            windows, model=model, version=number, since=until - HISTORY, until=until
        )
        versions.append(VersionServing(number, _role(policy, number), spans, tuple(minutes)))
    revision = policy.revision if policy is not None else None
    return ServingReport(model, until, tuple(versions), revision)


def check_model(registry: ModelRegistry, model: str) -> None:
    """``NotFoundError`` naming ``model``, the models registered (or the closest one) and
    what to run, when it is not registered."""
    if registry.list_versions(model, limit=1):
        return
    known = sorted({v.model for v in registry.list_versions(limit=10_000)})
    close = difflib.get_close_matches(model, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    listed = f"registered: {', '.join(known)}" if known else "no model is registered yet"
    raise NotFoundError(
        f"no model named {model!r} in the registry ({listed}); {hint}list them with "
        "`gristmill models`"
    )


def _role(policy: TrafficPolicy | None, version: int) -> str:
    if policy is None:
        return ""
    if version == policy.primary:
        return "primary"
    if version == policy.canary:
        return f"canary {policy.canary_share:.0%}"
    if version in policy.shadow:
        return "shadow"
    return "fallback" if version in policy.fallback else ""
