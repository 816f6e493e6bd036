"""The rollback rules' part of the registry contract: a ``TrafficPolicy.rollback_rule`` is
stored with the policy, round-trips, counts as part of the routing, and is checked.

``PolicyContract`` inherits it, so a backend passes it by passing the metadata suite.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gristmill.errors import ConfigError
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.models import TrafficPolicy
from gristmill.stores.rollback_rules import RollbackRule
from gristmill.testing.metadata_records import make_candidate

RULE = RollbackRule(
    max_miss_rate=0.05,
    max_error_rate=0.01,
    max_quality_drop=0.03,
    quality_metric="accuracy",
    on_drift=True,
    min_requests=250,
    window_minutes=2.5,
    cooldown_minutes=0,
    webhook="https://hooks.example/ml?team=risk",
)


def _versions(store: MetadataStore, count: int) -> None:
    for i in range(1, count + 1):
        store.registry.register_version("churn", make_candidate(f"churn-r-{i}"))


def _policy_entries(store: MetadataStore) -> list[dict[str, Any]]:
    entries = store.audit.list_entries(subject="model:churn", limit=1000)
    return [e.details for e in entries if e.action == "model.policy_set"]


class RollbackRuleContract:
    """A policy's rollback rule: stored, round-tripped, a change of its own, checked."""

    __test__ = False

    def test_a_rollback_rule_round_trips_with_its_policy(self, store: MetadataStore) -> None:
        _versions(store, 3)
        wanted = TrafficPolicy(
            "churn", primary=2, canary=3, canary_share=0.1, fallback=(1,), rollback_rule=RULE
        )
        stored = store.registry.set_policy(wanted)
        assert stored.rollback_rule == RULE
        assert store.registry.get_policy("churn") == stored
        assert store.registry.list_policies() == [stored]
        got = store.registry.get_policy("churn")
        assert got is not None and got.rollback_rule is not None
        assert isinstance(got.rollback_rule.window_minutes, float)
        assert isinstance(got.rollback_rule.cooldown_minutes, float)
        assert got.rollback_rule.on_drift is True
        assert _policy_entries(store)[0]["policy"]["rollback"] == RULE.to_json()

    def test_a_changed_rule_is_a_change_and_the_same_one_is_not(self, store: MetadataStore) -> None:
        _versions(store, 2)
        plain = store.registry.set_policy(TrafficPolicy("churn", primary=2, fallback=(1,)))
        assert plain.rollback_rule is None
        ruled = store.registry.set_policy(replace(plain, rollback_rule=RULE))
        assert ruled.revision == plain.revision + 1
        # the same rule again (its minutes given as whole numbers) stores nothing
        again = replace(ruled, rollback_rule=replace(RULE, window_minutes=2.5, cooldown_minutes=0))
        assert store.registry.set_policy(again) == ruled
        stricter = store.registry.set_policy(
            replace(ruled, rollback_rule=replace(RULE, max_miss_rate=0.01))
        )
        assert stricter.revision == ruled.revision + 1
        assert stricter.rollback_rule is not None and stricter.rollback_rule.max_miss_rate == 0.01
        # another routing made from the stored policy keeps its rule
        widened = store.registry.set_policy(replace(stricter, shadow=(1,), fallback=()))
        assert widened.rollback_rule == stricter.rollback_rule
        removed = store.registry.set_policy(replace(widened, rollback_rule=None))
        assert removed.revision == widened.revision + 1 and removed.rollback_rule is None
        before = _policy_entries(store)[0]["before"]
        assert before["rollback"]["max_miss_rate"] == 0.01
        assert "rollback" not in _policy_entries(store)[0]["policy"]

    @pytest.mark.parametrize(
        ("changes", "match"),
        [
            ({"max_miss_rate": 0.0}, "max_miss_rate must be a share above 0"),
            ({"max_error_rate": 1.5}, "max_error_rate must be a share above 0"),
            ({"max_quality_drop": -1.0}, "max_quality_drop must be a number above 0"),
            ({"min_requests": 0}, "min_requests must be a whole number from 1"),
            ({"window_minutes": 0}, "window_minutes must be a number above 0"),
            ({"cooldown_minutes": -5}, "cooldown_minutes must be a number ≥ 0"),
            ({"webhook": "hooks.example/ml"}, "webhook must be an http"),
            (
                {"max_miss_rate": None, "max_error_rate": None, "on_drift": False},
                "needs at least one of max_miss_rate",
            ),
        ],
    )
    def test_an_unsound_rule_is_refused_naming_the_field(
        self, store: MetadataStore, changes: dict[str, Any], match: str
    ) -> None:
        _versions(store, 1)
        rule = replace(RollbackRule(max_miss_rate=0.05, max_error_rate=0.01), **changes)
        with pytest.raises(ConfigError, match=match):
            store.registry.set_policy(TrafficPolicy("churn", primary=1, rollback_rule=rule))
        assert store.registry.get_policy("churn") is None
