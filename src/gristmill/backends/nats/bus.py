"""An EventBus on NATS JetStream: one stream per namespace, one pull consumer per group and type."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

from gristmill.backends.deadletter import dead_letter, lease_expired, over_budget, undecodable
from gristmill.backends.nats.pull import Puller
from gristmill.bus.port import BusCapabilities, Delivery
from gristmill.core.events import Event
from gristmill.core.outages import OutageLog
from gristmill.core.urls import mask_url
from gristmill.errors import BackendError, BackendUnavailableError, MissingExtraError

try:
    import nats
    import nats.errors
    import nats.js.errors
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext, api
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingExtraError(
        "the NATS bus needs the nats-py driver: pip install 'gristmill[nats]'"
    ) from exc

_log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 128  # longer durable names are shortened with a digest

_UNAVAILABLE = (
    OSError,
    nats.errors.NoServersError,
    nats.errors.ConnectionClosedError,
    nats.errors.StaleConnectionError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.TimeoutError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
)

# What the client reports when the connection drops (the disconnect that follows says so).
_CONNECTION_LOST = (
    OSError,
    nats.errors.UnexpectedEOF,
    nats.errors.StaleConnectionError,
    nats.errors.ConnectionClosedError,
)

# How long ``open`` tries to reach the server, and ``publish`` waits for the server's acks:
# past these the call raises ``BackendUnavailableError`` (and a worker retries with back-off)
# rather than waiting on a server that is down, so a stop signal is always honoured.
_CONNECT_WITHIN = 5.0
_ACKS_WITHIN = 5.0


def token(text: str) -> str:
    """``text`` as one subject token and a valid stream/consumer name, reversibly.

    Letters, digits, ``_`` and ``-`` stay; every other UTF-8 byte becomes ``~XX`` (hex), so
    ``raw.ingested`` is ``raw~2eingested`` and no two texts share a token.
    """
    return _UNSAFE.sub(lambda m: "".join(f"~{b:02x}" for b in m.group().encode()), text)


class NatsJetStreamBus:
    """An EventBus on NATS JetStream (server ≥ 2.9).

    The namespace is one file-backed stream ``gristmill-<ns>`` with subjects ``<ns>.<type>``
    (both encoded by ``token``). A group's events of one type are a durable pull consumer
    ``<group>~~<type>`` with explicit acks and the bus's ``ack_wait``; its settings are
    updated to this bus's on first use. ``attempt`` is JetStream's ``num_delivered``; a nack
    is a NAK with the delay; the dead-letter rule is ours (the server redelivers without
    limit) and ends with a TERM. ``publish`` returns when the server has acknowledged every
    message (stored in the stream; fsynced per the server's ``sync_interval``). Acks and naks
    are fire-and-forget messages, pipelined with everything else; ``close`` flushes them.

    A lost connection is re-established without a give-up (the client reconnects every
    second for as long as it takes); meanwhile every call raises ``BackendUnavailableError``
    at once instead of waiting. The loss is logged once and the reconnection once (the
    failed attempts in between only at DEBUG: the calls that fail say so to their callers);
    closing the bus logs nothing. After a reconnect, or any failed call, the stream and the
    consumers are declared again before use, so a server that came back *empty* is set up
    anew; a client the server closed is replaced by a new one.
    """

    capabilities = BusCapabilities(cross_process=True, native_batching=True)

    def __init__(
        self, url: str, *, namespace: str, max_attempts: int = 5, ack_wait: float = 30.0
    ) -> None:
        self.url = url
        self.namespace = namespace
        self.max_attempts = max_attempts
        self.ack_wait = ack_wait
        self.stream = f"gristmill-{token(namespace)}"
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._pullers: dict[tuple[str, str, str], Puller] = {}
        self._stale = False  # the server may have lost the stream or consumers: declare again
        self._declared = False  # the stream was there (or made) once: missing later = lost
        self._outage = OutageLog()

    def __repr__(self) -> str:
        return f"NatsJetStreamBus({mask_url(self.url)!r}, namespace={self.namespace!r})"

    def _subject(self, event_type: str) -> str:
        return f"{token(self.namespace)}.{token(event_type)}"

    async def open(self) -> None:
        if self._nc is not None:
            return
        with self._translated():
            await self._connect()

    async def _connect(self) -> None:
        nc = Client()

        # Callbacks of this client (not of whichever client the bus holds by then).
        async def disconnected() -> None:
            await self._disconnected(nc)

        async def error(exc: Exception) -> None:
            await self._connection_error(nc, exc)

        try:
            await asyncio.wait_for(
                nc.connect(
                    self.url,
                    connect_timeout=2,
                    reconnect_time_wait=1,
                    max_reconnect_attempts=-1,  # never give up: the server may be down for long
                    ping_interval=5,  # notice a server gone silent within ~15 s
                    max_outstanding_pings=3,
                    error_cb=error,
                    disconnected_cb=disconnected,
                    reconnected_cb=self._reconnected,
                ),
                _CONNECT_WITHIN,
            )
            js = nc.jetstream()
            await self._ensure_stream(js)
        except BaseException:
            await nc.close()
            raise
        self._nc, self._js, self._stale = nc, js, False
        self._pullers.clear()

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        self._pullers.clear()
        if nc is None or nc.is_closed:
            return
        try:
            if nc.is_connected:  # (no server to flush to during an outage)
                await nc.flush(timeout=2)  # acks and naks are fire-and-forget until here
        except (nats.errors.Error, OSError) as exc:
            # Closing must not hang on, or fail for, a server that is away: what it did not
            # confirm is redelivered after its lease.
            _log.warning("%r closed without confirming its last acks: %r", self, exc)
        finally:
            with self._translated():
                await nc.close()

    async def purge(self) -> None:
        """Delete this namespace's stream and with it every consumer and event."""
        with self._translated(), suppress(nats.js.errors.NotFoundError):
            await self._jetstream.delete_stream(self.stream)
        self._pullers.clear()
        self._declared = False  # deleted on purpose: made again without a warning

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        with self._translated():
            js = await self._live()
            # Pipelined: all messages are written in order, then their acks are awaited.
            acks = [
                await js.publish_async(self._subject(e.type), e.to_bytes(), stream=self.stream)
                for e in events
            ]
            # Bounded: a connection lost meanwhile would leave these futures pending forever.
            await asyncio.wait_for(asyncio.gather(*acks), _ACKS_WITHIN)

    async def consume(
        self,
        group: str,
        event_type: str,
        consumer: str,
        *,
        max_events: int = 1,
        wait: float = 1.0,
    ) -> list[Delivery]:
        deadline = time.monotonic() + wait
        with self._translated():
            puller = await self._puller(group, event_type, consumer)
            while True:
                messages = await puller.pull(max_events, deadline - time.monotonic())
                got = await self._deliveries(group, event_type, messages)
                if got or time.monotonic() >= deadline:
                    return got

    async def ack(self, delivery: Delivery) -> None:
        message: Msg = delivery.receipt
        with self._translated():
            await message.ack()

    async def nack(self, delivery: Delivery, *, error: str = "", delay: float = 0.0) -> None:
        message: Msg = delivery.receipt
        with self._translated():
            if delivery.attempt >= self.max_attempts:
                letter = dead_letter(
                    delivery.event, group=delivery.group, attempts=delivery.attempt, error=error
                )
                await self._bury(message, letter)
            else:
                await message.nak(delay=delay or None)

    async def extend(self, delivery: Delivery) -> None:
        message: Msg = delivery.receipt
        with self._translated():
            await message.in_progress()  # +WPI: the server restarts the ack_wait timer

    # -- internals ---------------------------------------------------------------------------

    @property
    def _connection(self) -> Client:
        if self._nc is None:
            raise BackendError(f"{self!r} is not open; await bus.open() first")
        return self._nc

    async def _live(self) -> JetStreamContext:
        """The JetStream context, ready for use: the client replaced if the server closed it,
        ``BackendUnavailableError`` at once while it reconnects, the stream (and, lazily, the
        consumers) declared again if the server may have lost them."""
        if self._connection.is_closed:
            await self._connect()
        if not self._connection.is_connected:
            raise BackendUnavailableError(
                f"NATS bus lost {mask_url(self.url)}; reconnecting (is nats-server running?)"
            )
        js = self._jetstream
        if self._stale:
            await self._ensure_stream(js)
            pullers, self._pullers = list(self._pullers.values()), {}
            for puller in pullers:
                with suppress(nats.errors.Error):
                    await puller.inbox.unsubscribe()
            self._stale = False
        return js

    async def _disconnected(self, nc: Client) -> None:
        if nc.is_closed:  # closed on purpose (``close``, a failed ``open``): nothing was lost
            return
        if self._outage.failed() == "started":
            _log.warning("NATS bus lost %s; reconnecting every second", mask_url(self.url))

    async def _reconnected(self) -> None:
        lasted = self._outage.recovered()
        after = f" after {lasted:.0f}s" if lasted is not None else ""
        _log.warning("NATS bus reconnected to %s%s", mask_url(self.url), after)
        self._stale = True  # a server that restarted empty has no stream or consumers

    async def _connection_error(self, nc: Client, exc: Exception) -> None:
        """A failed reconnect attempt, or the loss itself, is told by ``_disconnected`` and
        the calls that fail meanwhile; only other errors (a permission refused, a slow
        consumer) are worth a warning of their own."""
        if self._outage.on or nc.is_closed or isinstance(exc, _CONNECTION_LOST):
            _log.debug("NATS bus connection error: %r", exc)
        else:
            _log.warning("NATS bus connection error: %r", exc)

    @property
    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise BackendError(f"{self!r} is not open; await bus.open() first")
        return self._js

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        """Declare the stream; one that this bus saw before and that is gone now (a server
        restarted without its store) is said once, as a warning, before it is made again."""
        if self._declared:
            try:
                await js.stream_info(self.stream)
            except nats.js.errors.NotFoundError:
                _log.warning(
                    "NATS stream %s was lost (did the server restart without its data?); "
                    "creating it again: events announced before the loss and not yet "
                    "handled may be gone — queue their work again",
                    self.stream,
                )
        config = api.StreamConfig(
            name=self.stream,
            subjects=[f"{token(self.namespace)}.*"],
            storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS,
        )
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != 10058:  # exists with other settings: keep those
                raise
        self._declared = True

    async def groups(self, event_type: str) -> list[str]:
        subject = self._subject(event_type)
        with self._translated():
            js = await self._live()
            found = await js.consumers_info(self.stream)
        names = []
        for info in found:
            config = info.config
            if config.filter_subject != subject:
                continue
            # the group's own name is the description (consumers made before: the durable's)
            name = config.description or (config.durable_name or "").rsplit("~~", 1)[0]
            names.append(name)
        return sorted(names)

    async def delete_group(self, group: str, event_type: str) -> None:
        durable = _durable_name(group, event_type)
        with self._translated():
            js = await self._live()
            with suppress(nats.js.errors.NotFoundError):
                await js.delete_consumer(self.stream, durable)
        for key in [k for k in self._pullers if k[:2] == (group, event_type)]:
            puller = self._pullers.pop(key)
            with suppress(nats.errors.Error):
                await puller.inbox.unsubscribe()

    async def _puller(self, group: str, event_type: str, consumer: str) -> Puller:
        key = (group, event_type, consumer)
        js = await self._live()
        if key not in self._pullers:
            durable = _durable_name(group, event_type)
            config = api.ConsumerConfig(
                name=durable,
                durable_name=durable,
                description=group,
                deliver_policy=api.DeliverPolicy.ALL,
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_deliver=-1,
                filter_subject=self._subject(event_type),
            )
            await js.add_consumer(self.stream, config)  # create, or update to ours
            nc = self._connection
            self._pullers[key] = Puller(
                nc,
                await nc.subscribe(nc.new_inbox()),
                f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{durable}",
            )
        return self._pullers[key]

    async def _deliveries(self, group: str, event_type: str, messages: list[Msg]) -> list[Delivery]:
        """Deliveries of ``messages``; dead-letter those over budget or with no event in them."""
        got, burials = [], []
        for message in messages:
            attempt = message.metadata.num_delivered or 1
            if attempt > self.max_attempts:
                letter = over_budget(
                    message.data,
                    event_type=event_type,
                    group=group,
                    attempts=attempt - 1,
                    error=lease_expired(self.ack_wait),
                )
                burials.append(self._bury(message, letter))
                continue
            try:
                event = Event.from_bytes(message.data)
            except ValueError as exc:
                letter = undecodable(
                    message.data, exc, event_type=event_type, group=group, attempts=attempt
                )
                burials.append(self._bury(message, letter))
            else:
                got.append(Delivery(event, group, attempt, message))
        await asyncio.gather(*burials)
        return got

    async def _bury(self, message: Msg, letter: Event) -> None:
        """Publish the dead letter, then end the message's delivery for good (TERM)."""
        await self._jetstream.publish(
            self._subject(letter.type), letter.to_bytes(), stream=self.stream
        )
        await message.term()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except BackendError:
            self._stale = True
            raise
        except _UNAVAILABLE as exc:
            self._stale = True  # whatever failed, declare the stream and consumers again
            raise BackendUnavailableError(
                f"NATS bus cannot reach JetStream at {mask_url(self.url)}: {exc!r}; is "
                "nats-server running with -js?"
            ) from exc
        except (nats.errors.Error, ValueError) as exc:
            self._stale = True
            raise BackendError(f"NATS bus at {mask_url(self.url)} failed: {exc!r}") from exc


def _durable_name(group: str, event_type: str) -> str:
    name = f"{token(group)}~~{token(event_type)}"
    if len(name) > _MAX_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:16]
        name = f"{name[: _MAX_NAME - 17]}-{digest}"
    return name
