"""The OnlineFeatureStore contract on SQLite (embedded) and Redis (the real server)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
import redis

from gristmill.backends.redis.online import RedisOnlineStore
from gristmill.backends.sqlite.online import SqliteOnlineStore
from gristmill.errors import ConfigError, DataError
from gristmill.features.materialize import latest_vectors
from gristmill.stores.features import EntityVector
from gristmill.testing.online_contract import FS1, P1, OnlineFeatureStoreContract, fresh, vector


class TestSqliteOnlineStore(OnlineFeatureStoreContract):
    __test__ = True

    @pytest.fixture
    def online_store(self, tmp_path: Path, namespace: str) -> Iterator[SqliteOnlineStore]:
        with SqliteOnlineStore(str(tmp_path / "online.db"), namespace=namespace) as store:
            yield store

    @pytest.fixture
    def online_twin(self, tmp_path: Path, namespace: str) -> Iterator[SqliteOnlineStore]:
        with SqliteOnlineStore(str(tmp_path / "online.db"), namespace=namespace) as store:
            yield store

    @pytest.fixture
    def unreachable_online_store(self) -> SqliteOnlineStore:
        return SqliteOnlineStore("/nonexistent-gristmill-dir/online.db")

    def test_namespaces_sharing_a_file_are_isolated(
        self, online_store: SqliteOnlineStore, tmp_path: Path
    ) -> None:
        with SqliteOnlineStore(str(tmp_path / "online.db"), namespace="other") as other:
            other.put("v", [vector("e", 1, at=fresh())])
        assert online_store.get("v", ["e"], pipeline=P1)[0].status == "missing"


@pytest.mark.redis
class TestRedisOnlineStore(OnlineFeatureStoreContract):
    __test__ = True

    @pytest.fixture
    def online_store(self, redis_url: str, namespace: str) -> Iterator[RedisOnlineStore]:
        with RedisOnlineStore(redis_url, namespace=namespace) as store:
            yield store
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"gristmill:{{{namespace}}}:*"))
        if keys:
            client.delete(*keys)
        client.close()

    @pytest.fixture
    def online_twin(self, redis_url: str, namespace: str) -> Iterator[RedisOnlineStore]:
        with RedisOnlineStore(redis_url, namespace=namespace) as store:
            yield store

    @pytest.fixture
    def unreachable_online_store(self, namespace: str) -> RedisOnlineStore:
        return RedisOnlineStore("redis://127.0.0.1:1/0", namespace=namespace)

    def test_expired_vectors_are_dropped_by_redis(
        self, online_store: RedisOnlineStore, redis_url: str, namespace: str
    ) -> None:
        old = datetime(2020, 1, 1, tzinfo=UTC)
        online_store.put("v", [vector("gone", 1, at=old)], ttl=60)
        online_store.put("v", [vector("kept", 1, at=fresh())], ttl=3600)
        online_store.put("v", [vector("day", 1, at=fresh())], ttl=30 * 86400)
        online_store.put("v", [vector("forever", 1, at=old)])
        client = redis.Redis.from_url(redis_url)
        prefix = f"gristmill:{{{namespace}}}:online:v:{P1.replace(':', '%3A')}:"
        assert client.exists(prefix + "gone") == 0
        # kept one more TTL (to read "expired"), at most one more day
        assert 7_100_000 < client.pttl(prefix + "kept") <= 7_201_000  # rounding, clocks
        assert 31 * 86_400_000 - 100_000 < client.pttl(prefix + "day") <= 31 * 86_400_000
        assert client.pttl(prefix + "forever") == -1
        client.close()

    def test_a_lost_script_cache_is_reloaded(self, online_store: RedisOnlineStore) -> None:
        # As after a server restart; a shared server's real cache is left alone.
        online_store._put_sha = online_store._get_sha = "0" * 40
        assert online_store.put("v", [EntityVector("e", {"a": 1}, fresh(), FS1, P1)]) == 1
        online_store._get_sha = "0" * 40
        got = online_store.get("v", ["e", "f"], pipeline=P1)
        assert [r.vector.values if r.vector else r.status for r in got] == [{"a": 1}, "missing"]


class TestLatestVectors:
    """``latest_vectors`` (pure Arrow work) on its own, beside the stores it feeds."""

    def test_the_newest_row_wins_and_ties_go_to_the_last_row(self) -> None:
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        table = pa.table(
            {
                "id": ["a", "b", "a", "a", None, "b"],
                "at": pa.array([t0, t0, t0, None, t0, t0], pa.timestamp("ms")),
                "x": [1, 2, 3, 4, 5, 6],
            }
        )
        got = latest_vectors(
            table, entity="id", timestamp="at", features=["x"], feature_set_id=FS1, pipeline=P1
        )
        # Sorted by entity; a row without entity or time is skipped; among equal times the
        # later row wins; a naive timestamp is taken as UTC; each records its origin.
        assert got == [
            EntityVector("a", {"x": 3}, t0, FS1, P1),
            EntityVector("b", {"x": 6}, t0, FS1, P1),
        ]

    def test_integer_entities_become_strings(self) -> None:
        table = pa.table({"id": pa.array([7, 8], pa.int32()), "x": [1.5, 2.5]})
        t0 = datetime(2024, 1, 1, tzinfo=UTC)
        got = latest_vectors(table, entity="id", timestamp=None, features=["x"], created_at=t0)
        assert [v.entity for v in got] == ["7", "8"]

    def test_an_empty_table_gives_no_vectors(self) -> None:
        table = pa.table({"id": pa.array([], pa.string()), "at": pa.array([], pa.timestamp("s"))})
        assert latest_vectors(table, entity="id", timestamp="at", features=[]) == []

    def test_what_cannot_be_materialized_is_refused(self) -> None:
        table = pa.table({"id": ["a"], "at": ["2024-01-01"], "x": [1.0]})
        with pytest.raises(DataError, match="'nope'"):
            latest_vectors(table, entity="id", timestamp="at", features=["nope"])
        with pytest.raises(DataError, match="timestamp or date"):
            latest_vectors(table, entity="id", timestamp="at", features=["x"])
        with pytest.raises(ConfigError, match="created_at"):
            latest_vectors(table, entity="id", timestamp=None, features=["x"])
