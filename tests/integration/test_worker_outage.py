"""A worker rides out a broker restart: it keeps serving and handles what comes after.

Runs its own Redis server (with an append-only file, as a durable deployment would) on a
free port, so restarting it disturbs nobody else.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill.backends.redis.bus import RedisStreamsBus
from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.core.events import Event
from gristmill.runtime.worker import StageWorker
from gristmill.stages.base import Announcement, StageOutcome

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(
    REDIS is None, reason="needs the redis-server binary (apt install redis-server)"
)


class Echo:
    name = "echo"
    consumes = "ping"

    def idempotency_key(self, event: Event) -> str:
        return event.id

    def handle(self, event: Event) -> StageOutcome:
        return StageOutcome([Announcement("pong", {"n": event.payload["n"]})])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, port: int, folder: Path) -> None:
        self.port, self.folder = port, folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                str(REDIS),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    redis = RedisServer(free_port(), tmp_path)
    redis.start()
    yield redis
    redis.stop()


async def pongs(bus: RedisStreamsBus) -> list[int]:
    deliveries = await bus.consume("observer", "pong", "o", max_events=50, wait=0.2)
    for d in deliveries:
        await bus.ack(d)
    return [d.event.payload["n"] for d in deliveries]


async def test_a_worker_keeps_serving_across_a_broker_restart(
    server: RedisServer, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{server.port}/0"
    bus = RedisStreamsBus(url, namespace="outage", ack_wait=2.0)
    producer = RedisStreamsBus(url, namespace="outage", ack_wait=2.0)
    with SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}") as metadata:
        await bus.open()
        await producer.open()
        stop = asyncio.Event()
        worker = StageWorker(Echo(), bus, metadata.executions)
        task = asyncio.create_task(worker.run(stop, poll=0.1))
        try:
            await producer.publish([Event(type="ping", payload={"n": 1})])
            await asyncio.sleep(1.0)
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(1.5)  # the worker meets the outage and backs off
            assert not task.done(), "the worker died with the broker"
            await asyncio.to_thread(server.start)
            await producer.publish([Event(type="ping", payload={"n": 2})])
            seen: list[int] = []
            for _ in range(40):
                seen += await pongs(producer)
                if 2 in seen:
                    break
                await asyncio.sleep(0.25)
            assert sorted(set(seen)) == [1, 2]
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
            await bus.close()
            await producer.close()
