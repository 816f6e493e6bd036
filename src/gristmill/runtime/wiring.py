"""The composition root: turns settings into opened backends, importing drivers lazily."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from gristmill.bus.port import EventBus
from gristmill.config.settings import Settings
from gristmill.errors import MissingExtraError, UnknownBackendError
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.raw import RawStore

# backend name -> (module, class, extra that provides its driver)
BUS_BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "sqlite": ("gristmill.backends.sqlite.bus", "SqliteBus", None),
    "redis": ("gristmill.backends.redis.bus", "RedisStreamsBus", "redis"),
    "nats": ("gristmill.backends.nats.bus", "NatsJetStreamBus", "nats"),
}
METADATA_BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "sqlite": ("gristmill.backends.sql.metadata", "SqlMetadataStore", None),
    "postgres": ("gristmill.backends.sql.metadata", "SqlMetadataStore", "postgres"),
}


def _load(role: str, name: str, table: dict[str, tuple[str, str, str | None]]) -> Any:
    try:
        module_name, class_name, extra = table[name]
    except KeyError:
        known = ", ".join(sorted(table))
        raise UnknownBackendError(f"no {role} backend named {name!r}; known: {known}") from None
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        hint = f"pip install 'gristmill[{extra}]'" if extra else "reinstall gristmill"
        raise MissingExtraError(
            f"the {name} {role} backend needs {exc.name!r}, which is not installed; run: {hint}"
        ) from exc
    return getattr(module, class_name)


def build_bus(settings: Settings) -> EventBus:
    """An unopened bus of the configured backend."""
    cls = _load("bus", settings.bus.backend, BUS_BACKENDS)
    bus: EventBus = cls(
        settings.bus_url(),
        namespace=settings.bus.namespace,
        max_attempts=settings.bus.max_attempts,
        ack_wait=settings.bus.ack_wait,
    )
    return bus


def build_metadata(settings: Settings) -> MetadataStore:
    """An unopened metadata store of the configured backend."""
    cls = _load("metadata", settings.metadata.backend, METADATA_BACKENDS)
    store: MetadataStore = cls(settings.metadata_url(), schema=settings.metadata.db_schema)
    return store


def build_raw(settings: Settings, metadata: MetadataStore) -> RawStore:
    """The raw store (Parquet through fsspec) whose manifest lives in ``metadata``."""
    from gristmill.backends.parquet.raw import ParquetRawStore

    return ParquetRawStore(
        settings.raw_url(), metadata.batches, max_workers=settings.raw.max_workers
    )


@dataclass
class Services:
    """The opened backends a process works with."""

    settings: Settings
    bus: EventBus
    metadata: MetadataStore
    raw: RawStore


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Open bus and stores for the duration of the block, closing them in reverse order."""
    settings.home.mkdir(parents=True, exist_ok=True)
    metadata = build_metadata(settings)
    metadata.open()
    try:
        bus = build_bus(settings)
        await bus.open()
        try:
            yield Services(settings, bus, metadata, build_raw(settings, metadata))
        finally:
            await bus.close()
    finally:
        metadata.close()
