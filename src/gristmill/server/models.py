"""``RegistryModels``: the server's ``ServedModels``, over the model registry's servables.

* **Naming.** ``find`` turns ``(model, alias)`` into a version number once, then keeps it in
  a table that ``refresh`` (bus event or poll) updates; ``(model, number)`` names a loaded
  servable. A version is loaded on first use, once (a lock per version; the registry and
  artifact reads run in a worker thread), and several versions and models are held at once.
* **Promotion.** ``refresh`` reads every alias in use again; when one moved, the new version
  is loaded *first* and the alias switched after, in one assignment: requests that found the
  old servable finish on it, the next ones find the new one, none waits or fails. A new
  version that cannot be loaded (a tampered artifact) is logged and the alias stays where
  it was. A version no alias points at any more, and that no request named by number, is
  let go.
* **Scoring.** One-row requests to an ONNX servable go through the prediction cache (when
  sized) and the micro-batcher; larger ones, and every native servable (pandas inside),
  run in a worker thread. Each answer is counted (``Metrics``) and logged
  (``PredictionLog``); a failure is counted and raised to the route.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Mapping, Sequence
from time import perf_counter
from typing import Any

import numpy as np

from gristmill.config.settings import ServeSettings
from gristmill.errors import DataError, NotFoundError
from gristmill.features.prepare import FeatureStores
from gristmill.servables import load_servable, resolve_version
from gristmill.servables.loading import CHAMPION
from gristmill.servables.port import Predictions, Servable, ServableManifest
from gristmill.server.batching import MicroBatcher
from gristmill.server.cache import PredictionCache
from gristmill.server.http import NotReadyError, TooLargeError
from gristmill.server.metrics import Metrics
from gristmill.server.port import EntityPredictions, Served
from gristmill.server.prediction_log import PredictionLog

logger = logging.getLogger(__name__)

IN_THREAD_ROWS = 1_000
"""Requests of more rows are scored in a worker thread (ONNX Runtime releases the GIL)."""

Key = tuple[str, int]


class RegistryModels:
    """The versions this server holds (see the module docstring). Cheap to build; usable
    once ``attach`` gave it the opened stores."""

    def __init__(
        self,
        settings: ServeSettings,
        *,
        metrics: Metrics | None = None,
        log: PredictionLog | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.log = log
        self.cache = PredictionCache(settings.cache_size, settings.cache_ttl)
        self.batcher = MicroBatcher(
            settings.max_batch_size, settings.max_batch_wait_ms / 1000.0, self.metrics.batched
        )
        self._stores: FeatureStores | None = None
        self._aliases: dict[tuple[str, str], int] = {}
        self._loaded: dict[Key, Servable] = {}
        self._pinned: set[Key] = set()
        self._locks: dict[Key, asyncio.Lock] = {}
        self._ready = False

    def attach(self, stores: FeatureStores) -> None:
        """Serve from these (opened) stores."""
        self._stores = stores

    def set_ready(self, ready: bool) -> None:
        self._ready = ready

    def ready(self) -> bool:
        return self._ready and self._stores is not None

    @property
    def stores(self) -> FeatureStores:
        if self._stores is None:
            raise NotReadyError("the server is starting; try again in a moment")
        return self._stores

    async def find(
        self, model: str, *, version: int | None = None, alias: str | None = None
    ) -> Served:
        stores = self.stores
        if version is not None:
            key = (model, version)
            asked = f"{model}/{version}"
        else:
            alias = alias or CHAMPION
            asked = model if alias == CHAMPION else f"{model}@{alias}"
            number = self._aliases.get((model, alias))
            if number is None:
                found = await asyncio.to_thread(resolve_version, stores, model, alias)
                number = self._aliases.setdefault((model, alias), found.version)
            key = (model, number)
        servable = self._loaded.get(key)
        if servable is None:
            servable = await self._load(key)
            if version is not None:
                self._pinned.add(key)  # named by number: kept while the process runs
        return Served(servable, asked)

    async def _load(self, key: Key) -> Servable:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            servable = self._loaded.get(key)
            if servable is None:
                model, number = key
                try:
                    servable = await asyncio.to_thread(load_servable, self.stores, model, number)
                except BaseException:
                    if self._locks.get(key) is lock and key not in self._loaded:
                        del self._locks[key]  # no lock kept for what does not load
                    raise
                self._loaded[key] = servable
                logger.info(
                    "loaded %s (%s servable %s)",
                    servable.manifest.ref,
                    servable.manifest.kind,
                    servable.manifest.digest,
                )
            return servable

    def list(self) -> list[ServableManifest]:
        return [s.manifest for _, s in sorted(self._loaded.items())]

    def aliases(self) -> dict[str, int]:
        """``model@alias`` → version, for the aliases requests have used."""
        return {f"{m}@{a}": v for (m, a), v in sorted(self._aliases.items())}

    async def refresh(self, model: str | None = None) -> builtins.list[str]:
        """Read the aliases in use (of ``model``, or all) again; switch those that moved, once
        their new version is loaded. Returns ``model@alias`` of each switched alias."""
        stores = self.stores
        switched: builtins.list[str] = []
        for (name, alias), number in list(self._aliases.items()):
            if model is not None and name != model:
                continue
            try:
                found = await asyncio.to_thread(resolve_version, stores, name, alias)
            except NotFoundError:
                logger.warning("%s@%s points at no version any more", name, alias)
                self._aliases.pop((name, alias), None)
                continue
            except Exception:
                logger.exception("could not read %s@%s from the registry", name, alias)
                continue
            if found.version == number:
                continue
            try:
                await self._load((name, found.version))
            except Exception as exc:
                logger.error(
                    "%s@%s moved to version %d, which cannot be loaded (%s); still serving "
                    "version %d",
                    name,
                    alias,
                    found.version,
                    exc,
                    number,
                )
                continue
            self._aliases[(name, alias)] = found.version
            switched.append(f"{name}@{alias}")
            logger.info("%s@%s now serves version %d (was %d)", name, alias, found.version, number)
        self._let_go()
        return switched

    def unload(self, model: str, which: int | str) -> builtins.list[str]:
        """Let go of the version ``which`` (a number or an alias) names, if it is loaded:
        the next request naming it loads it again (and reads the alias again). Requests
        that already hold it finish on it. Returns the refs (``model/N``) let go."""
        if isinstance(which, int):
            numbers = {which}
        else:
            number = self._aliases.pop((model, which), None)
            numbers = set() if number is None else {number}
        gone: builtins.list[str] = []
        for number in sorted(numbers):
            key = (model, number)
            self._pinned.discard(key)
            servable = self._loaded.pop(key, None)
            self._locks.pop(key, None)
            if servable is None:
                continue
            self.batcher.forget(servable)
            # the other aliases on this version are read again on next use
            for alias_key in [k for k, v in self._aliases.items() if k[0] == model and v == number]:
                del self._aliases[alias_key]
            gone.append(f"{model}/{number}")
            logger.info("unloaded %s/%d", model, number)
        return gone

    def _let_go(self) -> None:
        kept = {(m, v) for (m, _), v in self._aliases.items()} | self._pinned
        for key in [k for k in self._loaded if k not in kept]:
            self.batcher.forget(self._loaded.pop(key))
            self._locks.pop(key, None)

    async def predict(
        self,
        served: Served,
        columns: Mapping[str, Any],
        *,
        protocol: str,
        request_id: str,
    ) -> Predictions:
        started = perf_counter()
        manifest = served.manifest
        try:
            rows = self._rows(columns)
            answer = await self._score(served.servable, columns, rows)
        except Exception:
            self.metrics.failed(manifest.model, manifest.version, perf_counter() - started)
            raise
        seconds = perf_counter() - started
        self.metrics.answered(manifest.model, manifest.version, rows, seconds)
        if self.log is not None:
            self.log.record(request_id, protocol, manifest, seconds, columns, answer)
        return answer

    def _rows(self, columns: Mapping[str, Any]) -> int:
        rows = 0
        for values in columns.values():
            rows = len(values) if hasattr(values, "__len__") else 1
            break
        if rows > self.settings.max_rows:
            raise TooLargeError(
                f"the request has {rows} rows, more than the server takes in one request "
                f"({self.settings.max_rows}; serve.max_rows); split it"
            )
        return rows

    async def _score(
        self, servable: Servable, columns: Mapping[str, Any], rows: int
    ) -> Predictions:
        if servable.manifest.kind != "onnx" or rows > IN_THREAD_ROWS:
            return await asyncio.to_thread(servable.predict, columns)
        if rows != 1:
            return servable.predict(columns)
        key = self.cache.key(servable.manifest, columns) if self.cache.enabled else None
        if key is not None:
            cached = self.cache.get(key)
            if cached is not None:
                self.metrics.cache_hit(servable.manifest.model, servable.manifest.version)
                return cached
        if self.batcher.enabled:
            answer = await self.batcher.submit(servable, columns)
        else:
            answer = servable.predict(columns)
        if key is not None:
            self.cache.put(key, answer)
        return answer

    async def predict_entities(
        self,
        served: Served,
        entities: Sequence[str],
        columns: Mapping[str, Any] | None = None,
        *,
        protocol: str,
        request_id: str,
    ) -> EntityPredictions:
        started = perf_counter()
        manifest = served.manifest
        try:
            self._rows({"entities": entities})
            status, features, found = await self._vectors(manifest, entities, columns or {})
            if found.size:
                scored = await asyncio.to_thread(served.servable.predict_features, features)
            else:
                scored = None
            answer = _scattered(manifest, scored, found, len(entities))
        except Exception:
            self.metrics.failed(manifest.model, manifest.version, perf_counter() - started)
            raise
        seconds = perf_counter() - started
        self.metrics.answered(manifest.model, manifest.version, len(entities), seconds)
        if self.log is not None:
            inputs: dict[str, Any] = {manifest.entity or "entity": list(entities)}
            for name, values in features.items():  # one value per entity, None if not found
                inputs[name] = full = np.full(len(entities), None, dtype=object)
                full[found] = values
            self.log.record(request_id, protocol, manifest, seconds, inputs, answer)
        return EntityPredictions(answer, status)

    async def _vectors(
        self, manifest: ServableManifest, entities: Sequence[str], columns: Mapping[str, Any]
    ) -> tuple[tuple[str, ...], dict[str, np.ndarray], np.ndarray]:
        """Each entity's status, the feature columns of the found ones (request columns
        overriding stored values), and the positions of the found ones."""
        online = self.stores.online
        if manifest.entity is None or manifest.view is None or not manifest.pipeline:
            raise DataError(
                f"{manifest.ref} reads no online features (its feature set has no entity); "
                "send its raw columns in rows or columns instead",
                column="entities",
            )
        if online is None:
            raise NotReadyError("no online feature store is open on this server")
        names = [f.name for f in manifest.features]
        for name, values in columns.items():
            if name not in names:
                raise DataError(
                    f"column {name!r} is not a feature of {manifest.ref}; with entities, "
                    f"columns override its features: {', '.join(names)}",
                    column=name,
                )
            if len(values) != len(entities):
                raise DataError(
                    f"column {name!r} has {len(values)} value(s) for {len(entities)} "
                    "entities; give one per entity",
                    column=name,
                )
        keys = [str(e) for e in entities]
        lookups = await asyncio.to_thread(
            online.get, manifest.view, keys, pipeline=manifest.pipeline, features=names
        )
        status = tuple(lookup.status for lookup in lookups)
        found = np.flatnonzero([lookup.found for lookup in lookups])
        vectors = [lookups[i].vector for i in found]
        features = {}
        for name in names:
            if name in columns:
                given = np.asarray(columns[name], dtype=object)
                features[name] = given[found]
            else:
                features[name] = np.array(
                    [None if v is None else v.values.get(name) for v in vectors], dtype=object
                )
        return status, features, found


def _scattered(
    manifest: ServableManifest, scored: Predictions | None, found: np.ndarray, rows: int
) -> Predictions:
    """The answers of the found rows in their places, missing values elsewhere."""
    if scored is not None and len(found) == rows:
        return scored
    kind = "O" if scored is None else scored.values.dtype.kind
    values: np.ndarray
    values = np.full(rows, np.nan) if kind in "fc" else np.full(rows, None, dtype=object)
    if scored is not None:
        values[found] = scored.values
    probabilities = None
    if manifest.output == "probabilities":
        probabilities = np.full((rows, len(manifest.classes or ())), np.nan)
        if scored is not None and scored.probabilities is not None:
            probabilities[found] = scored.probabilities
    return Predictions(values, probabilities)
