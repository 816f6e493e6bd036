"""How deploy, canary, shadow and rollback change a traffic policy, on a real SQLite registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.errors import ConfigError, ConflictError, NotFoundError
from gristmill.stores.models import effective_policy
from gristmill.testing.metadata_records import make_candidate
from gristmill.training.deployment import PromotionRule, deploy, rollback
from gristmill.training.gate import promote


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    with SqlMetadataStore(f"sqlite:///{tmp_path}/meta.db") as opened:
        for i in range(1, 6):
            candidate = make_candidate(f"c-{i}", artifact=f"sha256:{i}")
            opened.candidates.save_candidate(candidate)
            opened.registry.register_version("churn", candidate)
        yield opened


def aliases(store: SqlMetadataStore) -> dict[str, int]:
    return {a.alias: a.version for a in store.registry.list_aliases("churn")}


def test_deploying_primaries_keeps_a_fallback_chain(store: SqlMetadataStore) -> None:
    first = deploy(store.registry, "churn", 1, reason="first", actor="ann")
    assert first.before is None and first.changed
    assert (first.after.primary, first.after.fallback, first.after.revision) == (1, (), 1)
    deploy(store.registry, "churn", 2)
    third = deploy(store.registry, "churn", 3).after
    assert (third.primary, third.fallback, third.revision) == (3, (2, 1), 3)
    fourth = deploy(store.registry, "churn", 4).after
    assert fourth.fallback == (3, 2)  # FALLBACK_DEPTH earlier primaries
    assert aliases(store) == {"champion": 4, "previous": 3}


def test_the_same_deployment_again_changes_nothing(store: SqlMetadataStore) -> None:
    deploy(store.registry, "churn", 1)
    again = deploy(store.registry, "churn", 1, reason="redelivered")
    assert not again.changed and again.after.revision == 1


def test_a_canary_is_promoted_by_deploying_it(store: SqlMetadataStore) -> None:
    deploy(store.registry, "churn", 1)
    canary = deploy(store.registry, "churn", 2, mode="canary", share=0.2).after
    assert (canary.primary, canary.canary, canary.canary_share, canary.kind) == (
        1,
        2,
        0.2,
        "canary",
    )
    promoted = deploy(store.registry, "churn", 2).after
    assert (promoted.primary, promoted.canary, promoted.fallback) == (2, None, (1,))


def test_shadows_are_added_and_a_shadow_can_become_primary(store: SqlMetadataStore) -> None:
    deploy(store.registry, "churn", 1)
    deploy(store.registry, "churn", 2, mode="shadow")
    shadowed = deploy(store.registry, "churn", 3, mode="shadow").after
    assert shadowed.shadow == (2, 3)
    primary = deploy(store.registry, "churn", 3).after
    assert (primary.primary, primary.shadow, primary.fallback) == (3, (2,), (1,))


def test_rollback_returns_to_previous_and_clears_the_canary(store: SqlMetadataStore) -> None:
    deploy(store.registry, "churn", 1)
    deploy(store.registry, "churn", 2)
    deploy(store.registry, "churn", 3, mode="canary", share=0.5)
    back = rollback(store.registry, "churn", reason="errors", actor="ann").after
    assert (back.primary, back.canary, back.fallback, back.changed_by) == (1, None, (), "ann")
    assert aliases(store) == {"champion": 1}
    with pytest.raises(ConfigError, match=r"no @previous version.*gristmill deploy churn"):
        rollback(store.registry, "churn")


def test_rollback_of_a_champion_without_a_policy(store: SqlMetadataStore) -> None:
    store.registry.set_alias("churn", "champion", 1)
    store.registry.set_alias("churn", "champion", 2, previous="previous")
    back = rollback(store.registry, "churn").after
    assert (back.primary, back.revision) == (1, 1)
    with pytest.raises(NotFoundError, match="'fraud' is not deployed"):
        rollback(store.registry, "fraud")


def test_wrong_deployments_are_explained(store: SqlMetadataStore) -> None:
    with pytest.raises(ConfigError, match=r"no live version yet.*gristmill deploy churn"):
        deploy(store.registry, "churn", 2, mode="canary")
    deploy(store.registry, "churn", 1)
    with pytest.raises(NotFoundError, match="no version 9 of model 'churn'"):
        deploy(store.registry, "churn", 9)
    with pytest.raises(ConfigError, match="canary_share must be between 0 and 1"):
        deploy(store.registry, "churn", 2, mode="canary", share=1.5)
    with pytest.raises(ConfigError, match="primary already"):
        deploy(store.registry, "churn", 1, mode="shadow")


def test_promote_moves_the_primary_of_a_stored_policy(store: SqlMetadataStore) -> None:
    deploy(store.registry, "churn", 1)
    deploy(store.registry, "churn", 2, mode="canary", share=0.1)
    done = promote(store, "c-3", "churn", actor="ann")
    assert done.replaced is not None and done.replaced.version == 1
    policy = store.registry.get_policy("churn")
    assert policy is not None
    assert (policy.primary, policy.canary, policy.fallback) == (3, 2, (1,))
    assert aliases(store) == {"champion": 3, "previous": 1}
    assert effective_policy(store.registry, "churn") == policy


def test_a_canary_rule_travels_with_the_canary_and_leaves_with_it(
    store: SqlMetadataStore,
) -> None:
    deploy(store.registry, "churn", 1)
    rule = PromotionRule(requests=100, minutes=2)
    canary = deploy(store.registry, "churn", 2, mode="canary", rule=rule).after
    assert (canary.promote_after_requests, canary.promote_after_minutes) == (100, 2.0)
    other_primary = deploy(store.registry, "churn", 3).after  # the canary stays, judged
    assert (other_primary.canary, other_primary.promote_after_requests) == (2, 100)
    promoted = deploy(store.registry, "churn", 2).after
    assert (promoted.canary, promoted.promote_after_requests) == (None, None)
    with pytest.raises(ConfigError, match=r"promotion rule .* is for a canary"):
        deploy(store.registry, "churn", 4, rule=rule)


def test_pulling_a_canary_keeps_the_primary(store: SqlMetadataStore) -> None:
    deploy(store.registry, "churn", 1)
    deploy(store.registry, "churn", 2)
    deploy(store.registry, "churn", 3, mode="canary", rule=PromotionRule(requests=5))
    pulled = rollback(store.registry, "churn", canary_only=True, reason="errors").after
    assert (pulled.primary, pulled.canary, pulled.fallback) == (2, None, (1,))
    assert pulled.promote_after_requests is None
    with pytest.raises(ConfigError, match="no canary to pull"):
        rollback(store.registry, "churn", canary_only=True)


def test_a_change_expecting_a_stale_revision_is_refused(store: SqlMetadataStore) -> None:
    with pytest.raises(ConflictError, match="revision 0, not 1"):
        deploy(store.registry, "churn", 1, expected_revision=1)
    first = deploy(store.registry, "churn", 1, expected_revision=0).after
    deploy(store.registry, "churn", 2, mode="canary")
    with pytest.raises(ConflictError, match="revision 2, not 1"):
        rollback(store.registry, "churn", canary_only=True, expected_revision=first.revision)
    with pytest.raises(ConflictError, match="revision 2, not 1"):
        deploy(store.registry, "churn", 2, expected_revision=first.revision)
    assert effective_policy(store.registry, "churn").canary == 2  # type: ignore[union-attr]
