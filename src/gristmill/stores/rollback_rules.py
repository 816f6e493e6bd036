"""A traffic policy's rollback rule: when a live version is demoted automatically.

A ``RollbackRule`` travels with a model's ``TrafficPolicy`` (as a canary's promotion rule
does) and is judged by ``training.rollback`` for the policy's primary and canary:

* ``max_miss_rate`` — latency budget misses per request above this (0 < r ≤ 1) demote;
* ``max_error_rate`` — server errors (5xx) per request above this (0 < r ≤ 1) demote;
* ``max_quality_drop`` — live quality this far below the version's offline ``quality_metric``
  (in the metric's own units) demotes; judged by the live quality stage;
* ``on_drift`` — a drift alert of the version demotes it; judged by the drift stage;
* ``min_requests`` — a version is judged on no fewer requests than this (the minimum
  window), over the last ``window_minutes`` of the current policy revision;
* ``cooldown_minutes`` — no automatic rollback of a model whose policy the rollback judge
  changed less than this long ago (so versions do not flap);
* ``webhook`` — an http(s) URL each demotion's alert is POSTed to.

``rule_problem`` names the first field at fault, so the registry (``ConfigError``), the admin
API (a 400 naming the field) and the spec say the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from gristmill.core.quality_metrics import quality_metric_problem

DEFAULT_MIN_REQUESTS = 100
DEFAULT_WINDOW_MINUTES = 5.0
DEFAULT_COOLDOWN_MINUTES = 30.0
TRIGGERS = ("max_miss_rate", "max_error_rate", "max_quality_drop", "on_drift")


@dataclass(frozen=True)
class RollbackRule:
    """When a live version is demoted (see the module docstring)."""

    max_miss_rate: float | None = None
    max_error_rate: float | None = None
    max_quality_drop: float | None = None
    quality_metric: str | None = None
    """The metric live quality is compared with the version's offline figure on (one of
    ``QUALITY_METRICS``); ``None``: the first of them both have. The deployment stage sets
    the spec's ``evaluate.metric`` here when the spec names none and live quality has it."""
    on_drift: bool = False
    min_requests: int = DEFAULT_MIN_REQUESTS
    window_minutes: float = DEFAULT_WINDOW_MINUTES
    cooldown_minutes: float = DEFAULT_COOLDOWN_MINUTES
    webhook: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The rule as JSON values (how it is stored and shown)."""
        return asdict(self)

    def describe(self) -> str:
        """``miss rate > 5%, error rate > 1%, on drift; ≥ 100 requests in 5 min; cool-down
        30 min``."""
        terms = []
        if self.max_miss_rate is not None:
            terms.append(f"miss rate > {percent(self.max_miss_rate)}")
        if self.max_error_rate is not None:
            terms.append(f"error rate > {percent(self.max_error_rate)}")
        if self.max_quality_drop is not None:
            metric = self.quality_metric or "quality"
            terms.append(f"{metric} drop > {self.max_quality_drop:g}")
        if self.on_drift:
            terms.append("on drift")
        return (
            f"{', '.join(terms)}; ≥ {self.min_requests} requests in {self.window_minutes:g} min; "
            f"cool-down {self.cooldown_minutes:g} min"
        )


def percent(rate: float) -> str:
    """``0.4193`` → ``41.9%``, ``0.05`` → ``5%``."""
    return f"{rate * 100:.3g}%"


def rule_problem(rule: RollbackRule) -> tuple[str, str] | None:
    """The first field of ``rule`` at fault and what is wrong with it; ``None`` when sound."""
    for name in ("max_miss_rate", "max_error_rate"):
        value = getattr(rule, name)
        if value is not None and (not _number(value) or not 0 < value <= 1):
            return name, f"{name} must be a share above 0 and at most 1 (0.05: 5%), got {value!r}"
    drop = rule.max_quality_drop
    if drop is not None and (not _number(drop) or not 0 < drop < math.inf):
        return "max_quality_drop", f"max_quality_drop must be a number above 0, got {drop!r}"
    metric_problem = (
        None if rule.quality_metric is None else quality_metric_problem(rule.quality_metric)
    )
    if metric_problem is not None:
        return "quality_metric", f"quality_metric: {metric_problem}"
    if not _flag(rule.on_drift):
        return "on_drift", f"on_drift must be true or false, got {rule.on_drift!r}"
    requests = rule.min_requests
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        return "min_requests", f"min_requests must be a whole number from 1, got {requests!r}"
    minutes = rule.window_minutes
    if not _number(minutes) or not 0 < minutes < math.inf:
        return "window_minutes", f"window_minutes must be a number above 0, got {minutes!r}"
    cooldown = rule.cooldown_minutes
    if not _number(cooldown) or not 0 <= cooldown < math.inf:
        return "cooldown_minutes", f"cooldown_minutes must be a number ≥ 0, got {cooldown!r}"
    webhook = rule.webhook
    if webhook is not None and (
        not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))
    ):
        return "webhook", f"webhook must be an http(s) URL, got {webhook!r}"
    if not any(getattr(rule, name) not in (None, False) for name in TRIGGERS):
        return (
            "max_miss_rate",
            "a rollback rule needs at least one of max_miss_rate, max_error_rate, "
            "max_quality_drop or on_drift: true",
        )
    return None


def rule_of(data: Mapping[str, Any]) -> RollbackRule:
    """The rule ``data`` (JSON values, e.g. ``to_json``'s) describes; ``KeyError`` naming an
    unknown field (whether the values are sound is ``rule_problem``'s to say)."""
    known = {f.name for f in fields(RollbackRule)}
    for key in data:
        if key not in known:
            raise KeyError(key)
    return RollbackRule(**dict(data))


def normalized(rule: RollbackRule) -> RollbackRule:
    """``rule`` with its minutes and rates as floats (as they come back from storage)."""
    changes: dict[str, Any] = {}
    for name in ("max_miss_rate", "max_error_rate", "max_quality_drop"):
        value = getattr(rule, name)
        if _number(value):
            changes[name] = float(value)
    for name in ("window_minutes", "cooldown_minutes"):
        changes[name] = float(getattr(rule, name))
    return replace(rule, **changes)


def _flag(value: object) -> bool:
    return isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
