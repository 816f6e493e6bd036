"""The score jobs' part of the metadata contract (``stores.scores.ScoreJobStore``).

``MetadataStoreContract`` inherits it, so a backend passes it by passing that suite; it
reaches the store as ``store.score_jobs``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from gristmill.errors import NotFoundError
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.scores import ScoreJob
from gristmill.testing.metadata_records import assert_utc, at, run_together


def make_job(job_id: str, seconds: float = 0, **changes: object) -> ScoreJob:
    job = ScoreJob(
        job_id=job_id,
        model="churn@champion",
        input="batch:01J0000000000000000000000",
        state="queued",
        created_at=at(seconds),
        webhook="https://example.org/hook",
    )
    return replace(job, **changes)  # type: ignore[arg-type]


class ScoreJobStoreContract:
    """The semantics of ``ScoreJobStore`` on a ``MetadataStore``."""

    __test__ = False

    def test_a_job_round_trips_exactly_in_utc(self, store: MetadataStore) -> None:
        job = make_job(
            "job-1",
            state="succeeded",
            version=3,
            input_kind="batch",
            partitions_total=4,
            partitions_done=4,
            rows=10_000_000_000,
            bad_rows=2,
            errors=[{"row": 7, "key": "customer_id=c7", "error": "not a number"}],
            location="s3://bucket/scores/job-1",
            started_at=at(1),
            finished_at=at(2),
        )
        store.score_jobs.add_job(job)
        found = store.score_jobs.get_job("job-1")
        assert found == job
        assert_utc(found.created_at)
        assert_utc(found.finished_at)

    def test_add_job_keeps_the_recorded_one(self, store: MetadataStore) -> None:
        first = store.score_jobs.add_job(make_job("job-1"))
        again = store.score_jobs.add_job(make_job("job-1", model="other"))
        assert again == first and again.model == "churn@champion"

    def test_save_job_replaces_its_progress_and_state(self, store: MetadataStore) -> None:
        store.score_jobs.add_job(make_job("job-1"))
        running = make_job("job-1", state="running", partitions_total=9, partitions_done=4)
        store.score_jobs.save_job(running)
        assert store.score_jobs.get_job("job-1") == running
        store.score_jobs.save_job(make_job("job-2", state="failed", error="no such file"))
        assert store.score_jobs.get_job("job-2").error == "no such file"

    def test_a_missing_job_is_not_found_naming_it(self, store: MetadataStore) -> None:
        assert store.score_jobs.find_job("nope") is None
        with pytest.raises(NotFoundError, match=r"'nope'.*gristmill jobs"):
            store.score_jobs.get_job("nope")

    def test_jobs_are_listed_newest_first_with_a_limit(self, store: MetadataStore) -> None:
        for number in range(4):
            store.score_jobs.add_job(make_job(f"job-{number}", seconds=number))
        listed = store.score_jobs.list_jobs(limit=3)
        assert [j.job_id for j in listed] == ["job-3", "job-2", "job-1"]

    def test_racing_adds_of_one_job_record_one(self, store: MetadataStore) -> None:
        added = run_together(4, lambda i: store.score_jobs.add_job(make_job("job-1", seconds=i)))
        assert len({a.created_at for a in added}) == 1
        assert len(store.score_jobs.list_jobs()) == 1
