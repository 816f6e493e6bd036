"""The model stores' part of the metadata contract (``gristmill.stores.models``).

``MetadataStoreContract`` inherits it, so a backend passes it by passing that suite; it
reaches the stores as ``store.splits``, ``store.candidates`` and (through
``RegistryContract``) ``store.registry``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta, timezone
from typing import Any

import pytest

from gristmill.errors import NotFoundError
from gristmill.stores.metadata import MetadataStore
from gristmill.testing.metadata_records import (
    PAYLOAD,
    assert_utc,
    at,
    make_candidate,
    make_split,
    run_together,
)
from gristmill.testing.registry_contract import RegistryContract


class ModelStoreContract(RegistryContract):
    """The semantics of ``SplitStore``, ``CandidateStore`` and (inherited) ``ModelRegistry``
    on a ``MetadataStore``."""

    __test__ = False

    # -- splits --------------------------------------------------------------------------

    def test_split_round_trips_exactly_in_utc(self, store: MetadataStore) -> None:
        paris = timezone(timedelta(hours=2))
        split = make_split(
            "sp-1",
            created_at=at(0).astimezone(paris),
            params=PAYLOAD,
            sizes={"train": 2**40, "validation": 0, "test": 3},
            membership="sha256:membership",
            warnings=[{"kind": "small", "numbers": PAYLOAD}, {}],
            run_id="run-1",
        )
        assert store.splits.add_split(split) == split
        got = store.splits.get_split("sp-1")
        assert got == split
        assert_utc(got.created_at)
        assert store.splits.find_split("sp-1") == split
        bare = make_split("sp-2", params={}, sizes={})
        assert store.splits.add_split(bare) == bare
        assert store.splits.get_split("sp-2") == bare

    def test_add_split_returns_the_recorded_one(self, store: MetadataStore) -> None:
        first = make_split("sp-1")
        again = make_split("sp-1", 5, sizes={"train": 1}, warnings=[{"kind": "empty"}])
        assert store.splits.add_split(first) == first
        assert store.splits.add_split(again) == first
        assert store.splits.get_split("sp-1") == first

    def test_missing_split_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFoundError, match=r"no split with id 'nope'.*gristmill ls"):
            store.splits.get_split("nope")
        assert store.splits.find_split("nope") is None

    def test_racing_writers_of_one_split_get_one(self, store: MetadataStore) -> None:
        writers = 6
        splits = [make_split("sp-1", i, sizes={"train": i}) for i in range(writers)]
        added = run_together(writers, lambda i: store.splits.add_split(splits[i]))
        assert all(split == added[0] for split in added)
        assert added[0] in splits
        assert store.splits.get_split("sp-1") == added[0]

    # -- candidates ----------------------------------------------------------------------

    def test_candidate_round_trips_exactly_in_utc(self, store: MetadataStore) -> None:
        paris = timezone(timedelta(hours=2))
        candidate = make_candidate(
            "c-1",
            started_at=at(0).astimezone(paris),
            finished_at=at(90).astimezone(paris),
            params=PAYLOAD,
            status="failed",
            artifact="sha256:model",
            learned={"coef": [[0.5, -1.25e-9]], "intercept": [2**53], **PAYLOAD},
            metrics=PAYLOAD,
            tuning={"trials": 20, "best": PAYLOAD},
            versions={"python": "3.11.9", "scikit-learn": "1.5.2"},
            attempts=3,
            error="boom\nTraceback: …",
            run_id="run-1",
        )
        store.candidates.save_candidate(candidate)
        got = store.candidates.get_candidate("c-1")
        assert got == candidate
        assert_utc(got.started_at)
        assert_utc(got.finished_at)
        assert store.candidates.find_candidate("c-1") == candidate
        bare = make_candidate("c-2", params={})
        store.candidates.save_candidate(bare)
        assert store.candidates.get_candidate("c-2") == bare

    def test_save_candidate_replaces_the_one_with_its_id(self, store: MetadataStore) -> None:
        failed = make_candidate("c-1", status="failed", error="killed", attempts=1)
        store.candidates.save_candidate(failed)
        trained = replace(failed, status="trained", error=None, attempts=2, finished_at=at(9))
        store.candidates.save_candidate(trained)
        assert store.candidates.get_candidate("c-1") == trained
        evaluated = replace(trained, metrics={"f1": 0.9}, run_id="run-2")
        store.candidates.save_candidate(evaluated)
        assert store.candidates.list_candidates() == [evaluated]

    def test_missing_candidate_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(
            NotFoundError, match=r"no candidate with id 'nope'.*gristmill ls candidates"
        ):
            store.candidates.get_candidate("nope")
        assert store.candidates.find_candidate("nope") is None
        assert store.candidates.list_candidates() == []

    def test_list_candidates_newest_first_filtered_and_limited(self, store: MetadataStore) -> None:
        for candidate_id, seconds, run_id, feature_set_id in [
            ("c-1", 1, "run-1", "fs-1"),
            ("c-2", 3, "run-2", "fs-1"),
            ("c-3", 2, "run-1", "fs-2"),
            ("c-4", 2, "run-1", "fs-1"),
            ("c-5", 4, None, "fs-1"),
        ]:
            candidate = make_candidate(
                candidate_id, seconds, run_id=run_id, feature_set_id=feature_set_id
            )
            store.candidates.save_candidate(candidate)

        def ids(**filters: Any) -> list[str]:
            return [c.candidate_id for c in store.candidates.list_candidates(**filters)]

        assert ids() == ["c-5", "c-2", "c-4", "c-3", "c-1"]  # a tie in time: larger id first
        assert ids(run_id="run-1") == ["c-4", "c-3", "c-1"]
        assert ids(feature_set_id="fs-1") == ["c-5", "c-2", "c-4", "c-1"]
        assert ids(run_id="run-1", feature_set_id="fs-1") == ["c-4", "c-1"]
        assert ids(run_id="run-1", limit=2) == ["c-4", "c-3"]
        assert ids(limit=1) == ["c-5"]
        assert ids(run_id="run-9") == []

    def test_candidates_saved_from_many_threads_all_land(self, store: MetadataStore) -> None:
        # Candidates train in parallel and each records itself when done.
        def work(index: int) -> None:
            candidate = make_candidate(f"c-{index:02d}", index, status="failed")
            store.candidates.save_candidate(candidate)
            store.candidates.save_candidate(replace(candidate, status="trained", attempts=2))

        run_together(12, work)
        listed = store.candidates.list_candidates()
        assert [c.candidate_id for c in listed] == [f"c-{i:02d}" for i in range(11, -1, -1)]
        assert {(c.status, c.attempts) for c in listed} == {("trained", 2)}
