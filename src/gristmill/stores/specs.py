"""The spec store port: pipeline specs kept by digest, so work carries its spec by reference.

A run records the digest of its spec (``Run.spec_digest``); the spec itself is kept once
here, with the sources it names and the folder it was read from. Any worker can then act on
any event: ``correlation_id`` → run → spec digest → spec. Events that belong to no run
(streamed batches) find theirs by source: the specs that name it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gristmill.errors import NotFoundError

if TYPE_CHECKING:  # the spec models (pydantic, YAML) load with the first spec read or kept
    from gristmill.config.spec import PipelineSpec


@dataclass(frozen=True)
class StoredSpec:
    """A validated pipeline spec as recorded: ``body`` is its JSON form (source paths
    resolved), ``digest`` its id (``Run.spec_digest``), ``folder`` where it was read from
    (``None`` when it came from no file), ``sources`` the source names it holds."""

    digest: str
    pipeline: str
    body: dict[str, Any]
    created_at: datetime
    sources: list[str] = field(default_factory=list)
    folder: str | None = None


class SpecReader(Protocol):
    def get_spec(self, digest: str) -> StoredSpec:
        """``NotFoundError`` naming the digest if it is not recorded."""
        ...

    def find_spec(self, digest: str) -> StoredSpec | None: ...


def missing_spec(digest: str) -> NotFoundError:
    """What ``get_spec`` raises when no spec has ``digest``."""
    return NotFoundError(
        f"no pipeline spec with digest {digest!r} in the metadata store; a run or "
        "queued work records its spec, so run it again with --spec FILE"
    )


class SpecStore(SpecReader, Protocol):
    def add_spec(self, spec: StoredSpec) -> StoredSpec:
        """Record it; if its digest is recorded already, return the recorded one (the first
        ``created_at`` and ``folder`` are kept). Idempotent and race-safe."""
        ...

    def specs_naming(self, source: str, *, limit: int = 20) -> list[StoredSpec]:
        """The recorded specs that hold a source named ``source``, newest first."""
        ...


def stored_spec(spec: PipelineSpec, folder: Path | None = None) -> StoredSpec:
    """``spec`` as the store keeps it; ``folder`` is the folder its file is in."""
    from gristmill.config.spec import spec_digest

    return StoredSpec(
        digest=spec_digest(spec),
        pipeline=spec.name,
        body=spec.model_dump(mode="json", by_alias=True),
        created_at=datetime.now(UTC),
        sources=sorted(spec.sources),
        folder=str(folder.resolve()) if folder is not None else None,
    )


def restored_spec(stored: StoredSpec) -> PipelineSpec:
    """The pipeline spec a stored one holds; its folder, if it exists on this machine, is
    made importable (the custom steps, splits or evaluators kept beside the spec file)."""
    from gristmill.config.spec import parse_spec
    from gristmill.core.user_code import make_importable

    spec = parse_spec(stored.body, origin=f"the stored spec {stored.digest}")
    if stored.folder and Path(stored.folder).is_dir():
        make_importable(Path(stored.folder))
    return spec
