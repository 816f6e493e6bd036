"""Workers ride out broker outages: they keep serving and handle what comes after.

Each test runs its own broker (Redis with an append-only file, as a durable deployment
would; nats-server with JetStream) on a free port, so killing and restarting it disturbs
nobody else. A restart either keeps the broker's data or starts it *empty* (a Redis without
persistence, a NATS whose store was lost): the worker must reconnect by itself, set its
consumer groups up again and go on, and SIGTERM must stop it even while the broker is away.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from gristmill.backends.nats.bus import NatsJetStreamBus
from gristmill.backends.redis.bus import RedisStreamsBus
from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.bus.port import EventBus
from gristmill.core.events import RAW_INGESTED, Event
from gristmill.errors import BackendError
from gristmill.runtime.stream import records_event
from gristmill.runtime.worker import StageWorker
from gristmill.stages.base import Announcement, StageOutcome
from gristmill.stores.metadata import ExecutionStore, StageExecution

REDIS = shutil.which("redis-server")
NATS = shutil.which("nats-server") or next(
    (p for p in ("/usr/sbin/nats-server", "/usr/local/bin/nats-server") if Path(p).exists()), None
)
T = TypeVar("T")
OUTAGE = 5.0  # seconds a broker stays down: longer than any reconnect budget a client had
GRACE = 10.0  # seconds a worker may take to stop after SIGTERM


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


def wait_until(condition: Callable[[], bool], what: str, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {deadline}s")
        time.sleep(0.05)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Broker:
    """A broker process on a free port; ``start(empty=True)`` starts it without its data."""

    scheme = ""

    def __init__(self, folder: Path) -> None:
        self.port, self.folder = free_port(), folder
        self.process: subprocess.Popen[bytes] | None = None
        self.generation = 0

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def command(self, data: Path) -> list[str]:
        raise NotImplementedError

    def start(self, *, empty: bool = False) -> None:
        if empty:
            self.generation += 1
        data = self.folder / f"data{self.generation}"
        data.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(data), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: listening(self.port), f"{self.scheme} server on port {self.port}")

    def hang(self) -> None:
        """Stop the process (SIGSTOP): connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


class RedisServer(Broker):
    scheme = "redis"

    def command(self, data: Path) -> list[str]:
        return [
            *(str(REDIS), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "yes", "--appendfsync", "always", "--dir", str(data)),
        ]


class NatsServer(Broker):
    scheme = "nats"

    def command(self, data: Path) -> list[str]:
        return [str(NATS), "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(data)]


BROKERS: dict[str, tuple[type[Broker], str | None]] = {
    "redis": (RedisServer, REDIS),
    "nats": (NatsServer, NATS),
}


def broker_of(kind: str, folder: Path) -> Iterator[Broker]:
    cls, binary = BROKERS[kind]
    if binary is None:
        pytest.skip(f"needs the {kind}-server binary (apt install {kind}-server)")
    broker = cls(folder / kind)
    broker.start()
    yield broker
    broker.kill()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Broker]:
    yield from broker_of("redis", tmp_path)


@pytest.fixture(params=["redis", "nats"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    yield from broker_of(request.param, tmp_path)


def bus_on(broker: Broker) -> EventBus:
    if isinstance(broker, RedisServer):
        return RedisStreamsBus(broker.url + "/0", namespace="outage", ack_wait=3.0)
    return NatsJetStreamBus(broker.url, namespace="outage", ack_wait=3.0)


@pytest.fixture
async def client(broker: Broker) -> AsyncIterator[Callable[[], EventBus]]:
    """Opened buses on ``broker`` (one per call, as a producer after a restart would)."""
    opened: list[EventBus] = []

    def make() -> EventBus:
        bus = bus_on(broker)
        opened.append(bus)
        return bus

    yield make
    for bus in opened:
        with suppress(BackendError):  # a bus on a broker killed since may not close cleanly
            await bus.close()


class WorkerProcess:
    """``gristmill worker --stage stream-ingestion`` on ``broker``, as an operator starts it."""

    def __init__(self, broker: Broker, home: Path) -> None:
        self.log = home / "worker.log"
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
        env |= {
            "GRISTMILL_HOME": str(home),
            "GRISTMILL_BUS__BACKEND": broker.scheme,
            "GRISTMILL_BUS__URL": broker.url + ("/0" if broker.scheme == "redis" else ""),
            "GRISTMILL_BUS__NAMESPACE": "outage",
            "GRISTMILL_BUS__ACK_WAIT": "3",
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gristmill", "worker", "--stage", "stream-ingestion"],
                env=env,
                cwd=home,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.stopped_at = ""
        wait_until(lambda: "ready" in self.output(), "the worker starting")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int | None:
        """SIGTERM; the exit code, or None when it did not stop within ``GRACE``."""
        self.stopped_at = time.strftime("%H:%M:%S")  # to compare with the worker's log lines
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=GRACE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


@pytest.fixture
def worker(broker: Broker, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(broker, tmp_path / "home")
    yield process
    if process.process.poll() is None:
        process.process.kill()
        process.process.wait()


async def open_bus(make: Callable[[], EventBus], deadline: float = 30.0) -> EventBus:
    """A bus opened on a broker that may still be starting up."""
    end = time.monotonic() + deadline
    while True:
        bus = make()
        try:
            await bus.open()
            return bus
        except BackendError:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.2)


async def ingested(bus: EventBus, source: str, worker: WorkerProcess) -> None:
    """Publish one record to ``source`` and wait until the worker announced its batch."""
    await bus.publish([records_event(source, [{"n": 1}])])
    end = time.monotonic() + 60
    while time.monotonic() < end:
        assert worker.process.poll() is None, f"the worker exited:\n{worker.output()}"
        for delivery in await bus.consume("observer", RAW_INGESTED, "o", max_events=50, wait=0.5):
            await bus.ack(delivery)
            if delivery.event.payload["source"] == source:
                return
    raise AssertionError(f"{source} was not ingested within 60s; worker said:\n{worker.output()}")


def outage_noticed(worker: WorkerProcess, *, times: int = 1) -> Callable[[], bool]:
    return lambda: worker.output().count("retrying in") >= times


@pytest.mark.slow
@pytest.mark.parametrize("empty", [False, True], ids=["restarted", "restarted-empty"])
async def test_a_worker_process_recovers_when_its_broker_comes_back(
    broker: Broker, worker: WorkerProcess, client: Callable[[], EventBus], empty: bool
) -> None:
    before = await open_bus(client)
    await ingested(before, "before", worker)

    await asyncio.to_thread(broker.kill)
    await asyncio.to_thread(wait_until, outage_noticed(worker), "the worker noticing")
    await asyncio.sleep(OUTAGE)  # the outage itself: longer than a client's reconnect budget
    assert worker.process.poll() is None, "the worker died with the broker"
    await asyncio.to_thread(broker.start, empty=empty)

    # No restart of the worker: it reconnects, declares its groups again, and goes on.
    after = await open_bus(client)
    await ingested(after, "after", worker)
    assert await asyncio.to_thread(worker.stop) == 0, worker.output()


@pytest.mark.slow
async def test_sigterm_stops_a_worker_while_its_broker_is_down(
    broker: Broker, worker: WorkerProcess
) -> None:
    await asyncio.to_thread(broker.kill)
    await asyncio.to_thread(wait_until, outage_noticed(worker), "the worker noticing")
    await asyncio.sleep(OUTAGE)  # past the point where a client would have given up

    started = time.monotonic()
    code = await asyncio.to_thread(worker.stop)
    took = time.monotonic() - started
    assert code == 0, f"exit {code} {took:.1f}s after {worker.stopped_at}:\n{worker.output()}"
    assert "stopped after handling" in worker.output()


@pytest.mark.slow
async def test_sigterm_stops_a_worker_while_its_broker_hangs(
    broker: Broker, worker: WorkerProcess, client: Callable[[], EventBus]
) -> None:
    bus = await open_bus(client)
    await ingested(bus, "before", worker)  # the worker is connected and serving
    await asyncio.to_thread(broker.hang)  # its connections stay open; no reply ever comes

    started = time.monotonic()
    code = await asyncio.to_thread(worker.stop)
    took = time.monotonic() - started
    assert code == 0, f"exit {code} {took:.1f}s after {worker.stopped_at}:\n{worker.output()}"
    assert "stopped after handling" in worker.output()


async def pongs(bus: EventBus) -> list[int]:
    deliveries = await bus.consume("observer", "pong", "o", max_events=50, wait=0.2)
    for d in deliveries:
        await bus.ack(d)
    return [d.event.payload["n"] for d in deliveries]


async def test_a_worker_keeps_serving_across_a_broker_restart(
    server: Broker, tmp_path: Path
) -> None:
    url = f"{server.url}/0"
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
            await asyncio.to_thread(server.kill)
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


@pytest.fixture(params=["redis", "nats"])
async def shared_bus(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[EventBus]:
    """A bus on the shared test server of each kind (nothing is restarted here)."""
    url = request.getfixturevalue(f"{request.param}_url")
    bus: EventBus
    if request.param == "redis":
        bus = RedisStreamsBus(url, namespace=namespace, ack_wait=3.0)
    else:
        bus = NatsJetStreamBus(url, namespace=namespace, ack_wait=3.0)
    await bus.open()
    yield bus
    await bus.purge()  # type: ignore[attr-defined]
    await bus.close()


async def until_it_works(call: Callable[[], Awaitable[T]], tries: int = 5) -> T:
    """``call()``, retried on ``BackendError`` as a worker's loop would."""
    for _ in range(tries - 1):
        try:
            return await call()
        except BackendError:
            await asyncio.sleep(0.1)
    return await call()


async def test_a_bus_whose_stream_and_groups_vanished_sets_them_up_again(
    shared_bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    # What a server restarted empty looks like from the bus: everything it declared is gone.
    bus = shared_bus
    await bus.publish([Event(type="ping", payload={"n": 1})])
    (held,) = await bus.consume("g", "ping", "c", wait=5.0)
    other = type(bus)(bus.url, namespace=bus.namespace)  # type: ignore[attr-defined]
    await other.open()
    await other.purge()  # type: ignore[attr-defined]
    await other.close()

    with caplog.at_level(logging.WARNING, logger="gristmill"):
        await bus.nack(held, error="its entry is gone with the server")  # nothing to do
        await until_it_works(lambda: bus.publish([Event(type="ping", payload={"n": 2})]))
        got = await until_it_works(lambda: bus.consume("g", "ping", "c", wait=5.0))
    assert [d.event.payload["n"] for d in got] == [2]
    await bus.ack(got[0])
    said = warnings_from(caplog)
    if isinstance(bus, NatsJetStreamBus):  # the loss is said once: work announced may be gone
        assert len(said) == 1, said
        assert "was lost" in said[0] and "creating it again" in said[0], said
        assert "queue their work again" in said[0], said
    else:  # the group, once, and the entry that could not be nacked
        assert len(said) == 2 and "is gone; creating it again" in said[1], said


async def test_closing_a_nats_bus_logs_no_loss(
    nats_url: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = NatsJetStreamBus(nats_url, namespace=namespace)
    await bus.open()
    try:
        await bus.publish([Event(type="ping", payload={"n": 1})])
        (delivery,) = await bus.consume("g", "ping", "c", wait=5.0)
        await bus.ack(delivery)
        await bus.purge()
    finally:
        with caplog.at_level(logging.DEBUG, logger="gristmill"):
            await bus.close()
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert said == [], said


def warnings_from(caplog: pytest.LogCaptureFixture, since: int = 0) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records[since:]
        if r.levelno >= logging.WARNING and r.name.startswith("gristmill")
    ]


async def wait_for_line(caplog: pytest.LogCaptureFixture, text: str, deadline: float) -> None:
    end = time.monotonic() + deadline
    while not any(text in line for line in warnings_from(caplog)):
        if time.monotonic() > end:
            raise AssertionError(f"no {text!r} within {deadline}s: {warnings_from(caplog)}")
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    broker: Broker, client: Callable[[], EventBus], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG, logger="gristmill")
    bus = await open_bus(client)
    with SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}") as metadata:
        stop = asyncio.Event()
        worker = StageWorker(Echo(), bus, metadata.executions)
        task = asyncio.create_task(worker.run(stop, poll=0.1))
        try:
            await asyncio.sleep(0.5)  # serving: consumer declared, polling
            assert warnings_from(caplog) == []
            await asyncio.to_thread(broker.kill)
            await wait_for_line(caplog, "retrying in", 30.0)
            if isinstance(broker, NatsServer):  # the client's own notice of the loss
                await wait_for_line(caplog, "reconnecting every second", 30.0)
            started = len(caplog.records)
            await asyncio.sleep(OUTAGE)  # the client retries many times meanwhile
            during = warnings_from(caplog, started)
            assert during == [], f"logged again within {OUTAGE}s of the outage's start: {during}"
            await asyncio.to_thread(broker.start)
            await wait_for_line(caplog, "serving again after", 60.0)
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
    lines = warnings_from(caplog)
    assert sum("retrying in" in line for line in lines) == 1, lines
    assert sum("serving again after" in line for line in lines) == 1, lines
    if isinstance(broker, NatsServer):
        assert sum("nats.bus: NATS bus lost" in line for line in lines) == 1, lines
        assert sum("NATS bus reconnected" in line for line in lines) == 1, lines
    assert not any("connection error" in line for line in lines), lines


class Gated(Echo):
    """``Echo`` whose handler waits for ``gate`` (the test kills the broker meanwhile)."""

    def __init__(self) -> None:
        self.entered, self.gate = threading.Event(), threading.Event()

    def handle(self, event: Event) -> StageOutcome:
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        return super().handle(event)


async def pong_events(bus: EventBus, deadline: float = 60.0) -> list[Event]:
    """The first ``pong`` events an observer sees on ``bus`` within ``deadline``."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            deliveries = await bus.consume("observer", "pong", "o", max_events=50, wait=0.2)
        except BackendError:  # the bus reconnecting after the restart
            await asyncio.sleep(0.1)
            continue
        for d in deliveries:
            await bus.ack(d)
        if deliveries:
            return [d.event for d in deliveries]
    raise AssertionError(f"no pong within {deadline}s")


async def marked_published(executions: ExecutionStore) -> None:
    """Wait until no execution of ``echo`` waits in the outbox."""
    end = time.monotonic() + 10
    while executions.list_unpublished("echo", datetime.now(UTC) + timedelta(seconds=1)):
        assert time.monotonic() < end, "the execution was not marked published"
        await asyncio.sleep(0.05)


async def test_events_recorded_while_the_broker_is_down_are_announced_when_it_is_back_empty(
    server: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The handler finishes while the broker is down; it restarts empty (the delivery and
    # everything else are gone): the recorded events must still reach the next stage.
    caplog.set_level(logging.INFO, logger="gristmill")
    url = f"{server.url}/0"
    bus = RedisStreamsBus(url, namespace="outage", ack_wait=2.0)
    observer = RedisStreamsBus(url, namespace="outage", ack_wait=2.0)
    stage = Gated()
    with SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}") as metadata:
        await bus.open()
        await observer.open()
        stop = asyncio.Event()
        worker = StageWorker(stage, bus, metadata.executions)
        task = asyncio.create_task(worker.run(stop, poll=0.1, relay_every=3600))
        try:
            ping = Event(type="ping", payload={"n": 7})
            await observer.publish([ping])
            assert await asyncio.to_thread(stage.entered.wait, 30), "the handler never ran"
            await asyncio.to_thread(server.kill)
            stage.gate.set()  # the work ends while the broker is down
            await wait_for_line(caplog, "could not announce", 30.0)
            (done,) = metadata.executions.list_executions(ping.correlation_id)
            assert done.status == "succeeded" and done.published_at is None
            await asyncio.to_thread(server.start, empty=True)

            (pong,) = await pong_events(observer)
            assert pong.id == done.outputs[0]["id"] and pong.payload == {"n": 7}
            await wait_for_line(caplog, "announced pong", 30.0)
            await marked_published(metadata.executions)
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
            await bus.close()
            with suppress(BackendError):
                await observer.close()
    lines = warnings_from(caplog)
    assert sum("could not announce pong" in line for line in lines) == 1, lines
    assert any(f"announced pong {pong.id} of execution" in line for line in lines), lines
    assert not task.exception()


async def test_a_worker_started_later_announces_what_an_execution_recorded_but_never_published(
    server: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gristmill")
    url = f"{server.url}/0"
    ping = Event(type="ping", payload={"n": 3})
    pong = ping.caused("pong", {"n": 3})
    ended = datetime.now(UTC) - timedelta(minutes=1)
    lost = StageExecution(  # what a worker that stopped during an outage left behind
        execution_id="exec-lost",
        stage="echo",
        idempotency_key=ping.id,
        status="succeeded",
        started_at=ended,
        finished_at=ended,
        run_id=ping.correlation_id,
        input_event_id=ping.id,
        outputs=[pong.model_dump(mode="json")],
    )
    bus = RedisStreamsBus(url, namespace="outage", ack_wait=2.0)
    observer = RedisStreamsBus(url, namespace="outage", ack_wait=2.0)
    with SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}") as metadata:
        metadata.executions.record_execution(lost)
        await bus.open()
        await observer.open()
        stop = asyncio.Event()
        task = asyncio.create_task(
            StageWorker(Echo(), bus, metadata.executions).run(stop, poll=0.1)
        )
        try:
            (seen,) = await pong_events(observer, deadline=30.0)
            assert seen.id == pong.id and seen.payload == {"n": 3}
            await marked_published(metadata.executions)
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
            await bus.close()
            await observer.close()
    assert any("announced pong" in line and "exec-lost" in line for line in warnings_from(caplog))
