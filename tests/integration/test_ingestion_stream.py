"""Streaming ingestion: size and time bounds cut micro-batches; nothing acked is ever lost."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from gristmill.backends.parquet.raw import ParquetRawStore
from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.errors import ConfigError
from gristmill.ingestion import MicroBatcher


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def records(start: int, count: int) -> list[dict[str, Any]]:
    return [{"id": i, "value": i * 0.5} for i in range(start, start + count)]


def stored_ids(raw: ParquetRawStore) -> list[int]:
    tables = [raw.read(batch.batch_id) for batch in raw.list(source="clicks")]
    ids: list[int] = pa.concat_tables(tables).column("id").to_pylist() if tables else []
    return sorted(ids)


def test_the_size_bound_cuts_batches(raw: ParquetRawStore, metadata: SqlMetadataStore) -> None:
    batcher = MicroBatcher("clicks", raw, metadata, max_rows=3, max_seconds=60, clock=Clock())
    assert batcher.add(records(0, 2)) == []
    written = batcher.add(records(2, 5))
    assert [w.batch.row_count for w in written] == [3, 3, 1]
    assert batcher.pending == 0
    assert stored_ids(raw) == list(range(7))
    (edge,) = metadata.lineage.parents(written[0].batch.batch_id)
    assert (edge.parent_id, edge.parent_kind) == ("stream:clicks", "stream")


def test_the_time_bound_cuts_batches(raw: ParquetRawStore, metadata: SqlMetadataStore) -> None:
    clock = Clock()
    batcher = MicroBatcher("clicks", raw, metadata, max_rows=100, max_seconds=5, clock=clock)
    assert batcher.add(records(0, 2)) == []
    clock.now = 4.9
    assert batcher.poll() == []
    assert batcher.add(records(2, 1)) == []
    clock.now = 5.0
    (written,) = batcher.poll()
    assert written.batch.row_count == 3
    clock.now = 20.0
    assert batcher.poll() == []
    assert batcher.add(records(3, 1)) == []  # the clock restarts with the next record
    clock.now = 25.0
    assert [w.batch.row_count for w in batcher.add(records(4, 1))] == [2]


def test_records_are_kept_until_a_write_succeeds(
    raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    batcher = MicroBatcher(".hidden", raw, metadata, max_rows=10, max_seconds=60, clock=Clock())
    batcher.add(records(0, 4))
    with pytest.raises(ConfigError):
        batcher.flush()
    assert batcher.pending == 4


def test_after_a_crash_nothing_acked_is_lost(
    raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    """A consumer that acks only after a flush loses nothing when it dies with records pending."""
    messages = {n: records(n * 10, 4) for n in range(6)}
    acked: set[int] = set()

    def consume(batcher: MicroBatcher, deliveries: list[int], *, crash_after: int | None) -> None:
        delivered: list[int] = []
        for count, number in enumerate(deliveries, start=1):
            delivered.append(number)
            if batcher.add(messages[number]):
                acked.update(delivered)  # durable now: ack every message added so far
                delivered.clear()
            if count == crash_after:
                return  # the process dies: the buffer is gone, ``delivered`` is unacked
        batcher.flush()
        acked.update(delivered)

    first = MicroBatcher("clicks", raw, metadata, max_rows=10, max_seconds=60, clock=Clock())
    consume(first, list(messages), crash_after=4)
    assert first.pending > 0 and acked == {0, 1, 2}
    assert stored_ids(raw) == sorted(i for n in acked for i in range(n * 10, n * 10 + 4))

    # The bus redelivers every unacked message to the restarted consumer.
    second = MicroBatcher("clicks", raw, metadata, max_rows=10, max_seconds=60, clock=Clock())
    consume(second, [n for n in messages if n not in acked], crash_after=None)
    assert acked == set(messages)
    every = sorted(i for n in messages for i in range(n * 10, n * 10 + 4))
    assert stored_ids(raw) == every


def test_the_same_records_again_are_recognised(
    raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    batcher = MicroBatcher("clicks", raw, metadata, max_rows=5, max_seconds=60, clock=Clock())
    (first,) = batcher.add(records(0, 5))
    (again,) = batcher.add(records(0, 5))
    assert first.created and not again.created
    assert again.batch.batch_id == first.batch.batch_id
