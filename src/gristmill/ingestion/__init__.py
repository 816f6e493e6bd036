"""Ingestion: readers that turn sources into Arrow, and the ``ingest`` use case."""

from gristmill.ingestion.bad_rows import BadRow
from gristmill.ingestion.extract import Extract
from gristmill.ingestion.ingest import Progress, ingest
from gristmill.ingestion.stream import MicroBatcher

__all__ = ["BadRow", "Extract", "MicroBatcher", "Progress", "ingest"]
