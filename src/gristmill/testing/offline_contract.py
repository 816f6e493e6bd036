"""The contract every ``OfflineFeatureStore`` backend passes: subclass, provide one fixture, run.

::

    class TestLocalParquetOfflineStore(OfflineFeatureStoreContract):
        __test__ = True

        @pytest.fixture
        def offline_store(self, tmp_path):
            with SqlMetadataStore(f"sqlite:///{tmp_path}/meta.db") as metadata:
                yield ParquetOfflineStore(str(tmp_path / "features"), metadata.feature_sets)

``offline_store`` yields a fresh, empty store (with its catalog) and cleans up after the test.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from gristmill.errors import DataError, NotFoundError
from gristmill.stores.features import FeatureSet, OfflineFeatureStore

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def feature_set(
    feature_set_id: str = "fs-1",
    *,
    name: str = "clients",
    timestamp: str | None = "at",
    created_at: datetime = T0,
) -> FeatureSet:
    """A manifest as preparation makes it, before the store fills location and counts."""
    return FeatureSet(
        feature_set_id=feature_set_id,
        name=name,
        definition_digest="sha256:def",
        inputs=["batch-1"],
        location="",
        columns=[],
        row_count=0,
        created_at=created_at,
        entity="client",
        timestamp=timestamp,
    )


def features() -> pa.Table:
    """Client 1 changes at hours 0 and 2; client 2 has one value, at hour 1."""
    return pa.table(
        {
            "client": pa.array([1, 2, 1], pa.int64()),
            "at": pa.array([hours(0), hours(1), hours(2)], pa.timestamp("us", "UTC")),
            "spend": pa.array([10.0, 20.0, 30.0], pa.float32()),
            "tier": ["bronze", "gold", "silver"],
        }
    )


class OfflineFeatureStoreContract:
    """Behaviour every offline store shows; ``offline_store`` is the fixture a backend gives."""

    __test__ = False

    @pytest.fixture
    def offline_store(self) -> OfflineFeatureStore:
        raise NotImplementedError("a backend's test class provides the offline_store fixture")

    # -- write and read ----------------------------------------------------------------------

    def test_a_written_set_reads_back_whole(self, offline_store: OfflineFeatureStore) -> None:
        stored = offline_store.write(feature_set(), features())
        assert offline_store.read(stored.feature_set_id).equals(features())

    def test_the_manifest_is_completed_and_recorded(
        self, offline_store: OfflineFeatureStore
    ) -> None:
        stored = offline_store.write(feature_set(), features())
        assert stored.location and stored.row_count == 3
        assert [c["name"] for c in stored.columns] == ["client", "at", "spend", "tier"]
        assert offline_store.list() == [stored]

    def test_writing_a_known_set_again_returns_the_recorded_one(
        self, offline_store: OfflineFeatureStore
    ) -> None:
        first = offline_store.write(feature_set(), features())
        again = offline_store.write(feature_set(), features().slice(0, 1))
        assert again == first
        assert offline_store.read(first.feature_set_id).num_rows == 3
        assert len(offline_store.list()) == 1

    def test_concurrent_writes_of_one_set_record_it_once(
        self, offline_store: OfflineFeatureStore
    ) -> None:
        results: list[FeatureSet] = []
        errors: list[BaseException] = []

        def write() -> None:
            try:
                results.append(offline_store.write(feature_set(), features()))
            except BaseException as exc:  # surfaced below, in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=write) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert len({result.feature_set_id for result in results}) == 1
        assert len(offline_store.list()) == 1
        assert offline_store.read("fs-1").equals(features())

    def test_read_only_some_columns(self, offline_store: OfflineFeatureStore) -> None:
        offline_store.write(feature_set(), features())
        assert offline_store.read("fs-1", columns=["tier", "client"]).column_names == [
            "tier",
            "client",
        ]

    def test_unknown_sets_and_columns_are_not_found(
        self, offline_store: OfflineFeatureStore
    ) -> None:
        with pytest.raises(NotFoundError, match="nope"):
            offline_store.read("nope")
        offline_store.write(feature_set(), features())
        with pytest.raises(NotFoundError, match="'nope'"):
            offline_store.read("fs-1", columns=["nope"])

    def test_list_is_newest_first_and_filters_by_name(
        self, offline_store: OfflineFeatureStore
    ) -> None:
        old = offline_store.write(feature_set("fs-old"), features())
        new = offline_store.write(feature_set("fs-new", created_at=hours(1)), features())
        other = offline_store.write(feature_set("fs-x", name="other"), features())
        assert offline_store.list(name="clients") == [new, old]
        assert other in offline_store.list()

    def test_an_empty_table_is_a_valid_set(self, offline_store: OfflineFeatureStore) -> None:
        stored = offline_store.write(feature_set(), features().slice(0, 0))
        assert stored.row_count == 0
        assert offline_store.read("fs-1").schema.equals(features().schema)

    # -- as-of join --------------------------------------------------------------------------

    def test_as_of_join_is_point_in_time_correct(self, offline_store: OfflineFeatureStore) -> None:
        offline_store.write(feature_set(), features())
        left = pa.table(
            {
                "client": pa.array([1, 1, 1, 1, 2, 2, 3], pa.int64()),
                "when": pa.array(
                    [hours(-1), hours(0), hours(1.5), hours(9), hours(0.5), hours(1), hours(5)],
                    pa.timestamp("us", "UTC"),
                ),
                "label": [0, 1, 0, 1, 0, 1, 0],
            }
        )
        joined = offline_store.as_of_join(left, "fs-1", on="client", timestamp="when")
        assert joined.column_names == ["client", "when", "label", "spend", "tier"]
        # Before any value: null; at its stamp: that value; later: the newest before it.
        assert joined["spend"].to_pylist() == [None, 10.0, 10.0, 30.0, None, 20.0, None]
        assert joined["tier"].to_pylist() == [
            None, "bronze", "bronze", "silver", None, "gold", None,
        ]  # fmt: skip
        assert joined.select(["client", "when", "label"]).equals(left)
        assert joined.schema.field("spend").type == pa.float32()

    def test_as_of_join_keeps_the_left_order(self, offline_store: OfflineFeatureStore) -> None:
        offline_store.write(feature_set(), features())
        times = [hours(n / 10) for n in range(30, -1, -1)]
        left = pa.table(
            {
                "client": pa.array([1 + n % 2 for n in range(31)], pa.int64()),
                "when": pa.array(times, pa.timestamp("us", "UTC")),
            }
        )
        joined = offline_store.as_of_join(left, "fs-1", on="client", timestamp="when")
        assert joined["when"].to_pylist() == times
        expected = [
            (30.0 if t >= hours(2) else 10.0) if c == 1 else (20.0 if t >= hours(1) else None)
            for c, t in zip(left["client"].to_pylist(), times, strict=True)
        ]
        assert joined["spend"].to_pylist() == expected

    def test_as_of_join_takes_only_the_columns_asked(
        self, offline_store: OfflineFeatureStore
    ) -> None:
        offline_store.write(feature_set(), features())
        left = pa.table({"id": [2], "ts": pa.array([hours(3)], pa.timestamp("ms"))})
        joined = offline_store.as_of_join(left, "fs-1", on="id", timestamp="ts", columns=["tier"])
        # ``on`` names the left column; the set's own entity column comes from its manifest;
        # a naive timestamp is taken as UTC.
        assert joined.to_pylist() == [
            {"id": 2, "ts": hours(3).replace(tzinfo=None), "tier": "gold"}
        ]

    def test_as_of_join_without_feature_timestamps_starts_at_creation(
        self, offline_store: OfflineFeatureStore
    ) -> None:
        table = features().drop_columns(["at"]).slice(1, 2)  # clients 2 and 1, once each
        offline_store.write(feature_set(timestamp=None, created_at=hours(1)), table)
        left = pa.table(
            {
                "client": pa.array([1, 1], pa.int64()),
                "when": pa.array([hours(0), hours(1)], pa.timestamp("us", "UTC")),
            }
        )
        joined = offline_store.as_of_join(left, "fs-1", on="client", timestamp="when")
        assert joined["spend"].to_pylist() == [None, 30.0]

    def test_as_of_join_of_an_empty_left_side(self, offline_store: OfflineFeatureStore) -> None:
        offline_store.write(feature_set(), features())
        left = pa.table(
            {"client": pa.array([], pa.int64()), "when": pa.array([], pa.timestamp("us", "UTC"))}
        )
        joined = offline_store.as_of_join(left, "fs-1", on="client", timestamp="when")
        assert joined.num_rows == 0 and joined.column_names[-2:] == ["spend", "tier"]

    def test_as_of_join_refuses_what_it_cannot_join(
        self, offline_store: OfflineFeatureStore
    ) -> None:
        offline_store.write(feature_set(), features())
        at = pa.array([hours(1)], pa.timestamp("us", "UTC"))
        with pytest.raises(DataError, match="'when'"):
            offline_store.as_of_join(
                pa.table({"client": [1], "at": at}), "fs-1", on="client", timestamp="when"
            )
        with pytest.raises(DataError, match="'tier'"):
            offline_store.as_of_join(
                pa.table({"client": [1], "when": at, "tier": ["x"]}),
                "fs-1",
                on="client",
                timestamp="when",
            )
        with pytest.raises(DataError, match="'client'"):
            offline_store.as_of_join(
                pa.table({"client": ["1"], "when": at}), "fs-1", on="client", timestamp="when"
            )
        with pytest.raises(NotFoundError):
            offline_store.as_of_join(
                pa.table({"client": [1], "when": at}), "nope", on="client", timestamp="when"
            )
