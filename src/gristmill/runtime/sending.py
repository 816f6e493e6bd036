"""What ``gristmill send`` checks before it publishes: the source takes records, and they fit.

A source takes records only when its spec marks it ``stream: true``; a source read from a
file or a query alone is refused, naming the sources that do take records. When the source
declares ``columns``, every record must carry each declared field (``null`` for no value)
with a value of its type; the first record that does not is named by its line and index,
and nothing is published.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill.config.sources import SourceSpec
from gristmill.config.spec import PipelineSpec
from gristmill.errors import ConfigError, DataError
from gristmill.ingestion.records import declared_misfits


def stream_source(spec: PipelineSpec, source: str, *, origin: str) -> SourceSpec:
    """The source ``source`` of ``spec`` (read from ``origin``), if it takes records;
    ``ConfigError`` naming it, and the sources that take records, if not."""
    if source not in spec.sources:
        known = ", ".join(spec.sources)
        raise ConfigError(f"{origin} has no source named {source!r}; known: {known}")
    found = spec.sources[source]
    if found.stream:
        return found
    streams = [name for name, other in spec.sources.items() if other.stream]
    accepting = (
        f"of its sources, {_names(streams)} {'takes' if len(streams) == 1 else 'take'} records"
        if streams
        else "none of its sources takes records"
    )
    raise ConfigError(
        f"source {source!r} of {origin} is a {found.format} source, not a stream: records "
        f"can be sent only to a source marked `stream: true`, and {accepting}; send to "
        f"one of those, or add `stream: true` under sources.{source} if it is to take "
        "records as well"
    )


def check_records(
    records: list[tuple[int, dict[str, Any]]], source: SourceSpec, *, file: Path, origin: str
) -> None:
    """``DataError`` naming the first record (line and index) and field that does not fit
    the source's declared ``columns``; nothing to check when it declares none."""
    if not source.columns:
        return
    misfits = declared_misfits([record for _, record in records], source.columns, origin=origin)
    if not misfits:
        return
    first = misfits[0]
    index = first.row or 1
    field = first.column or ""
    declared = source.columns.get(field, "")
    more = f" ({len(misfits)} of {len(records)} records do not fit)" if len(misfits) > 1 else ""
    raise DataError(
        f"{file}, line {records[index - 1][0]} (record {index}), field {field!r}: "
        f"{first.reason}; sources.{source.name}.columns in {origin} declares {field!r} as "
        f"{declared}{more}; fix the records (null for no value) or the declaration; nothing "
        "was sent",
        file=str(file),
        row=records[index - 1][0],
        column=field,
    )


def _names(names: list[str]) -> str:
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
