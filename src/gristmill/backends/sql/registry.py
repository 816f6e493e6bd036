"""``ModelRegistry`` on SQL: numbered versions per model name, and movable aliases.

Numbering is race-safe by constraint, not by lock: a writer reads the model's highest
version and inserts the next one with ``ON CONFLICT DO NOTHING``; when another writer took
that number (or registered the same candidate) first, the transaction is rolled back and
run again, and then sees the other's row. SQLite never gets there (its write transactions
are serialized); PostgreSQL at read-committed does, under concurrent registrations. An alias
row is read ``FOR UPDATE`` before it moves, so concurrent moves of one alias queue up and
each records the version it really replaced. Lineage and audit rows are written in the same
transaction as the change they describe.

A traffic policy is one row per model, read ``FOR UPDATE`` before it changes, so concurrent
changes queue up and number their revisions without gaps; the first one of a model is an
insert that collides (and is retried as an update) when another writer got there first.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import (
    audit_log,
    lineage_edges,
    model_aliases,
    model_versions,
    traffic_policies,
)
from gristmill.core.ids import new_id
from gristmill.errors import BackendError, ConfigError, ConflictError, NotFoundError
from gristmill.stores.metadata import AuditEntry, LineageEdge
from gristmill.stores.models import (
    Candidate,
    ModelAlias,
    ModelVersion,
    TrafficPolicy,
    check_alias,
    check_model_name,
    check_policy,
)
from gristmill.stores.rollback_rules import normalized, rule_of

T = TypeVar("T")
ATTEMPTS = 50
_versions, _aliases, _policies = model_versions, model_aliases, traffic_policies
CHAMPION, PREVIOUS = "champion", "previous"


class _CollisionError(Exception):
    """Another writer committed a clashing row first: roll back and run the work again."""


class SqlModelRegistry:
    """Model versions and aliases in the metadata database (see the module docstring)."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def register_version(
        self, model: str, candidate: Candidate, *, actor: str = "gristmill"
    ) -> ModelVersion:
        check_model_name(model)
        return self._retrying(
            f"registering {candidate.candidate_id} as a version of {model!r}",
            lambda connection: self._register(connection, model, candidate, actor),
        )

    def get_version(self, model: str, version: int) -> ModelVersion:
        with self._db.read() as connection:
            found = _select_version(connection, model, version)
        if found is None:
            raise NotFoundError(
                f"no version {version} of model {model!r}; list its versions with "
                f"`gristmill models {model}` (or every model with `gristmill models`)"
            )
        return found

    def list_versions(
        self, model: str | None = None, *, candidate_id: str | None = None, limit: int = 100
    ) -> list[ModelVersion]:
        query = sa.select(_versions).limit(limit)
        if model is not None:
            query = query.where(_versions.c.model == model).order_by(_versions.c.version.desc())
        else:
            query = query.order_by(
                _versions.c.created_at.desc(), _versions.c.model, _versions.c.version.desc()
            )
        if candidate_id is not None:
            query = query.where(_versions.c.candidate_id == candidate_id)
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return [to_object(ModelVersion, row) for row in rows]

    def set_alias(
        self,
        model: str,
        alias: str,
        version: int,
        *,
        previous: str | None = None,
        actor: str = "gristmill",
    ) -> ModelVersion | None:
        check_model_name(model)
        check_alias(alias)
        if previous is not None:
            check_alias(previous)
            if previous == alias:
                raise ConfigError(f"alias {alias!r} cannot also keep the version it leaves")
        return self._retrying(
            f"moving {model}@{alias} to version {version}",
            lambda connection: self._set_alias(connection, model, alias, version, previous, actor),
        )

    def find_alias(self, model: str, alias: str) -> ModelVersion | None:
        query = (
            sa.select(_versions)
            .join(
                _aliases,
                sa.and_(
                    _aliases.c.model == _versions.c.model, _aliases.c.version == _versions.c.version
                ),
            )
            .where(_aliases.c.model == model, _aliases.c.alias == alias)
        )
        with self._db.read() as connection:
            row = connection.execute(query).first()
        return None if row is None else to_object(ModelVersion, row)

    def remove_alias(
        self, model: str, alias: str, *, actor: str = "gristmill"
    ) -> ModelVersion | None:
        with self._db.write() as connection:
            old = _locked_alias(connection, model, alias)
            if old is None:
                return None
            connection.execute(sa.delete(_aliases).where(*_alias_key(model, alias)))
            _audit(
                connection, actor, "model.alias_removed", model, {"alias": alias, "version": old}
            )
            return _select_version(connection, model, old)

    def list_aliases(self, model: str) -> list[ModelAlias]:
        query = sa.select(_aliases).where(_aliases.c.model == model).order_by(_aliases.c.alias)
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return [to_object(ModelAlias, row) for row in rows]

    def get_policy(self, model: str) -> TrafficPolicy | None:
        with self._db.read() as connection:
            return _select_policy(connection, model)

    def set_policy(
        self,
        policy: TrafficPolicy,
        *,
        actor: str = "gristmill",
        expected_revision: int | None = None,
    ) -> TrafficPolicy:
        check_policy(policy)
        return self._retrying(
            f"setting the traffic policy of {policy.model!r}",
            lambda connection: self._set_policy(connection, policy, actor, expected_revision),
        )

    def list_policies(self) -> list[TrafficPolicy]:
        query = sa.select(_policies).order_by(_policies.c.model)
        with self._db.read() as connection:
            return [_policy_of(row) for row in connection.execute(query).all()]

    # -- transactions ----------------------------------------------------------------------

    def _retrying(self, what: str, work: Callable[[sa.Connection], T]) -> T:
        for attempt in range(ATTEMPTS):
            try:
                with self._db.write() as connection:
                    return work(connection)
            except _CollisionError:
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise BackendError(
            f"{what} collided with other writers {ATTEMPTS} times in a row; try again"
        )

    def _register(
        self, connection: sa.Connection, model: str, candidate: Candidate, actor: str
    ) -> ModelVersion:
        known = sa.select(_versions).where(
            _versions.c.model == model, _versions.c.candidate_id == candidate.candidate_id
        )
        row = connection.execute(known).first()
        if row is not None:
            return to_object(ModelVersion, row)
        highest = sa.select(sa.func.max(_versions.c.version)).where(_versions.c.model == model)
        number = (connection.execute(highest).scalar() or 0) + 1
        # Stamped after reading the highest number, so a later version never looks older.
        version = ModelVersion(
            model=model,
            version=number,
            candidate_id=candidate.candidate_id,
            created_at=datetime.now(UTC),
            artifact=candidate.artifact,
            task=candidate.task,
            metrics=dict(candidate.metrics),
        )
        if not self._db.insert_new(connection, _versions, to_values(version)):
            raise _CollisionError
        edge = LineageEdge(
            candidate.candidate_id,
            "candidate",
            version.ref,
            "model_version",
            "registered_as",
            version.created_at,
        )
        self._db.insert_missing(connection, lineage_edges, [to_values(edge)])
        details = {"version": number, "candidate_id": candidate.candidate_id}
        _audit(connection, actor, "model.registered", model, details, version.created_at)
        return version

    def _set_alias(
        self,
        connection: sa.Connection,
        model: str,
        alias: str,
        version: int,
        previous: str | None,
        actor: str,
    ) -> ModelVersion | None:
        target = _select_version(connection, model, version)
        if target is None:
            raise NotFoundError(
                f"cannot point {model}@{alias} at version {version}: model {model!r} has no "
                f"such version; list its versions with `gristmill models {model}`"
            )
        old = self._point(connection, model, alias, version, actor)
        if old == version:
            return target
        if old is not None and previous is not None:
            self._point(connection, model, previous, old, actor)
        return None if old is None else _select_version(connection, model, old)

    def _set_policy(
        self,
        connection: sa.Connection,
        policy: TrafficPolicy,
        actor: str,
        expected: int | None,
    ) -> TrafficPolicy:
        model = policy.model
        for role, version in _roles(policy):
            if _select_version(connection, model, version) is None:
                raise NotFoundError(
                    f"traffic policy of {model!r}: {role} version {version} does not exist; "
                    f"list the versions with `gristmill models {model}`"
                )
        current = _select_policy(connection, model, lock=True)
        revision = current.revision if current else 0
        if expected is not None and expected != revision:
            raise ConflictError(
                f"the traffic policy of {model!r} is at revision {revision}, not {expected} "
                "as expected: it changed meanwhile; read it again (`gristmill deployments "
                f"{model}`) and decide on the current one"
            )
        if current is not None and _same_routing(current, policy):
            return current
        now = datetime.now(UTC)
        canary_since, canary_revision = None, None
        if policy.canary is not None:
            kept = current is not None and current.canary == policy.canary
            canary_since = (current.canary_since if kept and current else None) or now
            canary_revision = (current.canary_revision if kept and current else None) or (
                revision + 1
            )
        stored = TrafficPolicy(
            model=model,
            primary=policy.primary,
            canary=policy.canary,
            canary_share=float(policy.canary_share) if policy.canary is not None else 0.0,
            shadow=tuple(policy.shadow),
            fallback=tuple(policy.fallback),
            revision=revision + 1,
            changed_at=now,
            changed_by=actor,
            reason=policy.reason,
            promote_after_requests=policy.promote_after_requests,
            promote_after_minutes=_minutes(policy.promote_after_minutes),
            canary_since=canary_since,
            canary_revision=canary_revision,
            rollback_rule=None
            if policy.rollback_rule is None
            else normalized(policy.rollback_rule),
        )
        values = {**to_values(stored), "shadow": list(stored.shadow)}
        values["fallback"] = list(stored.fallback)
        rule = stored.rollback_rule
        values["rollback_rule"] = None if rule is None else rule.to_json()
        if current is None:
            if not self._db.insert_new(connection, _policies, values):
                raise _CollisionError  # another writer stored the first one: change that
        else:
            connection.execute(
                sa.update(_policies).where(_policies.c.model == model).values(**values)
            )
        self._point(connection, model, CHAMPION, stored.primary, actor)
        if stored.fallback:
            self._point(connection, model, PREVIOUS, stored.fallback[0], actor)
        else:
            old = _locked_alias(connection, model, PREVIOUS)
            if old is not None:
                connection.execute(sa.delete(_aliases).where(*_alias_key(model, PREVIOUS)))
                details = {"alias": PREVIOUS, "version": old}
                _audit(connection, actor, "model.alias_removed", model, details, now)
        details = {
            "revision": stored.revision,
            "replaced_revision": current.revision if current else None,
            "policy": _routing(stored),
            "before": _routing(current) if current else None,
            "reason": stored.reason,
        }
        _audit(connection, actor, "model.policy_set", model, details, now)
        return stored

    def _point(
        self, connection: sa.Connection, model: str, alias: str, version: int, actor: str
    ) -> int | None:
        """Move one alias (locked first); the version it pointed at before."""
        old = _locked_alias(connection, model, alias)
        if old == version:
            return old
        now = datetime.now(UTC)
        values = {"model": model, "alias": alias, "version": version, "updated_at": now}
        if old is None:
            if not self._db.insert_new(connection, _aliases, values):
                raise _CollisionError  # set by another writer since the read: move it from there
        else:
            update = sa.update(_aliases).where(*_alias_key(model, alias))
            connection.execute(update.values(version=version, updated_at=now))
        details = {"alias": alias, "version": version, "from": old}
        _audit(connection, actor, "model.alias_set", model, details, now)
        return old


def _minutes(value: float | None) -> float | None:
    return None if value is None else float(value)


def _alias_key(model: str, alias: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (_aliases.c.model == model, _aliases.c.alias == alias)


def _locked_alias(connection: sa.Connection, model: str, alias: str) -> int | None:
    # FOR UPDATE on PostgreSQL; SQLite's write transaction holds the whole database already.
    query = sa.select(_aliases.c.version).where(*_alias_key(model, alias)).with_for_update()
    value = connection.execute(query).scalar()
    return None if value is None else int(value)


def _roles(policy: TrafficPolicy) -> list[tuple[str, int]]:
    roles = [("primary", policy.primary)]
    roles += [("canary", policy.canary)] if policy.canary is not None else []
    return (
        roles + [("shadow", v) for v in policy.shadow] + [("fallback", v) for v in policy.fallback]
    )


def _routing(policy: TrafficPolicy) -> dict[str, Any]:
    """The part of a policy that decides who answers (what a change is about); a canary's
    promotion rule and the rollback rule, when it has them."""
    routing: dict[str, Any] = {
        "primary": policy.primary,
        "canary": policy.canary,
        "canary_share": policy.canary_share if policy.canary is not None else 0.0,
        "shadow": list(policy.shadow),
        "fallback": list(policy.fallback),
    }
    if policy.promote_after_requests is not None:
        routing["promote_after_requests"] = policy.promote_after_requests
    if policy.promote_after_minutes is not None:
        routing["promote_after_minutes"] = float(policy.promote_after_minutes)
    if policy.rollback_rule is not None:
        routing["rollback"] = normalized(policy.rollback_rule).to_json()
    return routing


def _same_routing(a: TrafficPolicy, b: TrafficPolicy) -> bool:
    return _routing(a) == _routing(b)


def _select_policy(
    connection: sa.Connection, model: str, *, lock: bool = False
) -> TrafficPolicy | None:
    query = sa.select(_policies).where(_policies.c.model == model)
    row = connection.execute(query.with_for_update() if lock else query).first()
    return None if row is None else _policy_of(row)


def _policy_of(row: sa.Row[Any]) -> TrafficPolicy:
    values = dict(row._mapping)
    values["shadow"] = tuple(int(v) for v in values["shadow"])
    values["fallback"] = tuple(int(v) for v in values["fallback"])
    rule = values["rollback_rule"]
    values["rollback_rule"] = None if rule is None else rule_of(rule)
    return TrafficPolicy(**values)


def _select_version(connection: sa.Connection, model: str, version: int) -> ModelVersion | None:
    query = sa.select(_versions).where(_versions.c.model == model, _versions.c.version == version)
    row = connection.execute(query).first()
    return None if row is None else to_object(ModelVersion, row)


def _audit(
    connection: sa.Connection,
    actor: str,
    action: str,
    model: str,
    details: dict[str, Any],
    at: datetime | None = None,
) -> None:
    entry = AuditEntry(new_id(), at or datetime.now(UTC), actor, action, f"model:{model}", details)
    connection.execute(sa.insert(audit_log), to_values(entry))
