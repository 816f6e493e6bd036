"""The canary judge on a real SQLite metadata store: serving stats recorded as servers record
them, policies stored as deployments store them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.stores.models import TrafficPolicy
from gristmill.stores.serving_stats import ServingWindow, window_start
from gristmill.testing.metadata_records import make_candidate, run_together
from gristmill.training.canary import JUDGE, canary_progress, judge_canaries
from gristmill.training.deployment import PromotionRule, deploy


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    with SqlMetadataStore(f"sqlite:///{tmp_path}/meta.db") as opened:
        for i in range(1, 4):
            opened.registry.register_version("churn", make_candidate(f"c-{i}"))
        deploy(opened.registry, "churn", 1)
        yield opened


def _canary(store: SqlMetadataStore, rule: PromotionRule | None) -> TrafficPolicy:
    return deploy(store.registry, "churn", 2, mode="canary", share=0.1, rule=rule).after


def _served(
    store: SqlMetadataStore,
    replica: str = "r1",
    version: int = 2,
    revision: int | None = None,
    **figures: int,
) -> None:
    """``replica`` served ``figures`` with ``version`` this minute (running totals), sent by
    policy ``revision`` (default: the stored one)."""
    if revision is None:
        stored = store.registry.get_policy("churn")
        revision = stored.revision if stored else 0
    window = ServingWindow(
        model="churn",
        version=version,
        replica=replica,
        window_start=window_start(datetime.now(UTC)),
        revision=revision,
        latency_sum=0.001 * figures.get("requests", 0),
        **figures,  # type: ignore[arg-type]
    )
    store.serving_stats.record([window])


def _audit(store: SqlMetadataStore) -> list[str]:
    entries = store.audit.list_entries(subject="model:churn", limit=100)
    return [
        e.details["reason"] for e in entries if e.actor == JUDGE and e.action == "model.policy_set"
    ]


def test_a_canary_is_promoted_once_it_answered_enough_requests(store: SqlMetadataStore) -> None:
    canary = _canary(store, PromotionRule(requests=50))
    _served(store, "r1", requests=30)
    assert judge_canaries(store) == []
    _served(store, "r2", requests=25, client_errors=5)  # the clients' errors do not count
    [judgement] = judge_canaries(store)
    assert judgement.verdict == "promote"
    after = judgement.change.after
    assert (after.primary, after.canary, after.fallback) == (2, None, (1,))
    assert after.revision == canary.revision + 1 and after.changed_by == JUDGE
    assert (after.promote_after_requests, after.canary_since) == (None, None)
    assert {a.alias: a.version for a in store.registry.list_aliases("churn")} == {
        "champion": 2,
        "previous": 1,
    }
    [reason] = _audit(store)
    assert "canary 2 promoted" in reason and "50/50 requests, 0 errors" in reason
    assert "5 client errors" in reason and "over 2 servers" in reason
    assert judge_canaries(store) == []  # nothing left to judge


@pytest.mark.parametrize("figures", [{"errors": 1}, {"fallbacks": 1}])
def test_a_canary_that_fails_a_request_is_pulled(
    store: SqlMetadataStore, figures: dict[str, int]
) -> None:
    _canary(store, PromotionRule(requests=1000))
    _served(store, requests=7, **figures)
    [judgement] = judge_canaries(store)
    assert judgement.verdict == "pull"
    after = judgement.change.after
    assert (after.primary, after.canary, after.fallback, after.canary_share) == (1, None, (), 0)
    [reason] = _audit(store)
    assert "canary 2 pulled" in reason
    assert judge_canaries(store) == []


def test_the_minutes_rule_waits_for_time_and_for_a_request(store: SqlMetadataStore) -> None:
    canary = _canary(store, PromotionRule(minutes=5))
    assert canary.canary_since is not None
    later = canary.canary_since + timedelta(minutes=6)
    assert judge_canaries(store, now=later) == []  # nobody asked it yet: not proven
    _served(store, requests=1)
    assert judge_canaries(store, now=canary.canary_since + timedelta(minutes=4)) == []
    [judgement] = judge_canaries(store, now=later)
    assert judgement.verdict == "promote"


def test_both_rules_must_be_met(store: SqlMetadataStore) -> None:
    canary = _canary(store, PromotionRule(requests=10, minutes=1))
    assert canary.canary_since is not None
    _served(store, requests=10)
    assert judge_canaries(store, now=canary.canary_since + timedelta(seconds=30)) == []
    progress = canary_progress(store.serving_stats, canary, now=canary.canary_since)
    assert progress is not None and progress.describe() == (
        "10/10 requests, 0 errors, 0 fallbacks, 0.0/1 min"
    )
    assert judge_canaries(store, now=canary.canary_since + timedelta(minutes=1))


def test_a_canary_without_a_rule_is_left_to_a_person(store: SqlMetadataStore) -> None:
    _canary(store, None)
    _served(store, requests=10_000, errors=3)
    assert judge_canaries(store) == []
    policy = store.registry.get_policy("churn")
    assert policy is not None and policy.canary == 2


def test_only_what_the_canary_was_sent_as_the_canary_judges_it(
    store: SqlMetadataStore,
) -> None:
    _served(store, requests=100, errors=3)  # version 2 named by a client, before the canary
    canary = _canary(store, PromotionRule(requests=5))
    _served(store, "r1", revision=0, requests=50, errors=2)  # named by version, meanwhile
    _served(store, "r2", revision=canary.revision - 1, requests=9, errors=1)  # a lagging policy
    _served(store, version=1, requests=100, errors=10)  # the primary's
    _served(store, requests=4)
    assert judge_canaries(store) == []
    _served(store, requests=5)
    [judgement] = judge_canaries(store)
    assert judgement.verdict == "promote"


def test_judges_racing_on_one_canary_change_it_once(store: SqlMetadataStore) -> None:
    _canary(store, PromotionRule(requests=5))
    _served(store, requests=5)
    verdicts = run_together(6, lambda _: judge_canaries(store))
    assert sorted(len(v) for v in verdicts) == [0, 0, 0, 0, 0, 1]
    assert len(_audit(store)) == 1


def test_a_wider_share_keeps_the_count_a_canary_started_again_restarts_it(
    store: SqlMetadataStore,
) -> None:
    canary = _canary(store, PromotionRule(requests=10))
    _served(store, "r1", requests=6)
    wider = store.registry.set_policy(replace(canary, canary_share=0.5))
    assert (wider.canary_since, wider.canary_revision) == (canary.canary_since, canary.revision)
    _served(store, "r2", requests=4)  # sent by the wider policy: counted with the 6 before
    [promoted] = judge_canaries(store)
    assert promoted.verdict == "promote"
    deploy(store.registry, "churn", 1)  # back to 1 as the primary, then 2 as a canary again
    again = _canary(store, PromotionRule(requests=10))
    assert again.canary_revision == again.revision > wider.revision
    progress = canary_progress(store.serving_stats, again)
    assert progress is not None and progress.stats.requests == 0
    assert judge_canaries(store) == []
