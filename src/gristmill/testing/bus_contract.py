"""The EventBus contract suite: each backend's test class subclasses it to prove the port.

Subclass ``EventBusContract``, set ``__test__ = True``, and implement ``make_bus`` (a fresh,
unopened bus on the test's namespace; every call must reach the same events). A backend whose
``capabilities.cross_process`` is true also implements ``recipe`` so the suite can build the
same bus in a child process and SIGKILL it; ``unreachable_bus`` (optional) lets the suite check
that an unreachable service raises ``BackendUnavailableError``; ``inject_raw`` (optional, but
every backend that stores bytes should give it) lets it check that poison messages are
dead-lettered. Timing-based tests use
``ack_wait`` of 0.5-1 s, so the suite takes ~15 s per backend (plus ~15 s for the leases of
long work, ``gristmill.testing.bus_lease_contract``, which it inherits).
"""

from __future__ import annotations

import abc
import asyncio
import base64
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import pytest

from gristmill.bus.port import DEAD_LETTERED, Delivery, EventBus
from gristmill.core.events import ENVELOPE_VERSION, Event
from gristmill.errors import BackendError, BackendUnavailableError, EnvelopeVersionError
from gristmill.testing.bus_child import BusRecipe
from gristmill.testing.bus_lease_contract import LeaseContract

TYPE = "contract.happened"
GROUP = "contract-group"


def make_event(n: int = 0, *, type: str = TYPE) -> Event:
    """An event whose envelope exercises every field: tz-aware time, nested JSON payload."""
    return Event(
        type=type,
        key=f"key-{n}",
        payload={
            "n": n,
            "ratio": 0.1 + n,
            "text": 'grüße ✓ "quoted"\n',
            "flags": [True, False, None],
            "nested": {"list": [1, [2, {"deep": "x"}]], "empty": {}},
        },
        occurred_at=datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=timezone(timedelta(hours=5))),
        causation_id=f"cause-{n}",
    )


async def collect(
    bus: EventBus,
    count: int,
    *,
    group: str = GROUP,
    type: str = TYPE,
    consumer: str = "c1",
    timeout: float = 5.0,
    batch: int = 1,
) -> list[Delivery]:
    """Consume until ``count`` deliveries arrived or ``timeout`` passed (no acks)."""
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and (remaining := deadline - time.monotonic()) > 0:
        got += await bus.consume(
            group, type, consumer, max_events=min(batch, count - len(got)), wait=remaining
        )
    return got


class EventBusContract(LeaseContract, abc.ABC):
    """The behaviour every ``EventBus`` backend must show; see ``gristmill.bus.port``."""

    __test__ = False

    @abc.abstractmethod
    async def make_bus(self, *, max_attempts: int, ack_wait: float) -> EventBus:
        """A new, unopened bus on this test's namespace."""

    def recipe(self, *, max_attempts: int, ack_wait: float) -> BusRecipe | None:
        """How a child process builds the same bus; required when the bus is cross-process."""
        return None

    def unreachable_bus(self) -> EventBus | None:
        """A bus whose service cannot be reached; ``None`` skips the error-translation test."""
        return None

    async def inject_raw(self, event_type: str, body: bytes) -> None:
        """Store ``body`` as an event of ``event_type`` the way a foreign producer would.

        Raw bytes, written with the driver where ``publish`` would write an envelope; the
        suite calls it while a bus of this test is open. Not implemented (the default), the
        poison-message tests are skipped.
        """
        raise NotImplementedError

    async def injected(self, event_type: str, body: bytes) -> None:
        try:
            await self.inject_raw(event_type, body)
        except NotImplementedError:
            pytest.skip("the backend gives no inject_raw() to write a foreign body")

    @asynccontextmanager
    async def opened(
        self, *, max_attempts: int = 3, ack_wait: float = 30.0
    ) -> AsyncIterator[EventBus]:
        bus = await self.make_bus(max_attempts=max_attempts, ack_wait=ack_wait)
        await bus.open()
        try:
            yield bus
        finally:
            await bus.close()

    # -- publishing and consuming ------------------------------------------------------------

    async def test_consume_returns_the_published_envelope_exactly(self) -> None:
        event = make_event(7)
        async with self.opened() as bus:
            await bus.publish([event])
            [delivery] = await collect(bus, 1)
        assert delivery.event == event
        assert delivery.event.model_dump() == event.model_dump()
        assert delivery.event.occurred_at.utcoffset() == timedelta(hours=5)
        assert (delivery.group, delivery.attempt) == (GROUP, 1)

    async def test_published_events_are_durable_when_publish_returns(self) -> None:
        events = [make_event(n) for n in range(3)]
        async with self.opened() as bus:
            await bus.publish(events)
        async with self.opened() as other:
            got = await collect(other, 3, batch=3)
        assert [d.event for d in got] == events

    async def test_publish_of_many_keeps_order_for_one_consumer(self) -> None:
        first = [make_event(n) for n in range(150)]
        second = [make_event(n) for n in range(150, 200)]
        async with self.opened() as bus:
            await bus.publish(first)
            await bus.publish(second)
            await bus.publish([])
            got = await collect(bus, 200, batch=64)
            for delivery in got:
                await bus.ack(delivery)
        assert [d.event.id for d in got] == [e.id for e in first + second]

    async def test_event_types_are_kept_apart(self) -> None:
        types = ["a.b", "a_b", "a-b.c", "a.b.c", "A b*>", "a~2eb"]
        async with self.opened() as bus:
            await bus.publish([make_event(n, type=t) for n, t in enumerate(types)])
            for n, event_type in enumerate(types):
                got = await collect(bus, 1, type=event_type)
                got += await bus.consume(GROUP, event_type, "c1", max_events=5, wait=0.1)
                assert [(d.event.type, d.event.payload["n"]) for d in got] == [(event_type, n)]

    async def test_max_events_bounds_a_batch(self) -> None:
        async with self.opened() as bus:
            await bus.publish([make_event(n) for n in range(10)])
            got = await bus.consume(GROUP, TYPE, "c1", max_events=4, wait=2.0)
            assert 1 <= len(got) <= 4
            assert [d.event.payload["n"] for d in got] == list(range(len(got)))

    async def test_consume_waits_then_returns_nothing(self) -> None:
        async with self.opened() as bus:
            start = time.monotonic()
            got = await bus.consume(GROUP, TYPE, "c1", max_events=5, wait=0.4)
            elapsed = time.monotonic() - start
        assert got == []
        assert 0.3 <= elapsed < 2.0

    async def test_consume_wakes_when_another_client_publishes(self) -> None:
        async with self.opened() as consumer_bus, self.opened() as publisher_bus:
            await consumer_bus.consume(GROUP, TYPE, "c1", wait=0.01)  # the group exists now

            async def publish_later() -> float:
                await asyncio.sleep(0.3)
                await publisher_bus.publish([make_event()])
                return time.monotonic()

            publishing = asyncio.create_task(publish_later())
            got = await consumer_bus.consume(GROUP, TYPE, "c1", max_events=10, wait=5.0)
            received = time.monotonic()
            published = await publishing
        assert len(got) == 1
        assert received - published < 0.5

    # -- groups and consumers ----------------------------------------------------------------

    async def test_every_group_sees_every_event(self) -> None:
        events = [make_event(n) for n in range(5)]
        async with self.opened() as bus:
            await bus.publish(events)
            for group in ("group-a", "group-b"):
                got = await collect(bus, 5, group=group, batch=5)
                assert [d.event for d in got] == events
                for delivery in got:
                    await bus.ack(delivery)
                    assert delivery.group == group

    async def test_consumers_of_one_group_share_the_work(self) -> None:
        events = [make_event(n) for n in range(40)]
        async with self.opened() as one, self.opened() as two:
            await one.publish(events)
            held = await collect(one, 5, consumer="c1", batch=5)
            others = await collect(two, 5, consumer="c2", batch=5)
            assert {d.event.id for d in held}.isdisjoint(d.event.id for d in others)

            async def drain(bus: EventBus, consumer: str) -> list[Delivery]:
                got: list[Delivery] = []
                while batch := await bus.consume(GROUP, TYPE, consumer, max_events=3, wait=0.5):
                    got += batch
                return got

            rest = await asyncio.gather(drain(one, "c1"), drain(two, "c2"))
        ids = [d.event.id for d in held + others + rest[0] + rest[1]]
        assert len(ids) == len(set(ids)), "an event was leased to two consumers at once"
        assert set(ids) == {e.id for e in events}
        assert {d.attempt for d in held + others + rest[0] + rest[1]} == {1}

    async def test_a_deleted_group_is_forgotten_and_starts_afresh(self) -> None:
        events = [make_event(n) for n in range(3)]
        async with self.opened(ack_wait=30.0) as bus:
            await bus.publish(events)
            for group in ("serve-a", "serve-b"):
                got = await collect(bus, 3, group=group, batch=3)
                await bus.ack(got[0])  # one acked, two leased
                await bus.nack(got[1], delay=60.0)  # nacked with a long delay, for redis
            assert {"serve-a", "serve-b"} <= set(await bus.groups(TYPE))
            await bus.delete_group("serve-a", TYPE)
            await bus.delete_group("serve-a", TYPE)  # idempotent
            await bus.delete_group("never-used", TYPE)
            assert "serve-a" not in await bus.groups(TYPE)
            assert "serve-b" in await bus.groups(TYPE)
            assert await bus.groups("contract.never-published") == []
            # used again, the group starts from the oldest event, with no leases held
            again = await collect(bus, 3, group="serve-a", batch=3)
            assert [d.event.id for d in again] == [e.id for e in events]
            assert {d.attempt for d in again} == {1}
            # the other group kept its place: only its leases, nothing new
            assert await bus.consume("serve-b", TYPE, "c9", max_events=5, wait=0.3) == []

    # -- acks, leases and nacks --------------------------------------------------------------

    async def test_acked_event_is_not_redelivered(self) -> None:
        async with self.opened(ack_wait=1.0) as bus:
            await bus.publish([make_event(1), make_event(2)])
            first, second = await collect(bus, 2, batch=2)
            await bus.ack(first)
            await bus.ack(second)
            await asyncio.sleep(1.2)
            assert await bus.consume(GROUP, TYPE, "c2", max_events=5, wait=0.5) == []
        async with self.opened(ack_wait=1.0) as fresh:
            assert await fresh.consume(GROUP, TYPE, "c3", max_events=5, wait=0.3) == []

    async def test_unacked_delivery_is_redelivered_after_ack_wait(self) -> None:
        event = make_event()
        async with self.opened(ack_wait=1.0) as bus:
            await bus.publish([event])
            [first] = await collect(bus, 1, consumer="dies")
            leased = time.monotonic()
            assert await bus.consume(GROUP, TYPE, "lives", wait=0.5) == []
            [again] = await collect(bus, 1, consumer="lives", timeout=5.0)
            waited = time.monotonic() - leased
        assert (first.attempt, again.attempt) == (1, 2)
        assert again.event == event
        assert 0.9 <= waited < 3.0

    async def test_killed_consumer_process_event_is_redelivered(self) -> None:
        async with self.opened(ack_wait=1.0) as bus:
            if not bus.capabilities.cross_process:
                pytest.skip("the bus does not reach across processes")
            recipe = self.recipe(max_attempts=3, ack_wait=1.0)
            if recipe is None:
                pytest.fail("a cross-process bus must give a recipe() to build it in a child")
            event = make_event()
            await bus.publish([event])
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gristmill.testing.bus_child",
                recipe.to_json(group=GROUP, event_type=TYPE),
                stdout=asyncio.subprocess.PIPE,
            )
            try:
                assert child.stdout is not None
                line = await asyncio.wait_for(child.stdout.readline(), 30.0)
            finally:
                child.send_signal(signal.SIGKILL)
                await child.wait()
            assert json.loads(line) == {"id": event.id, "attempt": 1}
            [again] = await collect(bus, 1, consumer="survivor", timeout=5.0)
        assert (again.event, again.attempt) == (event, 2)

    async def test_nack_redelivers_at_once_with_next_attempt(self) -> None:
        event = make_event()
        async with self.opened() as bus:
            await bus.publish([event])
            [first] = await collect(bus, 1)
            await bus.nack(first, error="try again")
            start = time.monotonic()
            [second] = await collect(bus, 1, consumer="c2", timeout=3.0)
            assert time.monotonic() - start < 1.0
            await bus.ack(second)
        assert (second.event, second.attempt) == (event, 2)

    async def test_nack_delay_is_respected(self) -> None:
        async with self.opened(ack_wait=1.0) as bus:
            await bus.publish([make_event()])
            [first] = await collect(bus, 1)
            await bus.nack(first, delay=0.6)
            nacked = time.monotonic()
            assert await bus.consume(GROUP, TYPE, "c1", wait=0.3) == []
            [second] = await collect(bus, 1, timeout=3.0)
            waited = time.monotonic() - nacked
        assert second.attempt == 2
        assert 0.55 <= waited < 2.0

    async def test_nack_delay_longer_than_ack_wait_is_respected(self) -> None:
        async with self.opened(ack_wait=0.5) as bus:
            await bus.publish([make_event()])
            [first] = await collect(bus, 1)
            await bus.nack(first, delay=1.5)
            nacked = time.monotonic()
            assert await bus.consume(GROUP, TYPE, "c1", wait=1.1) == []
            [second] = await collect(bus, 1, timeout=3.0)
            waited = time.monotonic() - nacked
        assert second.attempt == 2
        assert 1.45 <= waited < 3.0

    # -- dead letters ------------------------------------------------------------------------

    async def assert_dead_lettered(
        self, bus: EventBus, original: Event, error: str | None
    ) -> Event:
        [letter] = await collect(bus, 1, group="audit", type=DEAD_LETTERED, timeout=3.0)
        payload = dict(letter.event.payload)
        if error is None:
            assert isinstance(payload.pop("error"), str)
        else:
            assert payload.pop("error") == error
        assert payload == {"group": GROUP, "attempts": 2, "event": original.model_dump(mode="json")}
        assert Event.model_validate(letter.event.payload["event"]) == original
        assert (letter.event.type, letter.event.key) == (DEAD_LETTERED, original.type)
        assert letter.event.causation_id == original.id
        assert letter.event.correlation_id == original.correlation_id
        await bus.ack(letter)
        return letter.event

    async def test_nack_on_the_last_attempt_dead_letters(self) -> None:
        event = make_event()
        async with self.opened(max_attempts=2, ack_wait=1.0) as bus:
            await bus.publish([event])
            [first] = await collect(bus, 1)
            await bus.nack(first, error="first failure")
            [second] = await collect(bus, 1)
            assert second.attempt == 2
            await bus.nack(second, error="boom")
            await self.assert_dead_lettered(bus, event, "boom")
            assert await bus.consume(GROUP, TYPE, "c1", wait=1.5) == []
            assert await bus.consume("audit", DEAD_LETTERED, "c1", wait=0.1) == []
            [elsewhere] = await collect(bus, 1, group="other-group")
        assert (elsewhere.event, elsewhere.attempt) == (event, 1)

    async def test_expired_leases_over_budget_dead_letter(self) -> None:
        event = make_event()
        async with self.opened(max_attempts=2, ack_wait=0.5) as bus:
            await bus.publish([event])
            [first] = await collect(bus, 1)
            [second] = await collect(bus, 1, timeout=3.0)
            assert (first.attempt, second.attempt) == (1, 2)
            assert await bus.consume(GROUP, TYPE, "c1", wait=1.5) == []
            await self.assert_dead_lettered(bus, event, None)
            assert await bus.consume(GROUP, TYPE, "c1", wait=0.7) == []
            assert await bus.consume("audit", DEAD_LETTERED, "c1", wait=0.1) == [], "buried twice"

    # -- poison messages ---------------------------------------------------------------------

    async def assert_undecodable(self, bus: EventBus, body: bytes, encoding: str) -> str:
        """The one dead letter for ``body`` met by ``GROUP``; returns its ``error``."""
        [letter] = await collect(bus, 1, group="audit", type=DEAD_LETTERED, timeout=3.0)
        payload = dict(letter.event.payload)
        error = payload.pop("error")
        shown = body.decode() if encoding == "utf-8" else base64.b64encode(body).decode()
        assert payload == {"group": GROUP, "attempts": 1, "body": shown, "body_encoding": encoding}
        assert (letter.event.type, letter.event.key) == (DEAD_LETTERED, "undecodable")
        assert isinstance(error, str)
        assert TYPE in error, "the error must say what failed to decode"
        await bus.ack(letter)
        return error

    async def assert_poison_buried(self, bus: EventBus, body: bytes, encoding: str) -> str:
        """Consume ``GROUP`` past the poison ``body``; it is buried once, never handed out."""
        error = await self.assert_undecodable(bus, body, encoding)
        await asyncio.sleep(bus.ack_wait)  # a poison message left leased would come back now
        assert await bus.consume(GROUP, TYPE, "c2", max_events=5, wait=0.5) == []
        assert await bus.consume("audit", DEAD_LETTERED, "c1", wait=0.1) == [], "buried twice"
        return error

    async def test_undecodable_body_is_dead_lettered_at_once(self) -> None:
        before, after = make_event(1), make_event(2)
        body = b"\xff\xfe not JSON, not UTF-8 \x00"
        async with self.opened(max_attempts=3, ack_wait=0.5) as bus:
            await bus.publish([before])
            await self.injected(TYPE, body)
            await bus.publish([after])
            got = await bus.consume(GROUP, TYPE, "c1", max_events=5, wait=3.0)
            got += await collect(bus, 2 - len(got), batch=5)
            assert [(d.event, d.attempt) for d in got] == [(before, 1), (after, 1)]
            for delivery in got:
                await bus.ack(delivery)
            await self.assert_poison_buried(bus, body, "base64")

    async def test_newer_envelope_version_is_dead_lettered_at_once(self) -> None:
        newer = ENVELOPE_VERSION + 1
        body = json.dumps(make_event(1).model_dump(mode="json") | {"schema_version": newer})
        after = make_event(2)
        async with self.opened(max_attempts=3, ack_wait=0.5) as bus:
            await self.injected(TYPE, body.encode())
            await bus.publish([after])
            got = await collect(bus, 1, batch=5)
            got += await bus.consume(GROUP, TYPE, "c1", max_events=5, wait=0.1)
            assert [(d.event, d.attempt) for d in got] == [(after, 1)]
            await bus.ack(got[0])
            error = await self.assert_poison_buried(bus, body.encode(), "utf-8")
        assert str(EnvelopeVersionError(newer, ENVELOPE_VERSION)) in error

    # -- lifecycle ---------------------------------------------------------------------------

    async def test_open_and_close_are_idempotent(self) -> None:
        bus = await self.make_bus(max_attempts=3, ack_wait=30.0)
        await bus.open()
        await bus.open()
        await bus.publish([make_event()])
        assert len(await bus.consume(GROUP, TYPE, "c1", wait=2.0)) == 1
        await bus.close()
        await bus.close()

    async def test_use_before_open_raises_backend_error(self) -> None:
        bus = await self.make_bus(max_attempts=3, ack_wait=30.0)
        with pytest.raises(BackendError):
            await bus.publish([make_event()])
        with pytest.raises(BackendError):
            await bus.consume(GROUP, TYPE, "c1", wait=0.1)

    async def test_unreachable_service_raises_backend_unavailable(self) -> None:
        bus = self.unreachable_bus()
        if bus is None:
            pytest.skip("the backend gives no unreachable_bus() to try")
        with pytest.raises(BackendUnavailableError) as raised:
            await bus.open()
        assert raised.value.__cause__ is not None, "the driver's exception must be chained"
        await bus.close()

    async def test_declares_its_settings(self) -> None:
        bus = await self.make_bus(max_attempts=4, ack_wait=12.5)
        assert (bus.max_attempts, bus.ack_wait) == (4, 12.5)
        assert isinstance(bus, EventBus)
