"""Streaming ingestion: a bus consumer that appends ``records.appended`` to the raw store.

Producers publish ``records.appended`` events (key = source, payload
``{"source": name, "records": [{...}, ...]}``). The worker buffers them per source in a
``MicroBatcher`` and writes a micro-batch when ``max_rows`` records are buffered or the oldest
has waited ``max_seconds``; it acks the events a micro-batch covers only after the batch is
written, then announces ``raw.ingested``. A crash loses nothing acked; unacked events are
redelivered (so ``max_seconds`` must stay well below the bus's ``ack_wait``). A message whose
records cannot form a table is nacked on its own and ends dead-lettered, without holding up
the others; every nack waits the worker's back-off (``retry_delay``) before the message
comes back, so a bad message is not retried in a tight loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gristmill.bus.port import Delivery, EventBus
from gristmill.core.encoding import find_not_utf8
from gristmill.core.events import RAW_INGESTED, RECORDS_APPENDED, Event
from gristmill.core.outages import OutageLog
from gristmill.errors import ConfigError, DataError
from gristmill.ingestion.announce import ingested_payload
from gristmill.ingestion.stream import MicroBatcher
from gristmill.runtime.stage_names import STREAM_STAGE
from gristmill.runtime.worker import consumer_name, retry_delay, serve_until
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.raw import RawStore, WrittenBatch

log = logging.getLogger(__name__)


def records_event(source: str, records: Sequence[dict[str, Any]], **envelope: Any) -> Event:
    """The event a producer publishes to append ``records`` to stream ``source``."""
    return Event(
        type=RECORDS_APPENDED,
        key=source,
        payload={"source": source, "records": list(records)},
        **envelope,
    )


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file; ``DataError`` names the file and line of a bad one."""
    return [record for _, record in read_numbered_records(path)]


def read_numbered_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The records of a JSON Lines file, each with its 1-based line (blank lines are skipped,
    so a record's line and its index may differ); ``DataError`` as ``read_records``."""
    records: list[tuple[int, dict[str, Any]]] = []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}", file=str(path)) from exc
    problem = find_not_utf8([data])
    if problem is not None:
        raise DataError(problem.describe(str(path)), file=str(path), row=problem.line)
    lines = data.decode("utf-8-sig").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: row {number} is not valid JSON ({exc.msg}); fix or remove that line",
                file=str(path),
                row=number,
            ) from exc
        if not isinstance(record, dict):
            raise DataError(
                f"{path}: row {number} is not a JSON object", file=str(path), row=number
            )
        records.append((number, record))
    if not records:
        raise DataError(f"{path} holds no records", file=str(path))
    return records


def _bad_shape(event: Event) -> str | None:
    source = event.payload.get("source")
    records = event.payload.get("records")
    if not isinstance(source, str) or not source:
        return "payload.source must be the stream's name (a non-empty string)"
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return "payload.records must be a list of JSON objects"
    return None


class StreamIngestionWorker:
    """Consumes ``records.appended`` and writes raw micro-batches, one batcher per source."""

    consumes = RECORDS_APPENDED

    def __init__(
        self,
        bus: EventBus,
        raw: RawStore,
        metadata: MetadataStore,
        *,
        max_rows: int = 10_000,
        max_seconds: float = 2.0,
        outages: OutageLog | None = None,
    ) -> None:
        if max_seconds >= bus.ack_wait:
            raise ConfigError(
                f"stream max_seconds ({max_seconds}) must be below the bus ack_wait "
                f"({bus.ack_wait}), or buffered events would be redelivered"
            )
        self.bus = bus
        self.raw = raw
        self.metadata = metadata
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.consumer = consumer_name(STREAM_STAGE)
        self.handled = 0
        self.outages = outages if outages is not None else OutageLog()
        self._batchers: dict[str, MicroBatcher] = {}
        self._held: dict[str, list[Delivery]] = defaultdict(list)

    def _batcher(self, source: str) -> MicroBatcher:
        if source not in self._batchers:
            self._batchers[source] = MicroBatcher(
                source,
                self.raw,
                self.metadata,
                max_rows=self.max_rows,
                max_seconds=self.max_seconds,
            )
        return self._batchers[source]

    async def run(self, stop: asyncio.Event, *, poll: float = 0.2, concurrency: int = 1) -> None:
        """Consume until ``stop``; then flush what is buffered and ack it."""
        wait = min(poll, self.max_seconds / 2)

        async def step() -> None:
            deliveries = await self.bus.consume(
                STREAM_STAGE, RECORDS_APPENDED, self.consumer, max_events=500, wait=wait
            )
            for delivery in deliveries:
                await self._add(delivery)
            for source, batcher in self._batchers.items():
                if batcher.pending and batcher.due():
                    await self._flush(source)

        await serve_until(stop, step, STREAM_STAGE, self.outages)
        for source in list(self._batchers):
            if self._batchers[source].pending:
                await self._flush(source)

    async def _add(self, delivery: Delivery) -> None:
        event = delivery.event
        problem = _bad_shape(event)
        source = str(event.payload.get("source"))
        if problem is None:
            try:
                await asyncio.to_thread(self._batcher(source).conform, event.payload["records"])
            except DataError as exc:
                problem = str(exc)
        if problem is not None:
            log.warning(
                "bad records.appended message %s (attempt %d): %s",
                event.id,
                delivery.attempt,
                problem,
                extra={"stage": STREAM_STAGE, "event_id": event.id, "attempt": delivery.attempt},
            )
            await self.bus.nack(delivery, error=problem, delay=retry_delay(delivery.attempt))
            return
        self._held[source].append(delivery)
        batcher = self._batcher(source)
        await self._flush(source, lambda: batcher.add(event.payload["records"]))

    async def _flush(
        self, source: str, write: Callable[[], list[WrittenBatch]] | None = None
    ) -> None:
        try:
            written = await asyncio.to_thread(write or self._batchers[source].flush)
        except DataError as exc:
            # Each message was checked on arrival, so this is rare (messages that fit alone
            # but not together): send them all back; each comes back and is checked again.
            self._batchers[source].discard()
            held, self._held[source] = self._held[source], []
            for delivery in held:
                await self.bus.nack(delivery, error=str(exc), delay=retry_delay(delivery.attempt))
            return
        if written:
            await self._settle(source, written)

    async def _settle(self, source: str, written: list[WrittenBatch]) -> None:
        held, self._held[source] = self._held[source], []
        last = held[-1].event
        announcements = [
            last.caused(RAW_INGESTED, ingested_payload(w), key=source) for w in written
        ]
        await self.bus.publish(announcements)
        for delivery in held:
            await self.bus.ack(delivery)
        self.handled += len(held)
