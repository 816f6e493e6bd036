"""Model stores: split manifests, model candidates and the model registry.

* A **split** (``split_id``) says which rows of a feature set are train / validation / test:
  a reproducible rule (strategy + parameters + seed) and, when the rule cannot be replayed
  cheaply, the row membership (stored as an artifact by digest). Its warnings travel with it.
* A **candidate** is one trained model: its config, the fitted artifact (the estimator
  together with the fitted feature pipeline, so it scores raw rows), learned parameters,
  the feature set and split it saw, timings, library versions, metrics once evaluated.
  ``candidate_id`` is derived from (feature set, split, name, algorithm, params), so a
  resumed run finds the candidates already trained and skips them.
* The **registry** names the models that may serve: a candidate registered under a model
  name becomes a numbered **version** (1, 2, 3 … per name, never reused), and **aliases**
  (``champion``, ``challenger``, ``previous`` …) point at versions and move between them.

``get_*`` raise ``NotFoundError``; ``find_*`` return ``None``; lists are newest first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from gristmill.core.names import NAME_PATTERN
from gristmill.errors import ConfigError, NotFoundError
from gristmill.stores.rollback_rules import RollbackRule, rule_problem

CandidateStatus = Literal["trained", "failed"]
ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
CHAMPION = "champion"
"""The alias of the version that answers (``promote`` moves it; the deployment stage too)."""
PREVIOUS = "previous"
"""The alias of the version ``@champion`` left: the first fallback, where a rollback goes."""
RESERVED_ALIASES = frozenset({"latest"})
"""Aliases no one may set: ``latest`` stands for the newest version wherever one is asked for."""


@dataclass(frozen=True)
class Split:
    split_id: str
    feature_set_id: str
    strategy: str
    params: dict[str, Any]
    sizes: dict[str, int]
    created_at: datetime
    membership: str | None = None
    """Artifact digest of the row membership (an Arrow IPC of subset labels), if stored."""
    warnings: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None


@dataclass(frozen=True)
class Candidate:
    candidate_id: str
    name: str
    algorithm: str
    task: str
    params: dict[str, Any]
    feature_set_id: str
    split_id: str
    status: CandidateStatus
    started_at: datetime
    finished_at: datetime | None = None
    artifact: str | None = None
    """Artifact digest of the fitted model bundle."""
    learned: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    tuning: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    attempts: int = 1
    error: str | None = None
    run_id: str | None = None


class SplitReader(Protocol):
    def get_split(self, split_id: str) -> Split: ...

    def find_split(self, split_id: str) -> Split | None: ...


def missing_split(split_id: str) -> NotFoundError:
    """What ``get_split`` raises when no split has ``split_id``."""
    return NotFoundError(
        f"no split with id {split_id!r}; each candidate names the split it saw: "
        "list candidates with `gristmill ls candidates`"
    )


class SplitStore(SplitReader, Protocol):
    def add_split(self, split: Split) -> Split:
        """Record it; if the id exists, return the recorded one (idempotent)."""
        ...


class CandidateReader(Protocol):
    def get_candidate(self, candidate_id: str) -> Candidate: ...

    def find_candidate(self, candidate_id: str) -> Candidate | None: ...

    def list_candidates(
        self,
        *,
        run_id: str | None = None,
        feature_set_id: str | None = None,
        limit: int = 100,
    ) -> list[Candidate]: ...


def missing_candidate(candidate_id: str) -> NotFoundError:
    """What ``get_candidate`` raises when no candidate has ``candidate_id``."""
    return NotFoundError(
        f"no candidate with id {candidate_id!r}; list candidates with `gristmill ls candidates`"
    )


class CandidateStore(CandidateReader, Protocol):
    def save_candidate(self, candidate: Candidate) -> None:
        """Insert or replace the candidate with this id (a retry or an evaluation updates it)."""
        ...


@dataclass(frozen=True)
class ModelVersion:
    """One numbered version of a named model: the candidate it was made from, frozen.

    ``artifact`` (the model bundle's digest), ``task`` and ``metrics`` are copied from the
    candidate when it is registered, so the version keeps what it was promoted with even if
    the candidate is evaluated again later.
    """

    model: str
    version: int
    candidate_id: str
    created_at: datetime
    artifact: str | None = None
    task: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``<model>/<version>`` (``churn/3``): the version's node id in lineage."""
        return f"{self.model}/{self.version}"


@dataclass(frozen=True)
class ModelAlias:
    """``model@alias`` points at ``version`` since ``updated_at``."""

    model: str
    alias: str
    version: int
    updated_at: datetime


PolicyKind = Literal["single", "canary"]


@dataclass(frozen=True)
class TrafficPolicy:
    """How requests that name ``model`` without a version or alias are answered.

    ``primary`` answers them. With ``canary`` (a version) a share ``canary_share`` (0 < s < 1)
    of requests goes to it instead — sticky: the same entity key or request key always
    reaches the same version. ``shadow`` versions score every request beside the answer
    (logged, never returned, never slowing it). ``fallback`` versions answer, in order,
    when the chosen one errors or is not ready. A request naming a version or an alias
    (``model@challenger``, ``model/3``) is answered by that version, bypassing the policy.
    ``revision`` counts changes (1, 2, …) so servers can tell a newer policy from the one
    they hold; ``changed_by``/``reason`` say who changed it last and why (each change is
    also an audit entry).

    A canary may carry a **promotion rule**: ``promote_after_requests`` (requests it must
    answer) and/or ``promote_after_minutes`` (minutes it must run) without a server error;
    the canary judge (``training.canary``) then promotes it, or pulls it at its first error.
    Neither set: the canary waits for a person. ``canary_since`` and ``canary_revision``
    are when, and at which revision, the canary version started as one (kept while the
    policy changes otherwise, e.g. its share), set by the registry.

    A policy may carry a **rollback rule** (``rollback_rule``): when its primary or canary
    misses too many latency budgets, errs too often, drifts or loses quality, the rollback
    judge (``training.rollback``) demotes it. Changes made from a stored policy keep it.
    """

    model: str
    primary: int
    canary: int | None = None
    canary_share: float = 0.0
    shadow: tuple[int, ...] = ()
    fallback: tuple[int, ...] = ()
    revision: int = 0
    changed_at: datetime | None = None
    changed_by: str = "gristmill"
    reason: str = ""
    promote_after_requests: int | None = None
    promote_after_minutes: float | None = None
    canary_since: datetime | None = None
    canary_revision: int | None = None
    rollback_rule: RollbackRule | None = None

    @property
    def judged(self) -> bool:
        """A canary with a promotion rule: the canary judge decides its fate."""
        return self.canary is not None and (
            self.promote_after_requests is not None or self.promote_after_minutes is not None
        )

    @property
    def kind(self) -> PolicyKind:
        return "single" if self.canary is None else "canary"

    def versions(self) -> tuple[int, ...]:
        """Every version the policy needs loaded: primary, canary, shadows, fallbacks."""
        held = [self.primary, *([self.canary] if self.canary is not None else [])]
        held += [*self.shadow, *self.fallback]
        return tuple(dict.fromkeys(held))


class ModelRegistry(Protocol):
    """Named models, their monotonic versions and movable aliases.

    * Versions of a model are numbered 1, 2, 3 … in the order they are registered, without
      gaps or reuse, even when several processes register at once. A candidate is
      registered at most once per model: registering it again returns its version.
    * An alias names one version of one model; setting it moves it. Each change is atomic.
    * Registering records a lineage edge ``candidate → <model>/<version>`` (relation
      ``registered_as``) and an audit entry; every alias change records an audit entry
      (subject ``model:<model>``, action ``model.registered`` / ``model.alias_set`` /
      ``model.alias_removed``, details naming the version and, for a move, the one before).
    * Model names follow the spec's name pattern; aliases start with a letter and hold up
      to 64 letters, digits, ``_`` and ``-``; ``latest`` is reserved. Others: ``ConfigError``.
    """

    def register_version(
        self, model: str, candidate: Candidate, *, actor: str = "gristmill"
    ) -> ModelVersion:
        """Register ``candidate`` as the next version of ``model`` (created on first use);
        if it is registered under ``model`` already, return that version unchanged."""
        ...

    def get_version(self, model: str, version: int) -> ModelVersion:
        """``NotFoundError`` naming the model and version when there is none."""
        ...

    def list_versions(
        self, model: str | None = None, *, candidate_id: str | None = None, limit: int = 100
    ) -> list[ModelVersion]:
        """Versions of ``model`` (every model when ``None``), newest first; ``candidate_id``
        keeps only the versions made from that candidate."""
        ...

    def set_alias(
        self,
        model: str,
        alias: str,
        version: int,
        *,
        previous: str | None = None,
        actor: str = "gristmill",
    ) -> ModelVersion | None:
        """Point ``model@alias`` at ``version``; return the version it pointed at before.

        With ``previous`` (e.g. ``"previous"``), the version ``alias`` leaves gets that
        alias in the same transaction, so a promotion keeps its fallback. Setting an alias
        to the version it points at already changes nothing. ``NotFoundError`` if the
        version does not exist.
        """
        ...

    def find_alias(self, model: str, alias: str) -> ModelVersion | None:
        """The version ``model@alias`` points at, or ``None``."""
        ...

    def remove_alias(
        self, model: str, alias: str, *, actor: str = "gristmill"
    ) -> ModelVersion | None:
        """Remove ``model@alias``; return the version it pointed at (``None``: it was not set)."""
        ...

    def list_aliases(self, model: str) -> list[ModelAlias]:
        """The aliases of ``model``, by name."""
        ...

    # -- traffic policies ------------------------------------------------------------------

    def get_policy(self, model: str) -> TrafficPolicy | None:
        """The *stored* traffic policy of ``model``, or ``None`` when none was ever set.

        A model without a stored policy but with a ``@champion`` is served as a single
        policy on its champion: ask ``effective_policy(registry, model)`` for what is live.
        """
        ...

    def set_policy(
        self,
        policy: TrafficPolicy,
        *,
        actor: str = "gristmill",
        expected_revision: int | None = None,
    ) -> TrafficPolicy:
        """Store ``policy`` for ``policy.model`` atomically; return it as stored.

        The stored policy has ``revision`` = the previous revision + 1 (1 for the first),
        ``changed_at`` = now and ``changed_by`` = ``actor``; ``canary_since`` = now and
        ``canary_revision`` = the new revision for a canary version that was not the canary
        before, else the stored ones (the given values of those fields are ignored). With
        ``expected_revision`` the change is made only if the stored revision is still that
        one (0: no policy stored yet), checked in the same transaction; else
        ``ConflictError`` naming both revisions and nothing is stored — how one of several
        servers judging the same canary wins. In the same transaction
        ``@champion`` moves to the primary and ``@previous`` to the first fallback (removed
        when there is none), so aliases and policy never disagree; an audit entry
        ``model.policy_set`` records who, what (the policy and the revision it replaced) and
        why (``reason``). A policy equal in its versions, share, promotion rule and rollback
        rule to the stored one changes nothing and returns the stored one (a repeated
        deployment is not a new revision). ``ConfigError`` naming the field for a share
        outside (0, 1) with a canary, a share without one, a canary equal to the primary, a
        version named twice, a promotion rule without a canary or an unsound rollback rule;
        ``NotFoundError`` naming the field for a version that does not exist.
        """
        ...

    def list_policies(self) -> list[TrafficPolicy]:
        """Every stored policy, by model name (models served on ``@champion`` alone are not
        listed: see ``effective_policy``)."""
        ...


def check_model_name(model: str) -> None:
    """``ConfigError`` unless ``model`` is a valid model name."""
    if not re.fullmatch(NAME_PATTERN, model):
        raise ConfigError(
            f"model name {model!r} must start with a letter and hold only letters, digits, "
            "'_' and '-'"
        )


def check_alias(alias: str) -> None:
    """``ConfigError`` unless ``alias`` is a valid, unreserved alias."""
    if not re.fullmatch(ALIAS_PATTERN, alias):
        raise ConfigError(
            f"alias {alias!r} must start with a letter and hold at most 64 letters, digits, "
            "'_' and '-' (e.g. champion, challenger, previous)"
        )
    if alias in RESERVED_ALIASES:
        raise ConfigError(f"alias {alias!r} is reserved; choose another name")


def check_policy(policy: TrafficPolicy) -> None:
    """``ConfigError`` naming the field when ``policy`` is inconsistent in itself (whether its
    versions exist is the registry's to check)."""
    check_model_name(policy.model)
    where = f"traffic policy of {policy.model!r}"
    if policy.canary is None:
        if policy.canary_share != 0:
            raise ConfigError(
                f"{where}: canary_share {policy.canary_share:g} is set without a canary "
                "version; name the canary or leave the share at 0"
            )
    else:
        if not 0 < policy.canary_share < 1:
            raise ConfigError(
                f"{where}: canary_share must be between 0 and 1 (exclusive), got "
                f"{policy.canary_share:g}; e.g. 0.1 sends a tenth of requests to the canary"
            )
        if policy.canary == policy.primary:
            raise ConfigError(
                f"{where}: canary version {policy.canary} is the primary already; make "
                "another version the canary, or deploy it without a canary"
            )
    _check_rule(policy, where)
    if policy.rollback_rule is not None:
        problem = rule_problem(policy.rollback_rule)
        if problem is not None:
            raise ConfigError(f"{where}: rollback rule: {problem[1]}")
    roles = [("primary", policy.primary)]
    roles += [("canary", policy.canary)] if policy.canary is not None else []
    roles += [("shadow", v) for v in policy.shadow] + [("fallback", v) for v in policy.fallback]
    seen: dict[int, str] = {}
    for role, version in roles:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ConfigError(f"{where}: {role} version must be a number from 1, got {version!r}")
        if version in seen:
            raise ConfigError(
                f"{where}: version {version} is named twice (as {seen[version]} and as "
                f"{role}); a version holds one role"
            )
        seen[version] = role


def _check_rule(policy: TrafficPolicy, where: str) -> None:
    requests, minutes = policy.promote_after_requests, policy.promote_after_minutes
    if policy.canary is None and (requests is not None or minutes is not None):
        raise ConfigError(
            f"{where}: a promotion rule (promote_after_requests / promote_after_minutes) is "
            "set without a canary version; name the canary, or leave the rule out"
        )
    if requests is not None and (
        isinstance(requests, bool) or not isinstance(requests, int) or requests < 1
    ):
        raise ConfigError(
            f"{where}: promote_after_requests must be a whole number from 1, got {requests!r}"
        )
    if minutes is not None and (
        isinstance(minutes, bool)
        or not isinstance(minutes, int | float)
        or not 0 < minutes < math.inf
    ):
        raise ConfigError(
            f"{where}: promote_after_minutes must be a number above 0, got {minutes!r}"
        )


def effective_policy(registry: ModelRegistry, model: str) -> TrafficPolicy | None:
    """What answers ``model`` now: its stored policy, else a single policy on ``@champion``
    (revision 0, since the alias moved; ``@previous`` as its fallback), else ``None``."""
    stored = registry.get_policy(model)
    if stored is not None:
        return stored
    aliases = {a.alias: a for a in registry.list_aliases(model)}
    champion = aliases.get("champion")
    if champion is None:
        return None
    previous = aliases.get("previous")
    fallback = (previous.version,) if previous and previous.version != champion.version else ()
    return TrafficPolicy(
        model=model,
        primary=champion.version,
        fallback=fallback,
        revision=0,
        changed_at=champion.updated_at,
        reason="champion alias (no policy stored)",
    )
