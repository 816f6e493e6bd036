"""The EventBus contract run against every backend on real services."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import nats
import pytest
import redis.asyncio as aioredis

from gristmill.backends.nats.bus import NatsJetStreamBus, token
from gristmill.backends.redis.bus import RedisStreamsBus
from gristmill.backends.sqlite.bus import SqliteBus
from gristmill.bus.port import EventBus
from gristmill.testing.bus_child import BusRecipe
from gristmill.testing.bus_contract import EventBusContract, collect, make_event


class _BuiltFromRecipe(EventBusContract):
    """Builds the bus the same way in this process and in the contract's child process."""

    factory: str
    target: dict[str, Any]
    unreachable: dict[str, Any]
    namespace: str

    async def make_bus(self, *, max_attempts: int, ack_wait: float) -> EventBus:
        return self.recipe(max_attempts=max_attempts, ack_wait=ack_wait).build()

    def recipe(self, *, max_attempts: int, ack_wait: float) -> BusRecipe:
        settings = {"namespace": self.namespace, "max_attempts": max_attempts, "ack_wait": ack_wait}
        return BusRecipe(self.factory, {**self.target, **settings})

    def unreachable_bus(self) -> EventBus:
        return BusRecipe(self.factory, {**self.unreachable, "namespace": self.namespace}).build()


class TestSqliteBus(_BuiltFromRecipe):
    __test__ = True
    factory = "gristmill.backends.sqlite.bus:SqliteBus"
    unreachable = {"path": "/nonexistent-gristmill-dir/bus.db"}

    @pytest.fixture(autouse=True)
    def _place(self, tmp_path: Path, namespace: str) -> None:
        self.target = {"path": str(tmp_path / "bus.db")}
        self.namespace = namespace

    async def inject_raw(self, event_type: str, body: bytes) -> None:
        with closing(sqlite3.connect(self.target["path"])) as db, db:
            db.execute(
                "INSERT INTO gm_events (namespace, type, body) VALUES (?, ?, ?)",
                (self.namespace, event_type, body),
            )

    async def test_namespaces_sharing_a_file_are_isolated(self) -> None:
        neighbour = SqliteBus(self.target["path"], namespace=self.namespace + "-other")
        await neighbour.open()
        try:
            await neighbour.publish([make_event()])
            async with self.opened() as bus:
                assert await collect(bus, 1, timeout=0.3) == []
        finally:
            await neighbour.close()


class _OnServer(_BuiltFromRecipe):
    """A bus on a real server, reached through conftest's ``<service>_url`` fixture."""

    service: str

    @pytest.fixture(autouse=True)
    async def _place(self, request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[None]:
        self.target = {"url": request.getfixturevalue(f"{self.service}_url")}
        self.namespace = namespace
        yield
        bus = await self.make_bus(max_attempts=1, ack_wait=1.0)
        assert isinstance(bus, RedisStreamsBus | NatsJetStreamBus)
        await bus.open()
        try:
            await bus.purge()  # everything the test left on the server under its namespace
        finally:
            await bus.close()


@pytest.mark.redis
class TestRedisStreamsBus(_OnServer):
    __test__ = True
    service = "redis"
    factory = "gristmill.backends.redis.bus:RedisStreamsBus"
    unreachable = {"url": "redis://127.0.0.1:1/0"}

    async def inject_raw(self, event_type: str, body: bytes) -> None:
        client = aioredis.Redis.from_url(self.target["url"])
        try:
            await client.xadd(f"gristmill:{{{self.namespace}}}:events:{event_type}", {"e": body})
        finally:
            await client.aclose()


@pytest.mark.nats
class TestNatsJetStreamBus(_OnServer):
    __test__ = True
    service = "nats"
    factory = "gristmill.backends.nats.bus:NatsJetStreamBus"
    unreachable = {"url": "nats://127.0.0.1:1"}

    async def inject_raw(self, event_type: str, body: bytes) -> None:
        nc = await nats.connect(self.target["url"])
        try:
            subject = f"{token(self.namespace)}.{token(event_type)}"
            await nc.jetstream().publish(subject, body, stream=f"gristmill-{token(self.namespace)}")
        finally:
            await nc.close()
