"""The execution leases' part of the metadata contract (``ExecutionStore`` claims and leases).

``MetadataStoreContract`` inherits it, so a backend passes it by passing that suite.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from gristmill.errors import LeaseLostError
from gristmill.stores.fencing import fenced
from gristmill.stores.metadata import LineageEdge, MetadataStore, StageExecution
from gristmill.testing.metadata_records import at, make_execution, run_together


def leased(execution_id: str, seconds: float, lease: float, **changes: Any) -> StageExecution:
    """A ``running`` execution started at ``seconds`` whose lease runs ``lease`` s from then."""
    return make_execution(
        execution_id,
        seconds,
        lease_expires_at=at(seconds + lease),
        holder=f"worker-{execution_id}",
        **changes,
    )


class ExecutionLeaseContract:
    """``claim_execution``, ``renew_lease``, ``finish_execution``, ``fence``,
    ``list_stale_executions``, ``abandon_execution``, and the outbox: ``mark_published``,
    ``list_unpublished``."""

    __test__ = False

    def test_a_free_key_is_claimed_and_recorded(self, store: MetadataStore) -> None:
        mine = leased("ex-1", 0, 30)
        assert store.executions.claim_execution(mine) is None
        assert store.executions.find_execution("preparation", "key-1") == mine

    def test_a_key_held_under_a_live_lease_is_not_claimed(self, store: MetadataStore) -> None:
        holder = leased("ex-1", 0, 30)
        assert store.executions.claim_execution(holder) is None
        assert store.executions.claim_execution(leased("ex-2", 29, 30)) == holder
        assert store.executions.list_executions("run-1") == [holder]

    def test_a_done_key_returns_the_work_done(self, store: MetadataStore) -> None:
        done = replace(leased("ex-1", 0, 30), status="succeeded", finished_at=at(5))
        store.executions.record_execution(done)
        store.executions.record_execution(make_execution("ex-2", 6, status="failed"))
        assert store.executions.claim_execution(leased("ex-3", 7, 30)) == done
        assert len(store.executions.list_executions("run-1")) == 2

    def test_an_expired_lease_is_taken_over_and_a_released_attempt_retried(
        self, store: MetadataStore
    ) -> None:
        dead = leased("ex-1", 0, 30)  # its holder stopped renewing while the work ran
        released = leased(  # its attempt failed and released the work for a retry
            "ex-2", 1, 1, error="RuntimeError('flaky')", finished_at=at(2)
        )
        store.executions.record_execution(dead)
        store.executions.record_execution(released)
        assert store.executions.claim_execution(leased("ex-3", 31, 30)) is None
        old, failed, running = store.executions.list_executions("run-1")
        assert (old.status, failed.status, running.execution_id) == ("failed", "failed", "ex-3")
        assert old.error is not None and old.error.startswith("taken over: ")
        assert "worker-ex-1 stopped renewing its lease" in old.error
        assert "execution ex-3 (worker-ex-3) took the work over" in old.error
        assert old.finished_at is not None
        assert failed.error == "RuntimeError('flaky'); retried as execution ex-3 (worker-ex-3)"
        assert "lease" not in failed.error and "took" not in failed.error
        assert failed.finished_at == at(2)  # when its attempt ended, not when it was retried

    def test_a_lapsed_lease_is_taken_over_only_after_the_margin(self, store: MetadataStore) -> None:
        holder = leased("ex-1", 0, 30)
        store.executions.claim_execution(holder)
        margin = timedelta(seconds=15)
        late = store.executions.claim_execution(leased("ex-2", 44, 30), margin=margin)
        assert late == holder, "taken over before the lease was expired by the margin"
        assert store.executions.claim_execution(leased("ex-3", 46, 30), margin=margin) is None
        assert [e.status for e in store.executions.list_executions("run-1")] == [
            "failed",
            "running",
        ]

    def test_only_the_holder_records_how_the_work_ended(self, store: MetadataStore) -> None:
        stale = leased("ex-1", 0, 30)
        store.executions.claim_execution(stale)
        store.executions.claim_execution(leased("ex-2", 31, 30))  # took the lapsed work over
        done = replace(stale, status="succeeded", finished_at=at(40), outputs=[{"n": 1}])
        assert not store.executions.finish_execution(done), "a stale holder recorded success"
        old = store.executions.list_executions("run-1")[0]
        assert (old.status, old.outputs) == ("failed", [])
        ended = replace(leased("ex-2", 31, 30), status="succeeded", finished_at=at(41))
        assert store.executions.finish_execution(replace(ended, outputs=[{"n": 2}]))
        assert store.executions.find_execution("preparation", "key-1") == replace(
            ended, outputs=[{"n": 2}]
        )
        assert not store.executions.finish_execution(ended), "finished twice"
        assert not store.executions.finish_execution(replace(ended, execution_id="ex-unknown"))

    def test_writes_under_a_lost_fence_are_refused(self, store: MetadataStore) -> None:
        store.executions.claim_execution(leased("ex-1", 0, 30))
        edge = LineageEdge("parent-1", "batch", "child-1", "feature_set")
        with fenced(store.executions.fence("ex-1")):
            store.lineage.add_edges([edge])  # still the holder: written
        store.executions.claim_execution(leased("ex-2", 31, 30))
        late = LineageEdge("parent-2", "batch", "child-2", "feature_set")
        with fenced(store.executions.fence("ex-1")), pytest.raises(LeaseLostError, match="ex-1"):
            store.lineage.add_edges([late])
        assert [e.child_id for e in store.lineage.children("parent-1")] == ["child-1"]
        assert store.lineage.children("parent-2") == [], "a stale holder's write is visible"
        with fenced(store.executions.fence("ex-2")):
            store.lineage.add_edges([late])  # the new holder writes
        assert [e.child_id for e in store.lineage.children("parent-2")] == ["child-2"]

    def test_an_execution_without_a_lease_holds_nothing(self, store: MetadataStore) -> None:
        store.executions.record_execution(make_execution("ex-1", 0))  # recorded before leases
        assert store.executions.claim_execution(leased("ex-2", 1, 30)) is None
        assert [e.status for e in store.executions.list_executions("run-1")] == [
            "failed",
            "running",
        ]

    def test_a_renewed_lease_keeps_the_key(self, store: MetadataStore) -> None:
        holder = leased("ex-1", 0, 30)
        store.executions.claim_execution(holder)
        assert store.executions.renew_lease("ex-1", at(90))
        assert store.executions.claim_execution(leased("ex-2", 60, 30)) is not None
        found = store.executions.find_execution("preparation", "key-1")
        assert found is not None and found.lease_expires_at == at(90)
        store.executions.record_execution(replace(holder, status="succeeded"))
        assert not store.executions.renew_lease("ex-1", at(120)), "renewed a finished execution"
        assert not store.executions.renew_lease("ex-unknown", at(120))

    def test_claims_made_at_once_record_exactly_one(self, store_factory: Any) -> None:
        claimers = 6
        stores: list[MetadataStore] = [store_factory() for _ in range(claimers)]
        try:
            for each in stores:
                each.open()
            stores[0].executions.record_execution(leased("ex-dead", 0, 30))
            results = run_together(
                claimers,
                lambda i: stores[i].executions.claim_execution(leased(f"ex-{i}", 40, 30)),
            )
            assert not [r for r in results if isinstance(r, BaseException)], results
            winners = [i for i, r in enumerate(results) if r is None]
            assert len(winners) == 1, f"{len(winners)} consumers claimed the same work"
            winner = f"ex-{winners[0]}"
            assert {r.execution_id for r in results if r is not None} == {winner}
            running = [
                e for e in stores[0].executions.list_executions("run-1") if e.status == "running"
            ]
            assert [e.execution_id for e in running] == [winner]
        finally:
            for each in stores:
                each.close()

    def test_stale_executions_are_listed_and_abandoned(self, store: MetadataStore) -> None:
        store.executions.record_execution(leased("ex-stale", 0, 30))
        store.executions.record_execution(make_execution("ex-old", 1))  # no lease, started
        store.executions.record_execution(leased("ex-live", 2, 300, idempotency_key="key-2"))
        store.executions.record_execution(
            replace(leased("ex-done", 3, 30, idempotency_key="key-3"), status="succeeded")
        )
        stale = store.executions.list_stale_executions(at(100))
        assert [e.execution_id for e in stale] == ["ex-stale", "ex-old"]

        swept = store.executions.abandon_execution(
            "ex-stale", reason="abandoned (swept by gc)", expired_before=at(100)
        )
        assert swept is not None
        assert (swept.status, swept.error) == ("failed", "abandoned (swept by gc)")
        assert swept.finished_at is not None
        again = store.executions.abandon_execution("ex-stale", reason="x", expired_before=at(100))
        assert again is None
        live = store.executions.abandon_execution("ex-live", reason="x", expired_before=at(100))
        assert live is None
        assert [e.execution_id for e in store.executions.list_stale_executions(at(100))] == [
            "ex-old"
        ]

    def test_ended_executions_wait_in_the_outbox_until_marked_published(
        self, store: MetadataStore
    ) -> None:
        out = [{"id": "ev-1", "type": "model.trained"}]
        ended = {"status": "succeeded", "outputs": out}
        store.executions.record_execution(make_execution("ex-1", 0, finished_at=at(1), **ended))
        store.executions.record_execution(
            make_execution("ex-2", 2, finished_at=at(3), idempotency_key="key-2", **ended)
        )
        store.executions.record_execution(leased("ex-run", 4, 30, idempotency_key="key-3"))
        store.executions.record_execution(
            make_execution("ex-other", 0, stage="training", finished_at=at(1), **ended)
        )
        store.executions.record_execution(
            make_execution(
                "ex-sent",
                0,
                idempotency_key="key-4",
                finished_at=at(1),
                published_at=at(1),
                **ended,
            )
        )
        listed = store.executions.list_unpublished("preparation", at(100))
        assert [e.execution_id for e in listed] == ["ex-1", "ex-2"]
        assert listed[0].outputs == out and listed[0].published_at is None
        assert [
            e.execution_id for e in store.executions.list_unpublished("preparation", at(2))
        ] == ["ex-1"]

        store.executions.mark_published("ex-1", at(10))
        store.executions.mark_published("ex-1", at(20))  # the first mark is kept
        assert [
            e.execution_id for e in store.executions.list_unpublished("preparation", at(100))
        ] == ["ex-2"]
        assert store.executions.find_execution("preparation", "key-1").published_at == at(10)  # type: ignore[union-attr]
