"""Which pipeline spec an event follows: its run's (by digest, from the metadata store), else
the worker's own, else the one spec in the store that names the event's source.

A worker started without ``--spec`` acts on any run's events, since a run records the
digest of its spec and the spec itself is kept in the metadata store. When no spec can be
told, the event fails with a ``ConfigError`` (permanent: recorded, announced as
``stage.failed``) that names it and says how to give it a spec; it never "succeeds" with
nothing done.

A spec found is checked again before it is acted on (``preflight``, as ``run`` and
``ingest --queue`` did before recording the run): the custom code it names lives on disk
and may have changed since. A class it names that does not exist (yet) is a ``ConfigError``
naming the spec (its file, as the run recorded it, and digest), the key and the module.
"""

from __future__ import annotations

from collections.abc import Callable

from gristmill.config.spec import PipelineSpec, parse_spec
from gristmill.core.events import Event
from gristmill.errors import ConfigError
from gristmill.stages.spec_checks import preflight
from gristmill.stores.metadata import MetadataStore, Run
from gristmill.stores.specs import StoredSpec, restored_spec

SpecResolver = Callable[[Event], PipelineSpec]

HOW_TO_FIX = (
    "start the worker with --spec FILE, or queue the work with "
    "`gristmill ingest SOURCE --spec FILE --queue` (which records the run and its spec)"
)


def run_spec_resolver(metadata: MetadataStore, fallback: PipelineSpec | None) -> SpecResolver:
    """Resolve an event's spec from its run (``correlation_id``), else ``fallback``, else the
    spec store by the event's source; ``ConfigError`` when none applies."""

    def resolve(event: Event) -> PipelineSpec:
        run = metadata.runs.find_run(event.correlation_id)
        if run is not None:
            return spec_of_run(metadata, run)
        if fallback is not None:
            return checked(fallback, "the worker's spec (--spec)")
        return _by_source(metadata, event)

    return resolve


def checked(spec: PipelineSpec, named: str) -> PipelineSpec:
    """``spec`` once ``preflight`` passes; its ``ConfigError`` prefixed with ``named``."""
    try:
        preflight(spec)
    except ConfigError as exc:
        raise ConfigError(f"{named}: {exc}") from exc
    return spec


def _named(stored: StoredSpec, run: Run | None = None) -> str:
    """The spec as an error names it: its file where the run recorded it, else its folder."""
    of_run = f" of run {run.run_id}" if run is not None else ""
    file = run.summary.get("spec_file") if run is not None else None
    if isinstance(file, str):
        return f"pipeline spec {file} ({stored.pipeline!r}, {stored.digest}{of_run})"
    where = f", read from folder {stored.folder}" if stored.folder else ""
    return f"pipeline spec {stored.pipeline!r} ({stored.digest}{of_run}{where})"


def spec_of_run(metadata: MetadataStore, run: Run) -> PipelineSpec:
    """The spec run ``run`` follows; ``ConfigError`` if the store does not hold it."""
    stored = metadata.specs.find_spec(run.spec_digest) if run.spec_digest else None
    if stored is not None:
        return checked(restored_spec(stored), _named(stored, run))
    if "spec" in run.summary:  # a run recorded before specs were kept by digest
        return parse_spec(run.summary["spec"], origin=f"the spec of run {run.run_id}")
    raise ConfigError(
        f"run {run.run_id} follows spec {run.spec_digest or '(none recorded)'}, which the "
        f"metadata store does not hold; {HOW_TO_FIX}"
    )


def _by_source(metadata: MetadataStore, event: Event) -> PipelineSpec:
    source = event.payload.get("source")
    where = (
        f"{event.type} event {event.id} belongs to no recorded run "
        f"(correlation_id {event.correlation_id})"
    )
    if not isinstance(source, str):
        raise ConfigError(f"cannot tell which pipeline spec applies: {where}; {HOW_TO_FIX}")
    newest: dict[str, StoredSpec] = {}
    for stored in metadata.specs.specs_naming(source):
        newest.setdefault(stored.pipeline, stored)
    if not newest:
        raise ConfigError(
            f"cannot tell which pipeline spec applies: {where} and no spec in the metadata "
            f"store names source {source!r}; {HOW_TO_FIX}"
        )
    if len(newest) > 1:
        raise ConfigError(
            f"cannot tell which pipeline spec applies: {where} and the specs of "
            f"{len(newest)} pipelines name source {source!r} ({', '.join(sorted(newest))}); "
            "start the worker with --spec FILE"
        )
    stored = next(iter(newest.values()))
    return checked(restored_spec(stored), _named(stored))
