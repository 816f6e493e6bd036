"""An EventBus on Redis Streams: one stream per event type, one Redis group per consumer group."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from gristmill.backends.deadletter import dead_letter, lease_expired, over_budget, undecodable
from gristmill.bus.port import DEAD_LETTERED, BusCapabilities, Delivery
from gristmill.core.events import Event
from gristmill.core.urls import mask_url
from gristmill.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    MissingExtraError,
)

try:
    import redis.asyncio as aioredis
    from redis import exceptions as redis_errors
    from redis.asyncio.client import Pipeline
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingExtraError(
        "the Redis bus needs the redis driver: pip install 'gristmill[redis]'"
    ) from exc

_log = logging.getLogger(__name__)
_NAMESPACE = re.compile(r"[A-Za-z0-9_.-]+")
_FIELD = b"e"  # the one stream-entry field: the envelope's bytes

# Expired leases are looked for at most this often (seconds) per stream and group; this bounds
# how late a redelivery can be, at the cost of one XAUTOCLAIM per interval.
_RECLAIM_EVERY = 0.1

# Seconds a connect or a reply may take before the server is called unreachable.
_SOCKET_TIMEOUT = 5.0

# Nack, atomically and only while the caller still holds the lease (the delivery count still
# equals its attempt). Dead-letter (ARGV[7] is the letter) or make the entry claimable again
# after the delay: XCLAIM ... IDLE backdates it so XAUTOCLAIM picks it up ``delay`` seconds
# from now, RETRYCOUNT keeps the delivery count. Redis caps IDLE at "now", so a delay longer
# than ack_wait also stores a not-before time (ARGV[5]) that reclaiming honours.
_NACK = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][4] ~= tonumber(ARGV[3]) then return 0 end
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[3], '*', 'e', ARGV[7])
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
redis.call('XCLAIM', KEYS[1], ARGV[1], pending[1][2], 0, ARGV[2],
           'IDLE', ARGV[4], 'RETRYCOUNT', ARGV[3], 'JUSTID')
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], ARGV[6], ARGV[5]) end
return 1
"""

# Extend a lease, atomically and only while the caller still holds it (as for a nack): reset
# the entry's idle time, so XAUTOCLAIM leaves it alone for another ack_wait. RETRYCOUNT keeps
# the delivery count, so extending is not a delivery; the owner stays the same consumer.
_EXTEND = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][4] ~= tonumber(ARGV[3]) then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], pending[1][2], 0, ARGV[2],
           'IDLE', 0, 'RETRYCOUNT', ARGV[3], 'JUSTID')
return 1
"""


class RedisStreamsBus:
    """An EventBus on Redis Streams (Redis ≥ 6.2).

    Each event type is a stream ``gristmill:{<namespace>}:events:<type>``; each consumer group
    a Redis consumer group created at id 0, so it sees every retained event. ``attempt`` is
    Redis's own delivery count of the pending entry. Publishing is one MULTI/EXEC round trip;
    it is as durable as the server's persistence settings (use AOF ``appendfsync always`` or
    ``everysec`` where events must survive a Redis restart). The ``{namespace}`` hash tag keeps
    all keys of a namespace in one cluster slot.

    A server that restarts is reconnected to (commands retry on a fresh connection; past
    that they raise ``BackendUnavailableError`` and the worker retries with back-off). One
    that restarts *empty* has lost the groups: ``consume`` meets ``NOGROUP``, creates the
    group again and goes on; an ack or nack of an entry the server lost does nothing.
    """

    capabilities = BusCapabilities(cross_process=True, native_batching=True)

    def __init__(
        self, url: str, *, namespace: str, max_attempts: int = 5, ack_wait: float = 30.0
    ) -> None:
        if not _NAMESPACE.fullmatch(namespace):
            raise ConfigError(
                f"Redis bus namespace {namespace!r} is invalid; use letters, digits, '_.-'"
            )
        self.url = url
        self.namespace = namespace
        self.max_attempts = max_attempts
        self.ack_wait = ack_wait
        self._prefix = f"gristmill:{{{namespace}}}:"
        self._client: aioredis.Redis | None = None
        self._groups: set[tuple[str, str]] = set()
        self._next_reclaim: dict[tuple[str, str], float] = {}
        self._reclaim_from: dict[tuple[str, str], bytes] = {}
        self._acks: dict[tuple[str, str], list[bytes]] = {}
        self._flushing: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"RedisStreamsBus({mask_url(self.url)!r}, namespace={self.namespace!r})"

    async def open(self) -> None:
        if self._client is not None:
            return
        # A restarted server leaves pooled connections stale: retry a command a few times
        # on a fresh connection before calling the server unreachable. (A retried XADD can
        # duplicate an event; delivery is at-least-once and handlers idempotent anyway.)
        # A server that hangs times out instead, unretried, so a worker's stop is honoured;
        # no command blocks for long (XREADGROUP blocks ~_RECLAIM_EVERY at a time).
        client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=_SOCKET_TIMEOUT,
            socket_timeout=_SOCKET_TIMEOUT,
            retry=Retry(
                ExponentialBackoff(cap=1.0, base=0.05),
                3,
                supported_errors=(redis_errors.ConnectionError,),
            ),
            retry_on_error=[redis_errors.ConnectionError],
        )
        with self._translated():
            try:
                await client.ping()
            except BaseException:
                await client.aclose()
                raise
        self._client = client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            if self._flushing is not None:
                await asyncio.gather(self._flushing, return_exceptions=True)
            await client.aclose()
        self._groups.clear()

    async def purge(self) -> None:
        """Delete every key of this namespace: streams, groups, pending entries."""
        with self._translated():
            keys = [key async for key in self._redis.scan_iter(match=self._prefix + "*")]
            if keys:
                await self._redis.delete(*keys)
        self._groups.clear()

    async def groups(self, event_type: str) -> list[str]:
        with self._translated():
            try:
                found = await self._redis.xinfo_groups(self._stream(event_type))
            except redis_errors.ResponseError as exc:
                if "no such key" in str(exc).lower():
                    return []
                raise
        names = [g["name"] for g in found]
        return sorted(n.decode() if isinstance(n, bytes) else str(n) for n in names)

    async def delete_group(self, group: str, event_type: str) -> None:
        stream = self._stream(event_type)
        prefix = group.encode() + b"\x00"
        with self._translated():
            if await self._redis.exists(stream):
                await self._redis.xgroup_destroy(stream, group)  # 0 when there is none
            delays = self._delays(stream)  # delays of the group's nacked entries go too
            fields = [f async for f, _ in self._redis.hscan_iter(delays)]
            mine = [f for f in fields if isinstance(f, bytes) and f.startswith(prefix)]
            if mine:
                await self._redis.hdel(delays, *mine)
        self._forget(stream, group)

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        with self._translated():
            async with self._redis.pipeline(transaction=True) as pipe:
                for event in events:
                    pipe.xadd(self._stream(event.type), {_FIELD: event.to_bytes()})
                await pipe.execute()

    async def consume(
        self,
        group: str,
        event_type: str,
        consumer: str,
        *,
        max_events: int = 1,
        wait: float = 1.0,
    ) -> list[Delivery]:
        stream = self._stream(event_type)
        deadline = time.monotonic() + wait
        with self._translated():
            try:
                return await self._consume(stream, group, consumer, max_events, deadline)
            except redis_errors.ResponseError as exc:
                if not _lost_group(exc):
                    raise
                # The server restarted empty (or the stream was deleted): the group is gone.
                _log.warning(
                    "%r: consumer group %r of %s is gone; creating it again", self, group, stream
                )
                self._forget(stream, group)
                return await self._consume(stream, group, consumer, max_events, deadline)

    async def _consume(
        self, stream: str, group: str, consumer: str, max_events: int, deadline: float
    ) -> list[Delivery]:
        await self._ensure_group(stream, group)
        while True:
            got = await self._reclaim(stream, group, consumer, max_events)
            if len(got) < max_events:
                got += await self._read(stream, group, consumer, max_events - len(got), None)
            now = time.monotonic()
            if got or now >= deadline:
                return got
            # Block for new entries, but not past the next look for expired leases.
            next_reclaim = self._next_reclaim.get((stream, group), now)
            block = min(deadline, max(next_reclaim, now + 0.001), now + _SOCKET_TIMEOUT / 2) - now
            got = await self._read(stream, group, consumer, max_events, max(1, _ms(block)))
            if got:
                return got

    async def ack(self, delivery: Delivery) -> None:
        stream, entry_id = delivery.receipt
        self._acks.setdefault((stream, delivery.group), []).append(entry_id)
        if self._flushing is None:
            self._flushing = asyncio.ensure_future(self._flush_acks())
        await asyncio.shield(self._flushing)

    async def nack(self, delivery: Delivery, *, error: str = "", delay: float = 0.0) -> None:
        stream, entry_id = delivery.receipt
        letter = b""
        if delivery.attempt >= self.max_attempts:
            letter = dead_letter(
                delivery.event, group=delivery.group, attempts=delivery.attempt, error=error
            ).to_bytes()
        not_before = b"" if delay <= self.ack_wait else str(_ms(time.time() + delay)).encode()
        with self._translated(), _unless_lost(delivery):
            await self._redis.eval(
                _NACK,
                3,
                stream,
                self._delays(stream),
                self._stream(DEAD_LETTERED),
                delivery.group,
                entry_id,
                delivery.attempt,
                max(0, _ms(self.ack_wait - delay)),
                not_before,
                _delay_field(delivery.group, entry_id),
                letter,
            )
        # Look for it again when it is due, not at the next regular interval.
        key = (stream, delivery.group)
        due = time.monotonic() + delay
        self._next_reclaim[key] = min(self._next_reclaim.get(key, due), due)
        self._reclaim_from[key] = b"0-0"

    async def extend(self, delivery: Delivery) -> None:
        stream, entry_id = delivery.receipt
        with self._translated():
            await self._redis.eval(_EXTEND, 1, stream, delivery.group, entry_id, delivery.attempt)

    # -- internals ---------------------------------------------------------------------------

    @property
    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise BackendError(f"{self!r} is not open; await bus.open() first")
        return self._client

    def _stream(self, event_type: str) -> str:
        return f"{self._prefix}events:{event_type}"

    def _event_type(self, stream: str) -> str:
        return stream.removeprefix(self._prefix + "events:")

    def _delays(self, stream: str) -> str:
        return self._prefix + "delays:" + self._event_type(stream)

    def _forget(self, stream: str, group: str) -> None:
        """Forget what this bus knew of a group the server lost, so it is created again."""
        key = (stream, group)
        self._groups.discard(key)
        self._next_reclaim.pop(key, None)
        self._reclaim_from.pop(key, None)

    async def _ensure_group(self, stream: str, group: str) -> None:
        if (stream, group) in self._groups:
            return
        try:
            await self._redis.xgroup_create(stream, group, id="0", mkstream=True)
        except redis_errors.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise
        self._groups.add((stream, group))

    async def _read(
        self, stream: str, group: str, consumer: str, count: int, block: int | None
    ) -> list[Delivery]:
        # RESP2 reply: [[stream, [(id, {field: value})...]]]
        reply: Any = await self._redis.xreadgroup(
            group, consumer, {stream: ">"}, count=count, block=block
        )
        if not reply:
            return []
        [[_, entries]] = reply
        got: list[Delivery] = []
        async with self._redis.pipeline(transaction=True) as pipe:
            for entry_id, values in entries:
                if (event := self._decode(pipe, stream, group, entry_id, values, 1)) is not None:
                    got.append(Delivery(event, group, 1, (stream, entry_id)))
            await pipe.execute()  # no round trip unless a burial was queued
        return got

    async def _reclaim(self, stream: str, group: str, consumer: str, count: int) -> list[Delivery]:
        """Take over entries whose lease expired; dead-letter those over budget."""
        key, now = (stream, group), time.monotonic()
        if now < self._next_reclaim.get(key, 0.0):
            return []
        self._next_reclaim[key] = now + _RECLAIM_EVERY
        start = self._reclaim_from.get(key, b"0-0")
        cursor, entries, *_ = await self._redis.xautoclaim(
            stream, group, consumer, _ms(self.ack_wait), start, count
        )
        self._reclaim_from[key] = cursor
        if not entries:
            return []
        fields = [_delay_field(group, entry_id) for entry_id, _ in entries]
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id, _ in entries:
                pipe.xpending_range(stream, group, entry_id, entry_id, 1)
            pipe.hmget(self._delays(stream), fields)
            *pending, not_before = await pipe.execute()
        got: list[Delivery] = []
        async with self._redis.pipeline(transaction=True) as pipe:
            for (entry_id, values), info, due, field in zip(
                entries, pending, not_before, fields, strict=True
            ):
                if not info:  # acked meanwhile
                    continue
                attempt = int(info[0]["times_delivered"])
                if due is not None and int(due) > _ms(time.time()):
                    # Nacked with a delay longer than ack_wait: hide it again, count unchanged.
                    idle = max(0, _ms(self.ack_wait) - (int(due) - _ms(time.time())))
                    pipe.xclaim(
                        stream,
                        group,
                        consumer,
                        0,
                        [entry_id],
                        idle=idle,
                        retrycount=attempt - 1,
                        justid=True,
                    )
                    continue
                if due is not None:
                    pipe.hdel(self._delays(stream), field)
                if attempt <= self.max_attempts:
                    event = self._decode(pipe, stream, group, entry_id, values, attempt)
                    if event is not None:
                        got.append(Delivery(event, group, attempt, (stream, entry_id)))
                    continue
                letter = over_budget(
                    _body(values),
                    event_type=self._event_type(stream),
                    group=group,
                    attempts=attempt - 1,
                    error=lease_expired(self.ack_wait),
                )
                self._bury(pipe, stream, group, entry_id, letter)
            await pipe.execute()
        return got

    def _decode(
        self, pipe: Pipeline, stream: str, group: str, entry_id: Any, values: Any, attempt: int
    ) -> Event | None:
        """The entry's event; if it holds none, queue its burial as undecodable on ``pipe``."""
        body = _body(values)
        try:
            return Event.from_bytes(body)
        except ValueError as exc:
            event_type = self._event_type(stream)
            letter = undecodable(body, exc, event_type=event_type, group=group, attempts=attempt)
        self._bury(pipe, stream, group, entry_id, letter)
        return None

    def _bury(self, pipe: Pipeline, stream: str, group: str, entry_id: Any, letter: Event) -> None:
        """Queue on ``pipe``: publish the dead letter, and end the entry's delivery to ``group``."""
        pipe.xadd(self._stream(DEAD_LETTERED), {_FIELD: letter.to_bytes()})
        pipe.xack(stream, group, entry_id)

    async def _flush_acks(self) -> None:
        await asyncio.sleep(0)  # let acks issued in the same loop turn join this round trip
        acks, self._acks, self._flushing = self._acks, {}, None
        with self._translated():
            async with self._redis.pipeline(transaction=False) as pipe:
                for (stream, group), entry_ids in acks.items():
                    pipe.xack(stream, group, *entry_ids)
                await pipe.execute()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except (redis_errors.ConnectionError, redis_errors.TimeoutError) as exc:
            raise BackendUnavailableError(
                f"Redis bus cannot reach {mask_url(self.url)}: {exc}; is the server running?"
            ) from exc
        except redis_errors.RedisError as exc:
            raise BackendError(f"Redis bus at {mask_url(self.url)} failed: {exc}") from exc


def _lost_group(exc: redis_errors.ResponseError) -> bool:
    """Whether the server answered that the stream or its group does not exist."""
    return "NOGROUP" in str(exc)


@contextmanager
def _unless_lost(delivery: Delivery) -> Iterator[None]:
    """Settling a delivery whose entry the server lost (it restarted empty) does nothing."""
    try:
        yield
    except redis_errors.ResponseError as exc:
        if not _lost_group(exc):
            raise
        _log.warning(
            "event %s of group %r is no longer on the server (restarted empty?); not nacked",
            delivery.event.id,
            delivery.group,
        )


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _body(values: dict[bytes, bytes] | None) -> bytes:
    # An entry another producer wrote without our field (or a deleted one, which Redis 6.2
    # still lists) has no envelope: it reads as empty, so it is dead-lettered as undecodable.
    return (values or {}).get(_FIELD, b"")


def _delay_field(group: str, entry_id: Any) -> bytes:
    entry = entry_id if isinstance(entry_id, bytes) else str(entry_id).encode()
    return group.encode() + b"\x00" + entry
