"""The traffic policies' part of the registry contract (``ModelRegistry.get_policy`` & co).

``RegistryContract`` inherits it, so a backend passes it by passing the metadata suite; it
reaches the registry as ``store.registry``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gristmill.errors import ConfigError, ConflictError, NotFoundError
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.models import TrafficPolicy, effective_policy
from gristmill.testing.metadata_records import assert_utc, make_candidate, run_together
from gristmill.testing.rollback_rule_contract import RollbackRuleContract


def versions(store: MetadataStore, model: str, count: int) -> None:
    """Register ``count`` versions (1 … count) of ``model``."""
    for i in range(1, count + 1):
        store.registry.register_version(model, make_candidate(f"{model}-c-{i}"))


def aliases(store: MetadataStore, model: str) -> dict[str, int]:
    return {a.alias: a.version for a in store.registry.list_aliases(model)}


def policy_entries(store: MetadataStore, model: str) -> list[dict[str, Any]]:
    entries = store.audit.list_entries(subject=f"model:{model}", limit=1000)
    return [e.details for e in entries if e.action == "model.policy_set"]


class PolicyContract(RollbackRuleContract):
    """Stored traffic policies: revisions, validation, audit, aliases kept in step (their
    rollback rules in the inherited ``RollbackRuleContract``)."""

    __test__ = False

    def test_no_policy_until_one_is_set(self, store: MetadataStore) -> None:
        versions(store, "churn", 2)
        assert store.registry.get_policy("churn") is None
        assert store.registry.list_policies() == []
        assert effective_policy(store.registry, "churn") is None

    def test_a_champion_alone_is_a_single_policy(self, store: MetadataStore) -> None:
        versions(store, "churn", 2)
        store.registry.set_alias("churn", "champion", 1)
        store.registry.set_alias("churn", "champion", 2, previous="previous")
        live = effective_policy(store.registry, "churn")
        assert live is not None
        assert (live.primary, live.canary, live.fallback, live.revision) == (2, None, (1,), 0)
        assert live.kind == "single"
        assert store.registry.get_policy("churn") is None

    def test_set_policy_stores_a_new_revision_and_round_trips(self, store: MetadataStore) -> None:
        versions(store, "churn", 4)
        wanted = TrafficPolicy(
            "churn", primary=2, canary=3, canary_share=0.25, shadow=(4,), fallback=(1,)
        )
        first = store.registry.set_policy(replace(wanted, revision=99, reason="try 3"), actor="ann")
        assert (first.revision, first.changed_by, first.reason) == (1, "ann", "try 3")
        assert (first.primary, first.canary, first.canary_share) == (2, 3, 0.25)
        assert (first.shadow, first.fallback) == ((4,), (1,))
        assert first.changed_at is not None
        assert_utc(first.changed_at)
        assert store.registry.get_policy("churn") == first
        second = store.registry.set_policy(replace(wanted, canary=None, canary_share=0.0))
        assert (second.revision, second.changed_by, second.kind) == (2, "gristmill", "single")
        assert second.changed_at is not None and second.changed_at >= first.changed_at
        assert store.registry.get_policy("churn") == second
        assert effective_policy(store.registry, "churn") == second

    def test_policies_are_listed_by_model(self, store: MetadataStore) -> None:
        versions(store, "fraud", 1)
        versions(store, "churn", 1)
        fraud = store.registry.set_policy(TrafficPolicy("fraud", primary=1))
        churn = store.registry.set_policy(TrafficPolicy("churn", primary=1))
        assert store.registry.list_policies() == [churn, fraud]

    def test_aliases_follow_the_primary_and_first_fallback(self, store: MetadataStore) -> None:
        versions(store, "churn", 3)
        store.registry.set_policy(TrafficPolicy("churn", primary=1))
        assert aliases(store, "churn") == {"champion": 1}
        store.registry.set_policy(TrafficPolicy("churn", primary=2, fallback=(1,)))
        assert aliases(store, "churn") == {"champion": 2, "previous": 1}
        store.registry.set_policy(TrafficPolicy("churn", primary=3, canary=1, canary_share=0.5))
        assert aliases(store, "churn") == {"champion": 3}

    def test_every_change_is_audited_with_who_what_and_why(self, store: MetadataStore) -> None:
        versions(store, "churn", 2)
        store.registry.set_policy(TrafficPolicy("churn", primary=1), actor="ann")
        changed = TrafficPolicy("churn", primary=1, canary=2, canary_share=0.1, reason="canary")
        store.registry.set_policy(changed, actor="bob")
        entries = [
            e
            for e in store.audit.list_entries(subject="model:churn")
            if e.action == "model.policy_set"
        ]
        assert [e.actor for e in entries] == ["bob", "ann"]
        assert entries[0].details == {
            "revision": 2,
            "replaced_revision": 1,
            "policy": {
                "primary": 1,
                "canary": 2,
                "canary_share": 0.1,
                "shadow": [],
                "fallback": [],
            },
            "before": {
                "primary": 1,
                "canary": None,
                "canary_share": 0.0,
                "shadow": [],
                "fallback": [],
            },
            "reason": "canary",
        }

    def test_the_same_routing_again_is_not_a_new_revision(self, store: MetadataStore) -> None:
        versions(store, "churn", 2)
        policy = TrafficPolicy("churn", primary=2, fallback=(1,), reason="first")
        first = store.registry.set_policy(policy)
        again = store.registry.set_policy(replace(policy, reason="redelivered"), actor="x")
        assert again == first
        assert len(policy_entries(store, "churn")) == 1

    @pytest.mark.parametrize(
        ("changes", "match"),
        [
            ({"canary": 2, "canary_share": 0.0}, "canary_share must be between 0 and 1"),
            ({"canary": 2, "canary_share": 1.0}, "canary_share must be between 0 and 1"),
            ({"canary": 2, "canary_share": -0.1}, "canary_share must be between 0 and 1"),
            ({"canary_share": 0.2}, "canary_share 0.2 is set without a canary"),
            ({"canary": 1, "canary_share": 0.2}, "canary version 1 is the primary"),
            ({"shadow": (2, 2)}, "version 2 is named twice"),
            ({"fallback": (1,)}, r"version 1 is named twice \(as primary and as fallback\)"),
            ({"canary": 2, "canary_share": 0.1, "shadow": (2,)}, "as canary and as shadow"),
            ({"primary": 0}, "primary version must be a number from 1"),
        ],
    )
    def test_inconsistent_policies_are_refused_naming_the_field(
        self, store: MetadataStore, changes: dict[str, Any], match: str
    ) -> None:
        versions(store, "churn", 2)
        with pytest.raises(ConfigError, match=match):
            store.registry.set_policy(replace(TrafficPolicy("churn", primary=1), **changes))
        assert store.registry.get_policy("churn") is None
        assert policy_entries(store, "churn") == []

    @pytest.mark.parametrize(
        ("changes", "match"),
        [
            ({"primary": 7}, r"primary version 7 does not exist.*gristmill models churn"),
            ({"canary": 9, "canary_share": 0.5}, "canary version 9 does not exist"),
            ({"shadow": (8,)}, "shadow version 8 does not exist"),
            ({"fallback": (5,)}, "fallback version 5 does not exist"),
        ],
    )
    def test_missing_versions_are_not_found_naming_the_field(
        self, store: MetadataStore, changes: dict[str, Any], match: str
    ) -> None:
        versions(store, "churn", 2)
        with pytest.raises(NotFoundError, match=match):
            store.registry.set_policy(replace(TrafficPolicy("churn", primary=1), **changes))
        assert store.registry.get_policy("churn") is None
        assert aliases(store, "churn") == {}

    def test_a_model_without_versions_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFoundError, match="'fraud'"):
            store.registry.set_policy(TrafficPolicy("fraud", primary=1))
        with pytest.raises(ConfigError, match="model name"):
            store.registry.set_policy(TrafficPolicy("bad name", primary=1))

    def test_racing_changes_number_their_revisions_without_gaps(self, store: MetadataStore) -> None:
        writers = 6
        versions(store, "churn", writers)
        stored = run_together(
            writers,
            lambda i: store.registry.set_policy(TrafficPolicy("churn", primary=i + 1)),
        )
        assert sorted(p.revision for p in stored) == list(range(1, writers + 1))
        last = max(stored, key=lambda p: p.revision)
        assert store.registry.get_policy("churn") == last
        assert aliases(store, "churn")["champion"] == last.primary
        assert sorted(d["revision"] for d in policy_entries(store, "churn")) == list(
            range(1, writers + 1)
        )

    # -- expected revisions: one of several judges wins ----------------------------------

    def test_a_stale_expected_revision_is_refused(self, store: MetadataStore) -> None:
        versions(store, "churn", 3)
        with pytest.raises(ConflictError, match=r"revision 0, not 1"):
            store.registry.set_policy(TrafficPolicy("churn", primary=1), expected_revision=1)
        first = store.registry.set_policy(TrafficPolicy("churn", primary=1), expected_revision=0)
        second = store.registry.set_policy(
            TrafficPolicy("churn", primary=2, fallback=(1,)), expected_revision=first.revision
        )
        assert second.revision == 2
        for stale in (0, 1, 3):
            with pytest.raises(ConflictError, match=rf"'churn'.*revision 2, not {stale}"):
                store.registry.set_policy(
                    TrafficPolicy("churn", primary=3, fallback=(2,)), expected_revision=stale
                )
        # refused even when the routing asked for is the stored one: the caller judged
        # another revision
        with pytest.raises(ConflictError):
            store.registry.set_policy(replace(second, revision=0), expected_revision=1)
        assert store.registry.get_policy("churn") == second
        assert aliases(store, "churn") == {"champion": 2, "previous": 1}
        assert [d["revision"] for d in policy_entries(store, "churn")] == [2, 1]

    def test_of_racing_changes_expecting_one_revision_one_wins(self, store: MetadataStore) -> None:
        judges = 6
        versions(store, "churn", 2)
        base = store.registry.set_policy(
            TrafficPolicy("churn", primary=1, canary=2, canary_share=0.1)
        )
        promoted = TrafficPolicy("churn", primary=2, fallback=(1,), reason="judged")

        def judge(i: int) -> str:
            try:
                store.registry.set_policy(
                    promoted, actor=f"judge-{i}", expected_revision=base.revision
                )
            except ConflictError:
                return "refused"
            return "stored"

        outcomes = run_together(judges, judge)
        assert sorted(outcomes) == ["refused"] * (judges - 1) + ["stored"]
        stored = store.registry.get_policy("churn")
        assert stored is not None and (stored.primary, stored.revision) == (2, 2)
        assert [d["revision"] for d in policy_entries(store, "churn")] == [2, 1]

    # -- promotion rules -------------------------------------------------------------------

    def test_a_canary_promotion_rule_round_trips(self, store: MetadataStore) -> None:
        versions(store, "churn", 2)
        ruled = TrafficPolicy(
            "churn",
            primary=1,
            canary=2,
            canary_share=0.1,
            promote_after_requests=500,
            promote_after_minutes=2.5,
        )
        stored = store.registry.set_policy(ruled)
        assert (stored.promote_after_requests, stored.promote_after_minutes) == (500, 2.5)
        assert stored.judged
        assert store.registry.get_policy("churn") == stored
        assert policy_entries(store, "churn")[0]["policy"] == {
            "primary": 1,
            "canary": 2,
            "canary_share": 0.1,
            "shadow": [],
            "fallback": [],
            "promote_after_requests": 500,
            "promote_after_minutes": 2.5,
        }
        # a changed rule is a change; the same one again is not
        assert store.registry.set_policy(ruled) == stored
        longer = store.registry.set_policy(replace(ruled, promote_after_requests=900))
        assert (longer.revision, longer.promote_after_requests) == (2, 900)
        manual = store.registry.set_policy(
            replace(ruled, promote_after_requests=None, promote_after_minutes=None)
        )
        assert manual.revision == 3 and not manual.judged

    def test_the_canary_start_is_kept_while_the_canary_stays(self, store: MetadataStore) -> None:
        versions(store, "churn", 3)
        assert store.registry.set_policy(TrafficPolicy("churn", primary=1)).canary_since is None
        started = store.registry.set_policy(
            TrafficPolicy("churn", primary=1, canary=2, canary_share=0.1)
        )
        assert started.canary_since == started.changed_at
        assert started.canary_revision == started.revision == 2
        assert_utc(started.canary_since)
        wider = store.registry.set_policy(replace(started, canary_share=0.3, shadow=(3,)))
        assert wider.revision == started.revision + 1
        assert (wider.canary_since, wider.canary_revision) == (started.canary_since, 2)
        other = store.registry.set_policy(replace(wider, canary=3, shadow=()))
        assert other.canary_since == other.changed_at
        assert other.canary_revision == other.revision == 4
        assert other.canary_since is not None and started.canary_since is not None
        assert other.canary_since >= started.canary_since
        gone = store.registry.set_policy(TrafficPolicy("churn", primary=1))
        assert (gone.canary_since, gone.canary_revision) == (None, None)

    @pytest.mark.parametrize(
        ("changes", "match"),
        [
            ({"promote_after_requests": 10}, "promotion rule .* without a canary"),
            ({"promote_after_minutes": 1.0}, "promotion rule .* without a canary"),
            (
                {"canary": 2, "canary_share": 0.1, "promote_after_requests": 0},
                "promote_after_requests must be a whole number from 1",
            ),
            (
                {"canary": 2, "canary_share": 0.1, "promote_after_minutes": 0.0},
                "promote_after_minutes must be a number above 0",
            ),
        ],
    )
    def test_inconsistent_rules_are_refused(
        self, store: MetadataStore, changes: dict[str, Any], match: str
    ) -> None:
        versions(store, "churn", 2)
        with pytest.raises(ConfigError, match=match):
            store.registry.set_policy(replace(TrafficPolicy("churn", primary=1), **changes))
        assert store.registry.get_policy("churn") is None
