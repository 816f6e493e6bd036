"""The rollback judge on a real SQLite metadata store: serving stats recorded as servers record
them, policies stored as deployments store them, demotions made once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.config.rollback import RollbackSpec
from gristmill.core.events import MODEL_ROLLED_BACK, MONITOR_ALERT
from gristmill.stores.models import TrafficPolicy
from gristmill.stores.rollback_rules import RollbackRule
from gristmill.stores.serving_stats import ServingWindow, window_start
from gristmill.testing.metadata_records import make_candidate, run_together
from gristmill.training.canary import judge_canaries
from gristmill.training.deployment import PromotionRule, deploy, rollback
from gristmill.training.rollback import (
    ROLLBACK_JUDGE,
    demote,
    judge_rollbacks,
    readings,
    rule_from_spec,
)

RULE = RollbackRule(max_miss_rate=0.05, max_error_rate=0.01, min_requests=100)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    with SqlMetadataStore(f"sqlite:///{tmp_path}/meta.db") as opened:
        for i in range(1, 5):
            opened.registry.register_version("churn", make_candidate(f"c-{i}"))
        deploy(opened.registry, "churn", 1)
        yield opened


def _live(store: SqlMetadataStore, rule: RollbackRule | None = RULE) -> TrafficPolicy:
    """churn: version 2 the primary, 1 its fallback, with ``rule``."""
    return deploy(store.registry, "churn", 2, rollback_rule=rule).after


def _policy(store: SqlMetadataStore) -> TrafficPolicy:
    policy = store.registry.get_policy("churn")
    assert policy is not None
    return policy


def _served(
    store: SqlMetadataStore,
    version: int = 2,
    replica: str = "r1",
    *,
    revision: int | None = None,
    at: datetime | None = None,
    **figures: int,
) -> None:
    """``replica`` served ``figures`` with ``version`` in the minute of ``at`` (default now;
    running totals), sent by policy ``revision`` (default: the stored one)."""
    window = ServingWindow(
        model="churn",
        version=version,
        replica=replica,
        window_start=window_start(at or datetime.now(UTC)),
        revision=_policy(store).revision if revision is None else revision,
        **figures,  # type: ignore[arg-type]
    )
    store.serving_stats.record([window])


def _judged(store: SqlMetadataStore) -> list[str]:
    """The reasons of the policy changes the rollback judge stored, newest first."""
    entries = store.audit.list_entries(subject="model:churn", limit=1000)
    return [
        e.details["reason"]
        for e in entries
        if e.actor == ROLLBACK_JUDGE and e.action == "model.policy_set"
    ]


def test_a_primary_that_misses_its_budget_is_rolled_back_once(store: SqlMetadataStore) -> None:
    live = _live(store)
    _served(store, requests=99, budget_misses=99)  # fewer than min_requests: not judged yet
    assert judge_rollbacks(store) == []
    _served(store, 2, "r2", requests=211, budget_misses=31, fallbacks=31)
    [demotion] = judge_rollbacks(store)
    after = demotion.change.after
    assert (after.primary, after.fallback, after.revision) == (1, (), live.revision + 1)
    assert (after.changed_by, demotion.role, demotion.verdict) == (
        ROLLBACK_JUDGE,
        "primary",
        "rollback",
    )
    assert after.rollback_rule == RULE  # the rule stays with the policy
    assert demotion.trigger == "latency"
    [reason] = _judged(store)
    assert reason == (
        "primary 2 rolled back to version 1 by the rollback judge: miss rate 41.9% > 5% over "
        "310 requests in 5 min"
    )
    assert demotion.figures["requests"] == 310 and demotion.figures["replicas"] == 2
    assert {a.alias: a.version for a in store.registry.list_aliases("churn")} == {"champion": 1}
    assert judge_rollbacks(store) == []  # version 2 is not live any more
    assert len(_judged(store)) == 1


@pytest.mark.parametrize(
    ("figures", "crossed"),
    [
        ({"requests": 200, "budget_misses": 10}, False),  # 5 %: not above 5 %
        ({"requests": 200, "budget_misses": 11}, True),
        ({"requests": 200, "errors": 2, "client_errors": 150}, False),  # 4xx are the client's
        ({"requests": 200, "errors": 3}, True),
    ],
)
def test_a_rate_above_its_maximum_crosses(
    store: SqlMetadataStore, figures: dict[str, int], crossed: bool
) -> None:
    _live(store)
    _served(store, **figures)
    demoted = judge_rollbacks(store)
    assert bool(demoted) is crossed
    if crossed:
        assert demoted[0].trigger == ("latency" if "budget_misses" in figures else "errors")
        word = "miss rate" if "budget_misses" in figures else "error rate"
        assert word in _judged(store)[0]


def test_only_this_revisions_requests_in_the_window_count(store: SqlMetadataStore) -> None:
    live = _live(store)
    now = datetime.now(UTC)
    _served(store, revision=live.revision - 1, requests=500, budget_misses=500)  # before
    _served(store, revision=0, requests=500, budget_misses=500)  # named by version
    _served(store, 2, "old", at=now - timedelta(minutes=7), requests=500, budget_misses=500)
    _served(store, version=1, requests=500, budget_misses=500)  # the fallback's own
    [primary] = readings(store.serving_stats, live, now=now)
    assert (primary.version, primary.role, primary.stats.requests) == (2, "primary", 0)
    assert judge_rollbacks(store, now=now) == []
    _served(store, requests=100, budget_misses=6)
    assert judge_rollbacks(store, now=now)


def test_a_canary_is_pulled_and_the_primary_stays(store: SqlMetadataStore) -> None:
    _live(store)
    canary = deploy(store.registry, "churn", 3, mode="canary", share=0.2).after
    assert canary.rollback_rule == RULE  # a later change keeps the rule
    _served(store, version=3, requests=120, budget_misses=0, errors=5)
    _served(store, version=2, requests=480)
    [demotion] = judge_rollbacks(store)
    assert (demotion.version, demotion.role, demotion.verdict) == (3, "canary", "pull")
    after = demotion.change.after
    assert (after.primary, after.canary, after.fallback) == (2, None, (1,))
    assert _judged(store) == [
        "canary 3 pulled (primary 2 answers) by the rollback judge: error rate 4.17% > 1% "
        "over 120 requests in 5 min"
    ]


def test_a_crossing_primary_takes_its_canary_with_it(store: SqlMetadataStore) -> None:
    _live(store)
    deploy(store.registry, "churn", 3, mode="canary", share=0.2)
    _served(store, version=3, requests=120, errors=5)
    _served(store, version=2, requests=480, budget_misses=400)
    [demotion] = judge_rollbacks(store)  # one change per policy and judgement
    assert demotion.role == "primary"
    after = demotion.change.after
    assert (after.primary, after.canary, after.fallback) == (1, None, ())


def test_a_primary_with_nothing_to_roll_back_to_is_not_judged(store: SqlMetadataStore) -> None:
    alone = store.registry.set_policy(TrafficPolicy("churn", primary=1, rollback_rule=RULE))
    _served(store, version=1, requests=500, errors=500)
    assert readings(store.serving_stats, alone) == []
    assert judge_rollbacks(store) == []
    assert demote(store, alone, 1, "error rate 100%") is None
    assert _policy(store).revision == alone.revision


def test_no_rollback_within_the_cooldown_of_the_last_one(
    store: SqlMetadataStore, caplog: pytest.LogCaptureFixture
) -> None:
    rule = replace(RULE, cooldown_minutes=30)
    _live(store, rule)
    _served(store, requests=100, budget_misses=100)
    [first] = judge_rollbacks(store)
    # a person deploys 3 on top of 1; it misses its budget too, within the cool-down
    deploy(store.registry, "churn", 3)
    assert _policy(store).fallback == (1,)
    now = datetime.now(UTC)
    _served(store, version=3, requests=100, budget_misses=100)
    with caplog.at_level(logging.DEBUG, logger="gristmill.training.rollback"):
        assert judge_rollbacks(store, now=now) == []
        assert judge_rollbacks(store, now=now) == []  # judged again after the next flush
    held = [r for r in caplog.records if "within its cool-down" in r.getMessage()]
    assert [r.levelno for r in held] == [logging.WARNING, logging.DEBUG]  # said once
    assert "not demoted before" in held[0].getMessage()
    later = first.at + timedelta(minutes=31)
    _served(store, version=3, at=later, requests=100, budget_misses=100)
    [second] = judge_rollbacks(store, now=later)
    assert second.change.after.primary == 1
    assert len(_judged(store)) == 2


def test_judges_racing_on_one_crossing_change_the_policy_once(store: SqlMetadataStore) -> None:
    live = _live(store)
    _served(store, requests=300, budget_misses=300)
    outcomes = run_together(6, lambda _: judge_rollbacks(store))
    assert sorted(len(o) for o in outcomes) == [0, 0, 0, 0, 0, 1]
    assert len(_judged(store)) == 1
    assert _policy(store).revision == live.revision + 1


def test_a_policy_another_judge_changed_since_it_was_read_is_left(
    store: SqlMetadataStore,
) -> None:
    _live(store)
    read = deploy(
        store.registry, "churn", 3, mode="canary", share=0.2, rule=PromotionRule(requests=10)
    ).after
    _served(store, version=3, requests=150, errors=150)
    [pulled] = judge_canaries(store)  # the canary judge pulls it first
    assert pulled.verdict == "pull"
    assert demote(store, read, 3, "error rate 100% > 1%", trigger="errors") is None
    assert _judged(store) == []
    assert judge_rollbacks(store) == []  # the new revision has served nothing yet


def test_demote_for_drift_gives_what_to_announce(store: SqlMetadataStore) -> None:
    rule = RollbackRule(on_drift=True, webhook="https://hooks.example/ml")
    live = _live(store, rule)
    assert judge_rollbacks(store) == []  # drift is the drift stage's to judge
    assert demote(store, live, 4, "not live") is None
    figures = {"column": "age", "psi": 0.41}
    demotion = demote(
        store, live, 2, "column age drifted: psi 0.41 > 0.2", figures, trigger="drift"
    )
    assert demotion is not None
    assert demotion.webhook == "https://hooks.example/ml"
    [(kind, rolled), (alert_kind, alert)] = demotion.events()
    assert (kind, alert_kind) == (MODEL_ROLLED_BACK, MONITOR_ALERT)
    assert rolled["source"] == ROLLBACK_JUDGE
    assert (rolled["verdict"], rolled["trigger"], rolled["stats"]) == ("rollback", "drift", figures)
    assert (rolled["primary"], rolled["version"], rolled["previous"]) == (1, 2, 2)
    assert rolled["rollback"]["on_drift"] is True
    assert (alert["kind"], alert["model"], alert["version"], alert["role"]) == (
        "rollback",
        "churn",
        2,
        "primary",
    )
    assert alert["reason"] == demotion.reason and "column age drifted" in alert["reason"]
    assert alert["alert_id"].startswith("ra_")
    # a second call on the same (now stale) policy changes nothing
    assert demote(store, live, 2, "column age drifted", trigger="drift") is None


def test_rollback_by_a_person_keeps_the_rule(store: SqlMetadataStore) -> None:
    _live(store)
    back = rollback(store.registry, "churn", reason="by hand")
    assert back.after.rollback_rule == RULE
    other = replace(RULE, max_miss_rate=0.5)
    assert deploy(store.registry, "churn", 2, rollback_rule=other).after.rollback_rule == other


def test_the_spec_section_becomes_the_rule() -> None:
    spec = RollbackSpec.model_validate(
        {"max_miss_rate": 0.05, "on_drift": True, "window": "90s", "cooldown": "1h"}
    )
    assert rule_from_spec(spec) == RollbackRule(
        max_miss_rate=0.05, on_drift=True, window_minutes=1.5, cooldown_minutes=60
    )
    assert rule_from_spec(RollbackSpec(max_error_rate=0.1, cooldown=0)).cooldown_minutes == 0
