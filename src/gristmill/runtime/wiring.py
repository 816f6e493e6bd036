"""The composition root: turns settings into opened backends, importing drivers lazily."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from gristmill.config.settings import Settings
from gristmill.core.imports import import_object
from gristmill.errors import BackendError, ConfigError, UnknownBackendError
from gristmill.features.stores import FeatureStores
from gristmill.stores.metadata import MetadataReader, MetadataStore

if TYPE_CHECKING:  # the ports a verb that only reads (``ls``, ``show``) does not load
    from gristmill.bus.port import EventBus
    from gristmill.execution.port import Executor, RestartableWorkers
    from gristmill.stores.artifacts import ArtifactStore
    from gristmill.stores.features import OfflineFeatureStore, OnlineFeatureStore
    from gristmill.stores.raw import RawStore
    from gristmill.stores.scores import ScoreStore

logger = logging.getLogger(__name__)

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

# What executor workers import before their first task (the training jobs: scikit-learn …).
WORKER_PRELOAD = ("gristmill.training.jobs",)
# What they import for a score job alone (``gristmill score``): the partition scorer, which
# loads only what the version's servable needs (ONNX Runtime, or scikit-learn when native).
SCORING_PRELOAD = ("gristmill.stages.score_jobs",)


def _load(role: str, name: str, table: dict[str, tuple[str, str, str | None]]) -> Any:
    try:
        module_name, class_name, extra = table[name]
    except KeyError:
        known = ", ".join(sorted(table))
        raise UnknownBackendError(f"no {role} backend named {name!r}; known: {known}") from None
    install = (
        f"pip install 'gristmill[{extra}]'" if extra else "pip install --force-reinstall gristmill"
    )
    return import_object(
        f"{module_name}:{class_name}", what=f"{name} {role} backend", kind="class", install=install
    )


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


ONLINE_BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "sqlite": ("gristmill.backends.sqlite.online", "SqliteOnlineStore", None),
    "redis": ("gristmill.backends.redis.online", "RedisOnlineStore", "redis"),
}


def build_online(settings: Settings) -> OnlineFeatureStore:
    """An unopened online feature store of the configured backend."""
    cls = _load("online store", settings.online.backend, ONLINE_BACKENDS)
    store: OnlineFeatureStore = cls(settings.online_url(), namespace=settings.online.namespace)
    return store


def build_executor(settings: Settings, *, preload: tuple[str, ...] = WORKER_PRELOAD) -> Executor:
    """An unopened executor of the configured backend (``inline``, ``local``, ``dask``);
    ``preload`` names the modules ``local`` workers import before their first task."""
    backend = settings.executor.backend
    if backend == "inline":
        from gristmill.execution.inline import InlineExecutor

        return InlineExecutor()
    if backend == "local":
        from gristmill.execution.local import LocalExecutor

        # Workers fork from a server that has ``preload`` loaded (the training code by default).
        return LocalExecutor(settings.executor.workers, preload=preload)
    cls = _load(
        "executor", backend, {"dask": ("gristmill.backends.dask.executor", "DaskExecutor", "dask")}
    )
    address = settings.executor.address
    executor: Executor = cls(address, workers=None if address else settings.executor.workers)
    return executor


def build_raw(settings: Settings, metadata: MetadataStore) -> RawStore:
    """The raw store (Parquet through fsspec) whose manifest lives in ``metadata``."""
    from gristmill.backends.parquet.raw import ParquetRawStore

    return ParquetRawStore(
        settings.raw_url(), metadata.batches, max_workers=settings.raw.max_workers
    )


def build_score_store(settings: Settings, url: str | None = None) -> ScoreStore:
    """The score store (Parquet through fsspec) at ``url``, else ``[scoring] store_url``."""
    from gristmill.backends.parquet.scores import ParquetScoreStore

    return ParquetScoreStore(url or settings.scores_url())


@dataclass
class Services:
    """The opened backends a process works with."""

    settings: Settings
    bus: EventBus
    metadata: MetadataStore
    raw: RawStore
    offline: OfflineFeatureStore
    online: OnlineFeatureStore
    artifacts: ArtifactStore

    _executor: Executor | None = None

    def feature_stores(self) -> FeatureStores:
        return FeatureStores(self.raw, self.metadata, self.offline, self.artifacts, self.online)

    def executor(self) -> Executor:
        """The configured executor, started on first use (a process pool costs seconds)."""
        if self._executor is None:
            executor = build_executor(self.settings)
            executor.open()
            self._executor = executor
        return self._executor

    def restart_executor_workers(self) -> bool:
        """Fresh worker processes for the tasks submitted from now on (they import their
        code anew); ``False`` where the executor cannot give them (a dask cluster)."""
        executor = self._executor
        if executor is None:
            return True  # its workers start when it is first used
        if executor.capabilities.restartable:
            cast("RestartableWorkers", executor).restart_workers()
            return True
        return not executor.capabilities.separate_processes  # inline: this process

    def close_executor(self) -> None:
        if self._executor is not None:
            self._executor.close()
            self._executor = None


def make_home(settings: Settings) -> None:
    """The folder of the embedded stores, made if missing; ``ConfigError`` if it cannot be."""
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the home folder {settings.home}: {exc.strerror}; set --home (or "
            "`home` in gristmill.toml) to a folder this user can write"
        ) from exc


@contextmanager
def open_stores(settings: Settings) -> Iterator[FeatureStores]:
    """The stores alone (metadata, raw, offline, artifacts; no bus, no online store), open
    for the block: what scoring from a file or compiling a servable needs."""
    from gristmill.backends.fsspec.artifacts import FsspecArtifactStore
    from gristmill.backends.parquet.features import ParquetOfflineStore

    make_home(settings)
    metadata = build_metadata(settings)
    metadata.open()
    try:
        yield FeatureStores(
            build_raw(settings, metadata),
            metadata,
            ParquetOfflineStore(settings.features_url(), metadata.feature_sets),
            FsspecArtifactStore(settings.artifacts_url()),
        )
    finally:
        metadata.close()


def stores_made(settings: Settings) -> bool:
    """Whether the stores may hold anything: ``False`` only when the metadata store is an
    embedded SQLite file that does not exist yet (nothing ever ran with this home), so a
    read-only verb can say so without creating it."""
    if settings.metadata.backend != "sqlite":
        return True
    from gristmill.backends.sqlite.metadata_reader import sqlite_path

    path = sqlite_path(settings.metadata_url())
    return path is None or path.exists()


@contextmanager
def open_metadata_reader(settings: Settings) -> Iterator[MetadataReader]:
    """The read side of the metadata store, open for the block (``ls``, ``show``).

    A SQLite store at the newest revision is read through the standard library's sqlite3
    (``SqliteMetadataReader``, ADR 28), so reading imports no SQLAlchemy; any other — on
    PostgreSQL, a file not made yet, tables to migrate — through the store itself, opened
    as every command opens it (creating or migrating first).
    """
    if settings.metadata.backend == "sqlite":
        from gristmill.backends.sqlite.metadata_reader import SqliteMetadataReader, sqlite_path

        path = sqlite_path(settings.metadata_url())
        if path is not None:
            reader = SqliteMetadataReader(path)
            try:
                reader.open()
            except BackendError as exc:
                logger.debug("reading the metadata store through the store: %s", exc)
            else:
                try:
                    yield reader
                finally:
                    reader.close()
                return
    make_home(settings)
    store = build_metadata(settings)
    store.open()
    try:
        yield store
    finally:
        store.close()


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Open bus and stores for the duration of the block, closing them in reverse order."""
    from gristmill.backends.fsspec.artifacts import FsspecArtifactStore
    from gristmill.backends.parquet.features import ParquetOfflineStore

    make_home(settings)
    metadata = build_metadata(settings)
    metadata.open()
    online = build_online(settings)
    try:
        bus = build_bus(settings)
        await bus.open()
        online.open()
        services = Services(
            settings,
            bus,
            metadata,
            build_raw(settings, metadata),
            ParquetOfflineStore(settings.features_url(), metadata.feature_sets),
            online,
            FsspecArtifactStore(settings.artifacts_url()),
        )
        try:
            yield services
        finally:
            services.close_executor()
            online.close()
            await bus.close()
    finally:
        metadata.close()
