"""The contract every ``OnlineFeatureStore`` backend passes: subclass, provide a fixture, run.

::

    class TestSqliteOnlineStore(OnlineFeatureStoreContract):
        __test__ = True

        @pytest.fixture
        def online_store(self, tmp_path):
            with SqliteOnlineStore(str(tmp_path / "online.db")) as store:
                yield store

``online_store`` yields a fresh, opened, empty store and cleans up after the test. Optional:
``online_twin`` yields a second opened instance over the same data (another connection or
client, as another process would have) for the cross-instance and concurrency tests;
``unreachable_online_store`` an unopened store whose service cannot be reached.
"""

from __future__ import annotations

import math
import random
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from gristmill.errors import BackendUnavailableError, ConfigError, DataError
from gristmill.features.materialize import materialize
from gristmill.stores.features import EntityVector, OnlineCapabilities, OnlineFeatureStore

VIEW = "clients"
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
P1, P2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
FS1, FS2 = "fs_" + "a" * 24, "fs_" + "b" * 24


def vector(
    entity: str, n: float, *, at: datetime = T0, pipeline: str = P1, **extra: object
) -> EntityVector:
    """A vector of three features whose values are derived from ``n``, made by ``pipeline``
    (of feature set FS1 for P1, FS2 for any other)."""
    values = {"a": n, "b": 2 * n, "c": f"v{n}", **extra}
    return EntityVector(entity, values, at, FS1 if pipeline == P1 else FS2, pipeline)


def found(
    store: OnlineFeatureStore,
    view: str,
    entities: list[str],
    *,
    pipeline: str = P1,
    features: list[str] | None = None,
) -> list[EntityVector | None]:
    """The vectors ``pipeline`` has of ``entities`` (``None`` where none was found)."""
    lookups = store.get(view, entities, pipeline=pipeline, features=features)
    assert [lookup.entity for lookup in lookups] == entities
    for lookup in lookups:  # a vector comes only with "found", and is of that pipeline
        assert (lookup.vector is not None) == lookup.found
        assert lookup.vector is None or lookup.vector.pipeline == pipeline
    return [lookup.vector for lookup in lookups]


def fresh(seconds_ago: float = 0.0) -> datetime:
    """Now, or ``seconds_ago`` before it (for TTL tests, which measure from event time)."""
    return datetime.now(UTC) - timedelta(seconds=seconds_ago)


class OnlineFeatureStoreContract:
    """Behaviour every online store shows; ``online_store`` is the fixture a backend gives."""

    __test__ = False

    @pytest.fixture
    def online_store(self) -> OnlineFeatureStore:
        raise NotImplementedError("a backend's test class provides the online_store fixture")

    @pytest.fixture
    def online_twin(self) -> OnlineFeatureStore:
        pytest.skip("this backend gives no second instance over the same data")

    @pytest.fixture
    def unreachable_online_store(self) -> OnlineFeatureStore:
        pytest.skip("this backend has no service that can be unreachable")

    # -- reading what was written ------------------------------------------------------------

    def test_vectors_read_back_in_the_order_asked(self, online_store: OnlineFeatureStore) -> None:
        written = [vector(f"e{i}", i) for i in range(5)]
        assert online_store.put(VIEW, written) == 5
        asked = ["e3", "e0", "e4", "e1", "e2"]
        got = found(online_store, VIEW, asked)
        assert got == [written[int(entity[1:])] for entity in asked]

    def test_unknown_entities_are_none_in_place(self, online_store: OnlineFeatureStore) -> None:
        online_store.put(VIEW, [vector("known", 1)])
        got = found(online_store, VIEW, ["nobody", "known", "nobody-else"])
        assert got[0] is None and got[2] is None
        assert got[1] == vector("known", 1)
        assert found(online_store, VIEW, ["nobody"]) == [None]
        assert found(online_store, "no-such-view", ["known"]) == [None]

    def test_one_entity_and_many_read_alike(self, online_store: OnlineFeatureStore) -> None:
        online_store.put(VIEW, [vector("x", 1), vector("y", 2)])
        assert found(online_store, VIEW, ["x"]) == found(online_store, VIEW, ["x", "y"])[:1]

    def test_nothing_asked_nothing_given(self, online_store: OnlineFeatureStore) -> None:
        assert online_store.put(VIEW, []) == 0
        assert found(online_store, VIEW, []) == []

    def test_values_keep_their_types(self, online_store: OnlineFeatureStore) -> None:
        values = {
            "float": 0.1,
            "negative": -2.5e-300,
            "int": 2**53 + 1,
            "text": 'grüße ✓ "q"',
            "empty": "",
            "yes": True,
            "no": False,
            "missing": None,
            "whole": 3.0,
        }
        online_store.put(VIEW, [EntityVector("e", values, T0, FS1, P1)])
        (got,) = found(online_store, VIEW, ["e"])
        assert got is not None
        assert got.values == values
        assert {k: type(v) for k, v in got.values.items()} == {
            k: type(v) for k, v in values.items()
        }

    def test_a_value_it_cannot_store_is_a_data_error(
        self, online_store: OnlineFeatureStore
    ) -> None:
        with pytest.raises(DataError, match="'e'"):
            online_store.put(VIEW, [EntityVector("e", {"when": T0}, T0, FS1, P1)])

    def test_nan_and_infinity_survive(self, online_store: OnlineFeatureStore) -> None:
        values = {"nan": math.nan, "inf": -math.inf}
        online_store.put(VIEW, [EntityVector("e", values, T0, FS1, P1)])
        (got,) = found(online_store, VIEW, ["e"])
        assert got is not None
        assert math.isnan(got.values["nan"]) and got.values["inf"] == -math.inf

    def test_event_time_is_kept_to_the_microsecond_in_utc(
        self, online_store: OnlineFeatureStore
    ) -> None:
        east = datetime(2031, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=9)))
        online_store.put(VIEW, [vector("aware", 1, at=east)])
        online_store.put(VIEW, [vector("naive", 1, at=datetime(1999, 1, 2, 3, 4, 5, 6))])
        aware, naive = found(online_store, VIEW, ["aware", "naive"])
        assert aware is not None and naive is not None
        assert aware.event_time == east and aware.event_time.utcoffset() == timedelta(0)
        # A naive time is taken as UTC.
        assert naive.event_time == datetime(1999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)

    def test_features_selects_the_values_returned(self, online_store: OnlineFeatureStore) -> None:
        online_store.put(VIEW, [vector("e", 1), vector("f", 2)])
        got = found(online_store, VIEW, ["e", "f"], features=["c", "a"])
        assert [v.values if v else None for v in got] == [
            {"c": "v1", "a": 1},
            {"c": "v2", "a": 2},
        ]
        # A feature the vector does not have is left out, not invented.
        (only,) = found(online_store, VIEW, ["e"], features=["a", "zzz"])
        assert only is not None and only.values == {"a": 1}

    def test_entities_with_unusual_characters(self, online_store: OnlineFeatureStore) -> None:
        names = ["with space", "a:b", "ünï", "*", "[x]", "100%", "", "x" * 300]
        online_store.put(VIEW, [vector(name, i) for i, name in enumerate(names)])
        got = found(online_store, VIEW, names)
        assert [v.entity if v else None for v in got] == names

    def test_many_entities_in_one_call(self, online_store: OnlineFeatureStore) -> None:
        written = [vector(f"e{i}", i) for i in range(2500)]
        assert online_store.put(VIEW, written) == 2500
        asked = [f"e{i}" for i in range(2499, -1, -1)] + ["absent"]
        assert found(online_store, VIEW, asked) == [*reversed(written), None]

    # -- newest wins -------------------------------------------------------------------------

    def test_a_newer_vector_replaces_the_stored_one(self, online_store: OnlineFeatureStore) -> None:
        online_store.put(VIEW, [vector("e", 1)])
        assert online_store.put(VIEW, [vector("e", 2, at=T0 + timedelta(microseconds=1))]) == 1
        assert found(online_store, VIEW, ["e"]) == [
            vector("e", 2, at=T0 + timedelta(microseconds=1))
        ]

    def test_an_older_vector_arriving_late_is_ignored(
        self, online_store: OnlineFeatureStore
    ) -> None:
        online_store.put(VIEW, [vector("e", 2, at=T0)])
        assert online_store.put(VIEW, [vector("e", 1, at=T0 - timedelta(days=1))]) == 0
        assert found(online_store, VIEW, ["e"]) == [vector("e", 2, at=T0)]

    def test_a_replay_at_the_same_time_changes_nothing(
        self, online_store: OnlineFeatureStore
    ) -> None:
        online_store.put(VIEW, [vector("e", 1)])
        assert online_store.put(VIEW, [vector("e", 99)]) == 0
        assert found(online_store, VIEW, ["e"]) == [vector("e", 1)]

    def test_put_counts_only_the_newer_vectors(self, online_store: OnlineFeatureStore) -> None:
        online_store.put(VIEW, [vector("old", 1), vector("new", 1)])
        later = T0 + timedelta(hours=1)
        batch = [vector("old", 0, at=T0 - timedelta(hours=1)), vector("new", 2, at=later)]
        assert online_store.put(VIEW, [*batch, vector("unseen", 3)]) == 2

    def test_within_one_put_the_newest_of_an_entity_wins(
        self, online_store: OnlineFeatureStore
    ) -> None:
        batch = [vector("e", n, at=T0 + timedelta(seconds=n)) for n in (2, 5, 1, 4)]
        online_store.put(VIEW, batch)
        assert found(online_store, VIEW, ["e"]) == [batch[1]]

    # -- time to live ------------------------------------------------------------------------

    def test_a_vector_older_than_the_ttl_is_not_served(
        self, online_store: OnlineFeatureStore
    ) -> None:
        stale, live = vector("stale", 1, at=fresh(90)), vector("live", 2, at=fresh())
        online_store.put(VIEW, [stale, live], ttl=60)
        assert found(online_store, VIEW, ["stale", "live"]) == [None, live]
        assert found(online_store, VIEW, ["stale"]) == [None]
        # Told plainly: expired, with the time its vector describes, not "missing".
        expired = online_store.get(VIEW, ["stale", "live"], pipeline=P1)[0]
        assert (expired.status, expired.stale, expired.vector) == ("expired", True, None)
        assert expired.event_time == stale.event_time

    def test_a_vector_expires_once_its_ttl_has_passed(
        self, online_store: OnlineFeatureStore
    ) -> None:
        live = vector("e", 1, at=fresh())
        online_store.put(VIEW, [live, vector("f", 1, at=fresh())], ttl=0.4)
        assert found(online_store, VIEW, ["e"]) == [live]
        deadline = time.monotonic() + 5
        statuses = ["found"]
        while statuses[0] == "found" and time.monotonic() < deadline:
            time.sleep(0.02)
            statuses = [r.status for r in online_store.get(VIEW, ["e", "f"], pipeline=P1)]
        # Once past its TTL a vector reads "expired" (a backend that drops it itself keeps
        # it for one more TTL first), never "found".
        assert statuses == ["expired", "expired"]

    def test_without_ttl_vectors_never_expire(self, online_store: OnlineFeatureStore) -> None:
        ancient = vector("e", 1, at=datetime(1990, 1, 1, tzinfo=UTC))
        online_store.put(VIEW, [ancient])
        assert found(online_store, VIEW, ["e"]) == [ancient]

    def test_a_newer_vector_revives_an_expired_entity(
        self, online_store: OnlineFeatureStore
    ) -> None:
        online_store.put(VIEW, [vector("e", 1, at=fresh(120))], ttl=60)
        revived = vector("e", 2, at=fresh())
        assert online_store.put(VIEW, [revived], ttl=60) == 1
        assert found(online_store, VIEW, ["e"]) == [revived]

    # -- provenance: one part of the view per pipeline ----------------------------------------

    def test_every_vector_records_its_origin(self, online_store: OnlineFeatureStore) -> None:
        before = datetime.now(UTC) - timedelta(seconds=1)
        online_store.put(VIEW, [vector("e", 1)])
        (lookup,) = online_store.get(VIEW, ["e"], pipeline=P1)
        assert lookup.status == "found" and lookup.found and not lookup.stale
        got = lookup.vector
        assert got is not None
        assert (got.feature_set_id, got.pipeline, got.event_time) == (FS1, P1, T0)
        assert got.written_at is not None
        assert before <= got.written_at <= datetime.now(UTC) + timedelta(seconds=1)

    def test_a_vector_without_its_origin_is_refused(self, online_store: OnlineFeatureStore) -> None:
        with pytest.raises(ConfigError, match=r"'e'.*pipeline"):
            online_store.put(VIEW, [EntityVector("e", {"a": 1}, T0, FS1)])
        with pytest.raises(ConfigError, match=r"'f'.*feature set id"):
            online_store.put(VIEW, [EntityVector("f", {"a": 1}, T0, "", P1)])
        with pytest.raises(ConfigError):
            online_store.put(VIEW, [EntityVector("g", {"a": 1}, T0)])
        assert found(online_store, VIEW, ["e", "f", "g"]) == [None, None, None]

    def test_a_pipeline_sees_only_its_own_vectors(self, online_store: OnlineFeatureStore) -> None:
        online_store.put(VIEW, [vector("both", 1), vector("one-only", 1)])
        later = T0 + timedelta(hours=1)
        assert online_store.put(VIEW, [vector("both", 2, at=later, pipeline=P2)]) == 1
        assert online_store.put(VIEW, [vector("two-only", 2, pipeline=P2)]) == 1
        # The newer vector of P2 did not replace P1's: it marked it superseded.
        mine = online_store.get(VIEW, ["both", "one-only", "two-only"], pipeline=P1)
        assert [r.status for r in mine] == ["superseded", "found", "missing"]
        assert (mine[0].event_time, mine[0].newer_time, mine[0].vector) == (T0, later, None)
        assert mine[1].vector == vector("one-only", 1)
        theirs = found(online_store, VIEW, ["both", "one-only", "two-only"], pipeline=P2)
        assert theirs == [
            vector("both", 2, at=later, pipeline=P2),
            None,
            vector("two-only", 2, pipeline=P2),
        ]
        # One entity alone reads the same as among many.
        assert online_store.get(VIEW, ["both"], pipeline=P1) == mine[:1]

    def test_one_put_may_carry_several_pipelines(self, online_store: OnlineFeatureStore) -> None:
        later = T0 + timedelta(seconds=1)
        batch = [vector(f"e{i}", i, at=later if i % 2 else T0, pipeline=P2 if i % 2 else P1)
                 for i in range(1200)]  # fmt: skip
        assert online_store.put(VIEW, batch) == 1200
        assert found(online_store, VIEW, ["e0", "e1"]) == [batch[0], None]
        assert found(online_store, VIEW, ["e0", "e1"], pipeline=P2) == [None, batch[1]]
        # the same entities again through the other pipelines: each side sees the newer one
        again = [vector(f"e{i}", i, at=T0 if i % 2 else later, pipeline=P1 if i % 2 else P2)
                 for i in range(1200)]  # fmt: skip
        assert online_store.put(VIEW, again) == 1200
        statuses = online_store.get(VIEW, ["e0", "e1"], pipeline=P1)
        assert [r.status for r in statuses] == ["superseded", "superseded"]
        assert found(online_store, VIEW, ["e0", "e1"], pipeline=P2) == [again[0], batch[1]]

    def test_a_late_vector_of_another_pipeline_arrives_superseded(
        self, online_store: OnlineFeatureStore
    ) -> None:
        later = T0 + timedelta(minutes=5)
        online_store.put(VIEW, [vector("e", 2, at=later, pipeline=P2)])
        assert online_store.put(VIEW, [vector("e", 1, at=T0)]) == 1
        (mine,) = online_store.get(VIEW, ["e"], pipeline=P1)
        assert (mine.status, mine.newer_time) == ("superseded", later)
        assert found(online_store, VIEW, ["e"], pipeline=P2) == [
            vector("e", 2, at=later, pipeline=P2)
        ]

    def test_a_pipeline_that_catches_up_is_found_again(
        self, online_store: OnlineFeatureStore
    ) -> None:
        t1, t2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
        online_store.put(VIEW, [vector("e", 0)])
        online_store.put(VIEW, [vector("e", 1, at=t1, pipeline=P2)])
        assert online_store.get(VIEW, ["e"], pipeline=P1)[0].status == "superseded"
        # The same time in both pipelines: neither is behind the other.
        online_store.put(VIEW, [vector("e", 1, at=t1)])
        assert found(online_store, VIEW, ["e"]) == [vector("e", 1, at=t1)]
        assert found(online_store, VIEW, ["e"], pipeline=P2) == [vector("e", 1, at=t1, pipeline=P2)]
        # P1 moves on: now P2 is behind.
        online_store.put(VIEW, [vector("e", 2, at=t2)])
        (theirs,) = online_store.get(VIEW, ["e"], pipeline=P2)
        assert (theirs.status, theirs.event_time, theirs.newer_time) == ("superseded", t1, t2)
        assert found(online_store, VIEW, ["e"]) == [vector("e", 2, at=t2)]

    def test_deleting_one_pipeline_leaves_the_others(
        self, online_store: OnlineFeatureStore
    ) -> None:
        online_store.put(VIEW, [vector("e", 1, at=T0 + timedelta(hours=1))])
        online_store.put(VIEW, [vector("e", 2, pipeline=P2), vector("f", 2, pipeline=P2)])
        online_store.delete_view(VIEW, pipeline=P2)
        assert [r.status for r in online_store.get(VIEW, ["e", "f"], pipeline=P2)] == [
            "missing",
            "missing",
        ]
        assert found(online_store, VIEW, ["e"]) == [vector("e", 1, at=T0 + timedelta(hours=1))]
        # The deleted pipeline's part takes vectors again.
        assert online_store.put(VIEW, [vector("f", 3, pipeline=P2)]) == 1

    def test_deleting_the_newer_pipeline_clears_superseded(
        self, online_store: OnlineFeatureStore
    ) -> None:
        later = T0 + timedelta(hours=1)
        online_store.put(VIEW, [vector("e", 1), vector("f", 1), vector("g", 1)])
        online_store.put(VIEW, [vector("e", 2, at=later, pipeline=P2)])
        online_store.put(VIEW, [vector("f", 2, at=later, pipeline=P2)])
        assert [r.status for r in online_store.get(VIEW, ["e", "f"], pipeline=P1)] == [
            "superseded",
            "superseded",
        ]
        online_store.delete_view(VIEW, pipeline=P2)
        # Nothing newer is left: P1's vectors are current again, alone or among others.
        assert found(online_store, VIEW, ["e"]) == [vector("e", 1)]
        assert found(online_store, VIEW, ["e", "f", "g"]) == [
            vector("e", 1),
            vector("f", 1),
            vector("g", 1),
        ]

    def test_another_instance_sees_which_pipeline_is_behind(
        self, online_store: OnlineFeatureStore, online_twin: OnlineFeatureStore
    ) -> None:
        online_store.put(VIEW, [vector("e", 1)])
        online_twin.put(VIEW, [vector("e", 2, at=T0 + timedelta(seconds=1), pipeline=P2)])
        assert online_store.get(VIEW, ["e"], pipeline=P1)[0].status == "superseded"
        assert online_twin.get(VIEW, ["e"], pipeline=P1)[0].status == "superseded"

    # -- views -------------------------------------------------------------------------------

    def test_views_are_independent(self, online_store: OnlineFeatureStore) -> None:
        online_store.put("one", [vector("e", 1)])
        online_store.put("two", [vector("e", 2)])
        online_store.put("one:two", [vector("e", 3)])
        assert found(online_store, "one", ["e"]) == [vector("e", 1)]
        assert found(online_store, "two", ["e"]) == [vector("e", 2)]
        assert found(online_store, "one:two", ["e"]) == [vector("e", 3)]

    def test_delete_view_removes_that_view_only(self, online_store: OnlineFeatureStore) -> None:
        online_store.put(VIEW, [vector(f"e{i}", i) for i in range(1500)])
        online_store.put("clients2", [vector("e1", 1)])
        online_store.put("client*", [vector("e1", 1)])
        online_store.delete_view(VIEW)
        assert found(online_store, VIEW, ["e0", "e1", "e1499"]) == [None, None, None]
        assert found(online_store, "clients2", ["e1"]) == [vector("e1", 1)]
        assert found(online_store, "client*", ["e1"]) == [vector("e1", 1)]
        # A view name is not a pattern: deleting "client*" leaves "clients2" alone.
        online_store.delete_view("client*")
        assert found(online_store, "client*", ["e1"]) == [None]
        assert found(online_store, "clients2", ["e1"]) == [vector("e1", 1)]
        online_store.delete_view("never-written")
        # A deleted view takes vectors again, older ones too.
        assert online_store.put(VIEW, [vector("e1", 0, at=T0 - timedelta(days=9))]) == 1

    # -- materialization ---------------------------------------------------------------------

    def test_materialize_writes_the_newest_row_per_entity(
        self, online_store: OnlineFeatureStore
    ) -> None:
        table = pa.table(
            {
                "id": [1, 2, 1, 3, 2],
                "at": pa.array(
                    [T0 + timedelta(hours=h) for h in (1, 5, 3, 0, 2)], pa.timestamp("us", "UTC")
                ),
                "x": [0.1, 0.2, 0.3, 0.4, 0.5],
                "tag": ["a", "b", "c", "d", "e"],
            }
        )
        written = materialize(
            online_store, VIEW, table, entity="id", timestamp="at", features=["x", "tag"],
            ttl=None, batch_size=2, feature_set_id=FS1, pipeline=P1,
        )  # fmt: skip
        assert written == 3
        got = found(online_store, VIEW, ["1", "2", "3"])
        assert [(v.values, v.event_time) if v else None for v in got] == [
            ({"x": 0.3, "tag": "c"}, T0 + timedelta(hours=3)),
            ({"x": 0.2, "tag": "b"}, T0 + timedelta(hours=5)),
            ({"x": 0.4, "tag": "d"}, T0),
        ]
        again = materialize(
            online_store, VIEW, table, entity="id", timestamp="at", features=["x"], ttl=None,
            feature_set_id=FS1, pipeline=P1,
        )  # fmt: skip
        assert again == 0

    def test_materialize_without_timestamps_stamps_the_creation_time(
        self, online_store: OnlineFeatureStore
    ) -> None:
        table = pa.table({"id": ["a", "b", "a"], "x": [1.0, 2.0, 3.0]})
        created = fresh(10)
        count = materialize(
            online_store, VIEW, table, entity="id", timestamp=None, features=["x"],
            ttl=3600, created_at=created, feature_set_id=FS1, pipeline=P1,
        )  # fmt: skip
        assert count == 2
        assert found(online_store, VIEW, ["a", "b"]) == [
            EntityVector("a", {"x": 3.0}, created, FS1, P1),
            EntityVector("b", {"x": 2.0}, created, FS1, P1),
        ]

    # -- lifecycle and sharing ---------------------------------------------------------------

    def test_capabilities_are_declared(self, online_store: OnlineFeatureStore) -> None:
        assert isinstance(online_store.capabilities, OnlineCapabilities)

    def test_open_and_close_are_idempotent(self, online_store: OnlineFeatureStore) -> None:
        online_store.open()
        online_store.put(VIEW, [vector("e", 1)])
        online_store.close()
        online_store.close()
        online_store.open()
        assert found(online_store, VIEW, ["e"]) == [vector("e", 1)]

    def test_another_instance_sees_the_writes(
        self, online_store: OnlineFeatureStore, online_twin: OnlineFeatureStore
    ) -> None:
        online_store.put(VIEW, [vector("e", 1)])
        assert found(online_twin, VIEW, ["e"]) == [vector("e", 1)]
        assert online_twin.put(VIEW, [vector("e", 0, at=T0 - timedelta(seconds=1))]) == 0

    def test_concurrent_writers_out_of_order_newest_wins(
        self, online_store: OnlineFeatureStore, online_twin: OnlineFeatureStore
    ) -> None:
        entities = [f"e{i}" for i in range(20)]
        steps = 60
        errors: list[BaseException] = []

        def write(store: OnlineFeatureStore, parity: int, seed: int) -> None:
            # Each writer stamps its own half of the times, in a shuffled order, in small
            # batches, so the two interleave and most writes arrive late.
            times = [n for n in range(steps) if n % 2 == parity]
            random.Random(seed).shuffle(times)
            try:
                for n in times:
                    at = T0 + timedelta(seconds=n)
                    store.put(VIEW, [vector(entity, n, at=at) for entity in entities])
            except BaseException as exc:  # surfaced below, in the test's thread
                errors.append(exc)

        threads = [
            threading.Thread(target=write, args=(online_store, 0, 1)),
            threading.Thread(target=write, args=(online_twin, 1, 2)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        newest = T0 + timedelta(seconds=steps - 1)
        assert found(online_store, VIEW, entities) == [
            vector(entity, steps - 1, at=newest) for entity in entities
        ]

    def test_an_unreachable_service_raises_backend_unavailable(
        self, unreachable_online_store: OnlineFeatureStore
    ) -> None:
        with pytest.raises(BackendUnavailableError):
            unreachable_online_store.open()
