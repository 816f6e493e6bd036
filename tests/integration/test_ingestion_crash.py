"""A process killed (SIGKILL) while writing a batch leaves nothing visible; a rerun completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gristmill.backends.parquet.raw import ParquetRawStore
from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.config.sources import SourceSpec
from gristmill.ingestion import ingest
from gristmill.testing.data import numbers_table, write_csv

ROWS = 600_000
PARTITION_ROWS = 1_000  # many small parts, written by one thread: a long window to kill in

CHILD = """
import sys
from gristmill.backends.parquet.raw import ParquetRawStore
from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.config.sources import SourceSpec
from gristmill.ingestion import ingest

work = sys.argv[1]
spec = SourceSpec.model_validate_json(sys.argv[2])
with SqlMetadataStore(f"sqlite:///{work}/meta.db") as metadata:
    ingest(spec, ParquetRawStore(f"{work}/raw", metadata.batches, max_workers=1), metadata)
print("finished", flush=True)
"""


def wait_for_parts(folder: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> Path:
    """The temporary batch directory, once it holds a few parts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for temporary in folder.glob("*/.tmp-*"):
            if len(list(temporary.glob("part-*.parquet"))) >= 3:
                return temporary
        if process.poll() is not None:
            pytest.fail(f"the writer exited ({process.returncode}) before it could be killed")
        time.sleep(0.002)
    pytest.fail("no temporary batch directory appeared")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_ingestion_leaves_no_batch_and_a_rerun_writes_exactly_one(
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "big.csv", numbers_table(ROWS))
    spec = SourceSpec(name="big", format="csv", path=str(path), partition_rows=PARTITION_ROWS)
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), spec.model_dump_json()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        temporary = wait_for_parts(tmp_path / "raw", process)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    with SqlMetadataStore(f"sqlite:///{tmp_path / 'meta.db'}") as metadata:
        raw = ParquetRawStore(str(tmp_path / "raw"), metadata.batches)
        assert metadata.batches.list_batches() == []
        assert raw.list() == []
        assert temporary.exists()  # an invisible leftover, not a batch

        (written,) = ingest(spec, raw, metadata)
        assert written.created
        assert written.batch.row_count == ROWS
        assert len(written.batch.files) == ROWS // PARTITION_ROWS
        assert raw.read(written.batch.batch_id).column("id").to_pylist() == list(range(ROWS))
        assert [b.batch_id for b in raw.list()] == [written.batch.batch_id]

        (again,) = ingest(spec, raw, metadata)
        assert not again.created and again.batch == written.batch

        assert raw.sweep(older_than=0) == [f"file://{temporary}"]
        assert not temporary.exists()
        assert raw.read(written.batch.batch_id).num_rows == ROWS
