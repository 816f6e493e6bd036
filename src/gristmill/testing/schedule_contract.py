"""The schedules' part of the metadata contract (``stores.schedules.ScheduleStore``).

``MetadataStoreContract`` inherits it, so a backend passes it by passing that suite; it
reaches the store as ``store.schedules``.
"""

from __future__ import annotations

from dataclasses import replace

from gristmill.stores.metadata import MetadataStore
from gristmill.stores.schedules import Schedule, Tick
from gristmill.testing.metadata_records import assert_utc, at, run_together


def make_schedule(key: str = "churn/score", seconds: float = 0, **changes: object) -> Schedule:
    schedule = Schedule(
        key=key,
        pipeline=key.partition("/")[0],
        action="score",
        target="source:customers",
        timing="every 1h",
        spec_digest="sha256:spec",
        since=at(seconds),
        model="churn@champion",
    )
    return replace(schedule, **changes)  # type: ignore[arg-type]


def make_tick(key: str = "churn/score", seconds: float = 0, **changes: object) -> Tick:
    tick = Tick(
        key=key,
        tick_at=at(seconds),
        fired_at=at(seconds + 0.5),
        holder="scheduler@host:1",
        outcome="fired",
        detail="scoring batch:b-1 with churn/3",
        input="batch:b-1",
        model="churn/3",
        ref="job-1",
        events=[{"id": "ev-1", "type": "scores.requested", "payload": {"job_id": "job-1"}}],
    )
    return replace(tick, **changes)  # type: ignore[arg-type]


class ScheduleStoreContract:
    """The semantics of ``ScheduleStore`` on a ``MetadataStore``."""

    __test__ = False

    def test_schedules_round_trip_in_utc_by_key(self, store: MetadataStore) -> None:
        ingest = make_schedule("churn/ingest/customers", action="ingest", target="customers")
        ingest = replace(ingest, model=None, timing="cron 0 2 * * *")
        recorded = store.schedules.set_schedules("churn", [make_schedule(), ingest])
        assert recorded == [ingest, make_schedule()]
        assert store.schedules.list_schedules() == [ingest, make_schedule()]
        assert_utc(store.schedules.list_schedules()[0].since)

    def test_setting_a_pipelines_schedules_replaces_only_its_own(
        self, store: MetadataStore
    ) -> None:
        other = make_schedule("sales/score")
        store.schedules.set_schedules("sales", [other])
        store.schedules.set_schedules("churn", [make_schedule()])
        store.schedules.set_schedules("churn", [])
        assert store.schedules.list_schedules() == [other]

    def test_an_unchanged_schedule_keeps_its_since_a_changed_one_restarts(
        self, store: MetadataStore
    ) -> None:
        store.schedules.set_schedules("churn", [make_schedule(seconds=0)])
        again = store.schedules.set_schedules(
            "churn", [make_schedule(seconds=60, spec_digest="sha256:edited")]
        )
        assert again == [make_schedule(seconds=0, spec_digest="sha256:edited")]
        changed = make_schedule(seconds=120, timing="every 2h")
        assert store.schedules.set_schedules("churn", [changed]) == [changed]
        assert store.schedules.list_schedules() == [changed]

    def test_racing_sets_of_one_pipeline_leave_one_schedule(self, store: MetadataStore) -> None:
        run_together(
            4, lambda i: store.schedules.set_schedules("churn", [make_schedule(seconds=i)])
        )
        assert len(store.schedules.list_schedules()) == 1

    def test_a_tick_round_trips_exactly_in_utc(self, store: MetadataStore) -> None:
        assert store.schedules.claim_tick(make_tick())
        found = store.schedules.find_tick("churn/score", at(0))
        assert found == make_tick()
        assert found is not None
        assert_utc(found.tick_at)
        assert store.schedules.find_tick("churn/score", at(1)) is None
        assert store.schedules.find_tick("sales/score", at(0)) is None

    def test_a_tick_is_claimed_once_the_first_claim_kept(self, store: MetadataStore) -> None:
        assert store.schedules.claim_tick(make_tick(holder="a"))
        assert not store.schedules.claim_tick(make_tick(holder="b", outcome="skipped"))
        assert store.schedules.find_tick("churn/score", at(0)) == make_tick(holder="a")
        assert store.schedules.claim_tick(make_tick(seconds=3600))  # the next tick is free

    def test_racing_claims_of_one_tick_have_one_winner(self, store: MetadataStore) -> None:
        won = run_together(8, lambda i: store.schedules.claim_tick(make_tick(holder=f"w{i}")))
        assert won.count(True) == 1
        tick = store.schedules.find_tick("churn/score", at(0))
        assert tick is not None and tick.holder == f"w{won.index(True)}"

    def test_latest_tick_is_the_newest_of_its_key_and_outcome(self, store: MetadataStore) -> None:
        store.schedules.claim_tick(make_tick(seconds=0))
        store.schedules.claim_tick(make_tick(seconds=7200, outcome="skipped"))
        store.schedules.claim_tick(make_tick(seconds=3600))
        store.schedules.claim_tick(make_tick("sales/score", seconds=9999))
        assert store.schedules.latest_tick("churn/score") == make_tick(
            seconds=7200, outcome="skipped"
        )
        assert store.schedules.latest_tick("churn/score", outcome="fired") == make_tick(
            seconds=3600
        )
        assert store.schedules.latest_tick("nope/score") is None

    def test_unpublished_ticks_wait_until_marked(self, store: MetadataStore) -> None:
        store.schedules.claim_tick(make_tick(seconds=0))
        store.schedules.claim_tick(make_tick(seconds=10))
        store.schedules.claim_tick(make_tick(seconds=20, published_at=at(20)))
        waiting = store.schedules.list_unpublished(at(100))
        assert [t.tick_at for t in waiting] == [at(0), at(10)]
        assert store.schedules.list_unpublished(at(5)) == [make_tick(seconds=0)]
        store.schedules.mark_published("churn/score", at(0), at(50))
        store.schedules.mark_published("churn/score", at(0), at(60))  # the first mark stays
        assert [t.tick_at for t in store.schedules.list_unpublished(at(100))] == [at(10)]
        marked = store.schedules.find_tick("churn/score", at(0))
        assert marked is not None and marked.published_at == at(50)
