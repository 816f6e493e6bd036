"""The contract every ``RawStore`` backend passes: subclass, provide one fixture, run.

::

    class TestLocalParquetRawStore(RawStoreContract):
        __test__ = True

        @pytest.fixture
        def raw_store(self, tmp_path):
            with SqlMetadataStore(f"sqlite:///{tmp_path}/meta.db") as metadata:
                yield ParquetRawStore(str(tmp_path / "raw"), metadata.batches)

``raw_store`` yields a fresh, empty store (with its catalog) and cleans up after the test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pyarrow as pa
import pytest

from gristmill.errors import DataError, EmptyInputError, NotFoundError
from gristmill.stores.raw import RawStore, WrittenBatch


def sample(rows: int = 10, start: int = 0) -> pa.Table:
    """A small table with an int, a float, a string and a nullable column."""
    ids = list(range(start, start + rows))
    return pa.table(
        {
            "id": ids,
            "score": [i / 4 for i in ids],
            "name": [f"row-{i}" for i in ids],
            "maybe": [None if i % 3 == 0 else i for i in ids],
        }
    )


class _BoomError(RuntimeError):
    pass


class _Unreadable:
    """Parts that must never be read (the content is known already)."""

    def __iter__(self) -> Iterator[pa.Table]:
        raise AssertionError("parts of known content must not be read")


def _parts_then_fail(table: pa.Table) -> Iterator[pa.Table]:
    yield table
    raise _BoomError("the input broke while the batch was being written")


class RawStoreContract:
    """Behaviour every raw store shows; ``raw_store`` is the one fixture a backend provides."""

    __test__ = False

    @pytest.fixture
    def raw_store(self) -> RawStore:
        raise NotImplementedError("a backend's test class provides the raw_store fixture")

    def test_a_written_batch_reads_back_whole(self, raw_store: RawStore) -> None:
        table = sample(25)
        written = raw_store.write_batch(
            "orders", [table.slice(0, 10), table.slice(10)], content_digest="sha256:a"
        )
        assert written.created
        assert raw_store.read(written.batch.batch_id).equals(table)

    def test_the_manifest_describes_the_batch(self, raw_store: RawStore) -> None:
        written = raw_store.write_batch(
            "orders",
            [sample(4), sample(3, start=4)],
            content_digest="sha256:m",
            origin="file:///in.csv",
            run_id="run-1",
        )
        batch = written.batch
        assert len(batch.batch_id) == 26
        assert (batch.source, batch.row_count, batch.content_digest) == ("orders", 7, "sha256:m")
        assert (batch.origin, batch.run_id) == ("file:///in.csv", "run-1")
        assert [field["name"] for field in batch.schema] == ["id", "score", "name", "maybe"]
        assert [field["type"] for field in batch.schema] == ["int64", "double", "string", "int64"]
        assert batch.schema_fingerprint.startswith("sha256:")
        assert len(batch.files) == 2
        assert (batch.quarantine, batch.bad_rows) == (None, 0)
        assert raw_store.get(batch.batch_id) == batch

    def test_the_same_content_is_recognised_not_written_twice(self, raw_store: RawStore) -> None:
        first = raw_store.write_batch("orders", [sample()], content_digest="sha256:same")

        again = raw_store.write_batch("orders", _Unreadable(), content_digest="sha256:same")
        assert again == WrittenBatch(first.batch, created=False)
        assert raw_store.list() == [first.batch]

    def test_the_same_content_in_another_source_is_another_batch(self, raw_store: RawStore) -> None:
        first = raw_store.write_batch("orders", [sample()], content_digest="sha256:same")
        other = raw_store.write_batch("returns", [sample()], content_digest="sha256:same")
        assert other.created and other.batch.batch_id != first.batch.batch_id

    def test_batches_list_newest_first_and_by_source(self, raw_store: RawStore) -> None:
        ids = [
            raw_store.write_batch(
                "orders" if i % 2 else "returns", [sample(2, i)], content_digest=f"sha256:{i}"
            ).batch.batch_id
            for i in range(4)
        ]
        assert ids == sorted(ids)
        assert [b.batch_id for b in raw_store.list()] == ids[::-1]
        assert [b.batch_id for b in raw_store.list(source="orders")] == [ids[3], ids[1]]
        assert [b.batch_id for b in raw_store.list(limit=1)] == [ids[3]]

    def test_many_parts_read_back_in_order(self, raw_store: RawStore) -> None:
        table = sample(1000)
        parts = [table.slice(i, 37) for i in range(0, 1000, 37)]
        written = raw_store.write_batch("orders", parts, content_digest="sha256:many")
        assert len(written.batch.files) == len(parts)
        assert raw_store.read(written.batch.batch_id).equals(table)

    def test_read_selected_columns(self, raw_store: RawStore) -> None:
        batch = raw_store.write_batch("orders", [sample()], content_digest="sha256:c").batch
        table = raw_store.read(batch.batch_id, columns=["name", "id"])
        assert table.column_names == ["name", "id"]
        with pytest.raises(NotFoundError, match="nope"):
            raw_store.read(batch.batch_id, columns=["nope"])

    def test_unknown_batch_is_not_found(self, raw_store: RawStore) -> None:
        with pytest.raises(NotFoundError):
            raw_store.get("01HZZZZZZZZZZZZZZZZZZZZZZZ")
        with pytest.raises(NotFoundError):
            raw_store.read("01HZZZZZZZZZZZZZZZZZZZZZZZ")

    def test_quarantined_rows_are_kept_with_the_batch(self, raw_store: RawStore) -> None:
        bad = pa.table({"row": [3], "column": ["id"], "reason": ["'x' is not a valid int64"]})
        written = raw_store.write_batch(
            "orders", [sample()], content_digest="sha256:q", quarantine=bad
        )
        assert written.batch.bad_rows == 1
        assert written.batch.quarantine is not None

    def test_a_failure_while_writing_leaves_nothing_visible(self, raw_store: RawStore) -> None:
        with pytest.raises(_BoomError):
            raw_store.write_batch("orders", _parts_then_fail(sample()), content_digest="sha256:f")
        assert raw_store.list() == []
        again = raw_store.write_batch("orders", [sample()], content_digest="sha256:f")
        assert again.created

    def test_no_rows_is_an_empty_input(self, raw_store: RawStore) -> None:
        with pytest.raises(EmptyInputError):
            raw_store.write_batch("orders", [sample(0)], content_digest="sha256:e")
        with pytest.raises(EmptyInputError):
            raw_store.write_batch("orders", [], content_digest="sha256:e")
        assert raw_store.list() == []

    def test_parts_must_share_one_schema(self, raw_store: RawStore) -> None:
        narrower = sample(3).cast(
            pa.schema([("id", pa.int32()), ("score", pa.float64()), ("name", pa.string()),
                       ("maybe", pa.int64())])
        )  # fmt: skip
        written = raw_store.write_batch("orders", [sample(3), narrower], content_digest="sha256:1")
        assert written.batch.row_count == 6
        other = pa.table({"something": ["else"]})
        with pytest.raises(DataError, match="schema"):
            raw_store.write_batch("orders", [sample(3), other], content_digest="sha256:2")
        assert raw_store.list() == [written.batch]

    def test_concurrent_writers_of_the_same_content_make_one_batch(
        self, raw_store: RawStore
    ) -> None:
        results: list[WrittenBatch] = []
        barrier = threading.Barrier(4)

        def write() -> None:
            barrier.wait()
            results.append(raw_store.write_batch("orders", [sample()], content_digest="sha256:r"))

        threads = [threading.Thread(target=write) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(result.created for result in results) == 1
        assert len({result.batch.batch_id for result in results}) == 1
        assert len(raw_store.list()) == 1
