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
* **Policies.** A request naming a model alone is answered per its traffic policy
  (``routing.Route``: canary share, sticky by key; fallback chain; shadows), read from the
  registry on first use and again by ``refresh`` when its ``revision`` changed: every
  version the new policy names is loaded *first*, then the route is switched in one
  assignment (a request keeps the versions it found). A version that cannot be loaded is
  left out (its requests go down the fallback chain); a policy none of whose answering
  versions loads is not applied. No policy: ``@champion``, as before.
* **Fallback.** When the chosen version raises anything but a client's error (a 4xx), the
  next of the chain scores the same columns; each hand-over is counted
  (``gristmill_fallbacks_total`` of the version that failed), and the answer names the
  version that answered (``Served.answered``).
* **Shadows** score the same inputs after the answer, in ``ShadowScorer``'s queue and thread.
* **Scoring.** One-row requests to an ONNX servable go through the prediction cache (when
  sized) and the micro-batcher; larger ones, and every native servable (pandas inside),
  run in a worker thread. Each answer is counted (``Metrics``) and logged
  (``PredictionLog``); a failure is counted and raised to the route.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from time import perf_counter
from typing import Any, TypeVar

import numpy as np

from gristmill.config.settings import ServeSettings
from gristmill.errors import DataError, NotFoundError
from gristmill.features.stores import FeatureStores
from gristmill.servables.loading import CHAMPION, load_servable, resolve_version
from gristmill.servables.port import NumericColumns, Predictions, Servable, ServableManifest
from gristmill.server.batching import MicroBatcher
from gristmill.server.budget import BudgetMissedError, Budgets, spec_budget_ms
from gristmill.server.cache import PredictionCache
from gristmill.server.http import NotReadyError, TooLargeError, status_of
from gristmill.server.metrics import Metrics, QuietMetrics
from gristmill.server.port import EntityInputs, EntityPredictions, Served
from gristmill.server.prediction_log import PredictionLog
from gristmill.server.routing import Route
from gristmill.server.shadow import Scored, ShadowScorer
from gristmill.server.stats_windows import StatsWindows
from gristmill.server.tally import AnswerTally
from gristmill.stores.models import TrafficPolicy

logger = logging.getLogger(__name__)

IN_THREAD_ROWS = 1_000
"""Requests of more rows are scored in a worker thread (ONNX Runtime releases the GIL)."""

Key = tuple[str, int]
T = TypeVar("T")


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
        if metrics is None:
            if not settings.metrics:
                metrics = QuietMetrics()
            else:
                metrics = Metrics(StatsWindows() if settings.stats_flush_seconds > 0 else None)
        self.metrics = metrics
        self.tally = AnswerTally(metrics, log)
        self.cache = PredictionCache(settings.cache_size, settings.cache_ttl)
        self.batcher = MicroBatcher(
            settings.max_batch_size, settings.max_batch_wait_ms / 1000.0, self.metrics.batched
        )
        self.shadows = ShadowScorer(
            self.metrics, size=settings.shadow_queue, timeout=settings.shadow_timeout
        )
        self.shadows.log = log
        self.budgets = Budgets(settings.budget_max_abandoned)
        self._stores: FeatureStores | None = None
        self._routes: dict[str, Route | None] = {}  # None: no policy, @champion answers
        self._aliases: dict[tuple[str, str], int] = {}
        self._loaded: dict[Key, Servable] = {}
        self._budgets: dict[Key, float | None] = {}  # each version's spec's latency budget
        self._pinned: set[Key] = set()
        self._locks: dict[Key, asyncio.Lock] = {}
        self._ready = False

    @property
    def log(self) -> PredictionLog | None:
        """Where answered requests are logged (``None``: nowhere)."""
        return self.tally.log

    @log.setter
    def log(self, log: PredictionLog | None) -> None:
        self.tally.log = log

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
        self,
        model: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        key: str | None = None,
    ) -> Served:
        stores = self.stores
        if version is None and alias is None:
            route = self._routes.get(model) if model in self._routes else await self._route(model)
            if route is not None:
                chosen, fallbacks, missing = route.choose(key)
                if missing is not None:  # the version the policy picked is not loaded
                    self.metrics.fell_back(model, missing, route.revision)
                return Served(
                    chosen,
                    model,
                    fallbacks,
                    route.shadows,
                    revision=route.revision,
                    model_budget_ms=self._budgets.get((model, chosen.manifest.version)),
                )
        if version is not None:
            held = (model, version)
            asked = f"{model}/{version}"
        else:
            alias = alias or CHAMPION
            asked = model if alias == CHAMPION else f"{model}@{alias}"
            number = self._aliases.get((model, alias))
            if number is None:
                found = await asyncio.to_thread(resolve_version, stores, model, alias)
                number = self._aliases.setdefault((model, alias), found.version)
            held = (model, number)
        servable = self._loaded.get(held)
        if servable is None:
            servable = await self._load(held)
            if version is not None:
                self._pinned.add(held)  # named by number: kept while the process runs
        return Served(servable, asked, model_budget_ms=self._budgets.get(held))

    async def _load(self, key: Key) -> Servable:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            servable = self._loaded.get(key)
            if servable is None:
                model, number = key
                try:
                    servable = await asyncio.to_thread(load_servable, self.stores, model, number)
                    self._budgets[key] = await asyncio.to_thread(
                        spec_budget_ms, self.stores.metadata, model, number
                    )
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

    async def _route(self, model: str) -> Route | None:
        """The route of ``model``'s policy, read and loaded on its first request."""
        policy = await asyncio.to_thread(read_policy, self.stores, model)
        route = None if policy is None else await self._built(policy)
        return self._routes.setdefault(model, route)

    async def _built(self, policy: TrafficPolicy) -> Route:
        """``policy`` with each of its versions loaded (``None`` for one that cannot be)."""
        loaded: dict[int, Servable | None] = {}
        for number in policy.versions():
            try:
                loaded[number] = await self._load((policy.model, number))
            except Exception as exc:
                loaded[number] = None
                logger.error(
                    "%s/%d of %s's traffic policy (revision %d) cannot be loaded (%s); its "
                    "requests go down the fallback chain",
                    policy.model,
                    number,
                    policy.model,
                    policy.revision,
                    exc,
                )
        shadows = tuple(s for n in policy.shadow if (s := loaded[n]) is not None)
        return Route(
            policy,
            loaded[policy.primary],
            None if policy.canary is None else loaded[policy.canary],
            shadows,
            tuple(loaded[n] for n in policy.fallback),
        )

    async def apply_policy(self, model: str) -> TrafficPolicy | None:
        """Read ``model``'s policy now and apply it (loading its versions first); the policy
        this process applies after (``None``: none, ``@champion`` answers)."""
        if model in self._routes:
            await self.refresh_policies(model)
            self._let_go()
        else:
            await self._route(model)
        route = self._routes.get(model)
        return None if route is None else route.policy

    def policies(self) -> dict[str, TrafficPolicy]:
        """The policies this process applies now, by model."""
        return {m: r.policy for m, r in sorted(self._routes.items()) if r is not None}

    async def refresh_policies(self, model: str | None = None) -> builtins.list[str]:
        """Read the policies of the models requests named alone (``model``, or all) again;
        apply each whose revision changed (or that holds a version not loaded yet) once its
        versions are loaded. Returns ``model#revision`` of each policy applied."""
        stores = self.stores
        applied: builtins.list[str] = []
        names = [model] if model is not None else builtins.list(self._routes)
        for name in names:
            if name not in self._routes:
                continue  # never asked for alone: read on its first request
            route = self._routes[name]
            try:
                policy = await asyncio.to_thread(read_policy, stores, name)
            except Exception:
                logger.exception("could not read %s's traffic policy from the registry", name)
                continue
            if policy is None:
                if route is not None:
                    logger.info("%s has no traffic policy any more; @champion answers", name)
                    self._routes[name] = None
                    applied.append(f"{name}#0")
                continue
            if route is not None and route.revision == policy.revision and route.complete():
                continue
            new = await self._built(policy)
            if new.primary is None and not any(new.fallbacks) and route is not None:
                logger.error(
                    "%s's traffic policy revision %d names no version that loads; still "
                    "applying revision %d",
                    name,
                    policy.revision,
                    route.revision,
                )
                continue
            self._routes[name] = new
            applied.append(f"{name}#{policy.revision}")
            logger.info(
                "%s: traffic policy revision %d applied (primary %d, canary %s at %.0f%%, "
                "shadow %s, fallback %s)",
                name,
                policy.revision,
                policy.primary,
                policy.canary,
                policy.canary_share * 100,
                list(policy.shadow),
                list(policy.fallback),
            )
        return applied

    def list(self) -> list[ServableManifest]:
        return [s.manifest for _, s in sorted(self._loaded.items())]

    def aliases(self) -> dict[str, int]:
        """``model@alias`` → version, for the aliases requests have used."""
        return {f"{m}@{a}": v for (m, a), v in sorted(self._aliases.items())}

    async def refresh(self, model: str | None = None) -> builtins.list[str]:
        """Read the aliases and policies in use (of ``model``, or all) again; switch those
        that moved, once their new versions are loaded. Returns ``model@alias`` of each
        switched alias and ``model#revision`` of each policy applied."""
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
        switched += await self.refresh_policies(model)
        self._let_go()
        return switched

    def unload(self, model: str, which: int | str, *, alone: bool = False) -> builtins.list[str]:
        """Let go of the version ``which`` (a number or an alias) names, if it is loaded;
        ``alone``: the model was named alone, so the versions that answer it (its traffic
        policy's primary and canary, else its ``@champion``). The version leaves every
        route to it — the aliases on it, the model's policy route, the version by number —
        so the next request naming it in any way loads it again from the registry (which
        checks its digests again). Requests that already hold it finish on it. Returns the
        refs (``model/N``) let go."""
        numbers: set[int] = set()
        if isinstance(which, int):
            numbers.add(which)
        elif (model, which) in self._aliases:
            numbers.add(self._aliases[(model, which)])
        route = self._routes.get(model)
        if alone and route is not None:
            policy = route.policy
            numbers |= {n for n in (policy.primary, policy.canary) if n is not None}
        gone: builtins.list[str] = []
        for number in sorted(numbers):
            if self._drop(model, number):
                gone.append(f"{model}/{number}")
                logger.info("unloaded %s/%d", model, number)
        return gone

    def _drop(self, model: str, number: int) -> bool:
        """``model``/``number`` out of every table and route; whether it was loaded."""
        key = (model, number)
        self._pinned.discard(key)
        self._budgets.pop(key, None)
        self._locks.pop(key, None)
        for alias_key in [k for k, v in self._aliases.items() if k[0] == model and v == number]:
            del self._aliases[alias_key]  # read again on next use
        route = self._routes.get(model)
        if route is not None and number in route.policy.versions():
            del self._routes[model]  # the policy is read, its versions loaded, on next use
        servable = self._loaded.pop(key, None)
        if servable is None:
            return False
        self.batcher.forget(servable)
        return True

    def _let_go(self) -> None:
        kept = {(m, v) for (m, _), v in self._aliases.items()} | self._pinned
        for route in self._routes.values():
            if route is not None:
                kept |= {(route.policy.model, n) for n in route.policy.versions()}
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
        rows = self._rows(columns)

        def attempt(servable: Servable, pool: ThreadPoolExecutor | None) -> Awaitable[Predictions]:
            return self._score(servable, columns, rows, served.revision, pool)

        answer = await self._down_chain(served, started, attempt)
        manifest = served.answering
        tally = self.tally
        if not tally.idle:
            tally.answered(
                manifest, served.revision, rows, started, perf_counter() - started, request_id,
                protocol, columns, answer,
            )  # fmt: skip
        for shadow in served.shadows:
            job = functools.partial(_shadow_rows, shadow, columns)
            self.shadows.submit(shadow, protocol, request_id, job)
        return answer

    async def _down_chain(
        self,
        served: Served,
        started: float,
        attempt: Callable[[Servable, ThreadPoolExecutor | None], Awaitable[T]],
    ) -> T:
        """The first answer down ``served``'s chain (the chosen version, then its
        fallbacks): a version that fails (not the client's error) or misses the request's
        latency budget hands over to the next; the last one is awaited. A version with a
        budget to keep is scored off the event loop (``attempt``'s pool), so that the next
        can answer while it still runs. Sets ``served.answered``."""
        chain = (served.servable, *served.fallbacks)
        budget = served.budget
        for index, servable in enumerate(chain):
            manifest = servable.manifest
            last = index == len(chain) - 1
            try:
                if budget is None or last:
                    result = await attempt(servable, None)
                else:
                    deadline = started + budget * (index + 1)
                    left = deadline - perf_counter()
                    result = await self.budgets.within(
                        servable, functools.partial(attempt, servable, self.budgets.pool), left
                    )
            except BudgetMissedError:
                self._missed(served, manifest, chain[index + 1].manifest)
                continue
            except Exception as exc:
                if last or status_of(exc) < 500:
                    served.answered = manifest  # the route counts it (``failed``)
                    raise  # the last of the chain, or the client's own error
                self._fell_back(served, manifest, exc, chain[index + 1].manifest, started)
                continue
            served.answered = manifest
            if budget is not None and perf_counter() - started > budget * (index + 1):
                self.metrics.budget_missed(manifest.model, manifest.version, served.revision)
            return result
        raise AssertionError("a chain has at least its chosen version")

    def failed(self, served: Served | None, status: int, seconds: float) -> None:
        """Count a prediction request that failed (see ``ServedModels``)."""
        if served is None:
            self.metrics.failed("", "", seconds, status)
        else:
            manifest = served.answering
            self.metrics.failed(manifest.model, manifest.version, seconds, status, served.revision)

    def _fell_back(
        self,
        served: Served,
        failed: ServableManifest,
        exc: Exception,
        to: ServableManifest,
        started: float,
    ) -> None:
        """``failed`` could not answer: counted as its failure, and ``to`` is asked next."""
        seconds = perf_counter() - started
        revision = served.revision
        self.metrics.failed(failed.model, failed.version, seconds, status_of(exc), revision)
        self.metrics.fell_back(failed.model, failed.version, revision)
        logger.warning("%s failed (%r); %s answers instead", failed.ref, exc, to.ref)

    def _missed(self, served: Served, missed: ServableManifest, to: ServableManifest) -> None:
        """``missed`` did not answer within the budget: counted, and ``to`` answers."""
        revision = served.revision
        self.metrics.budget_missed(missed.model, missed.version, revision, overtaken=True)
        self.metrics.fell_back(missed.model, missed.version, revision)
        logger.debug("%s missed the latency budget; %s answers instead", missed.ref, to.ref)

    def _rows(self, columns: Mapping[str, Any]) -> int:
        rows = 0
        if type(columns) is NumericColumns:
            rows = columns.rows  # no column made to ask its length
        for values in () if rows else columns.values():
            rows = len(values) if hasattr(values, "__len__") else 1
            break
        if rows > self.settings.max_rows:
            raise TooLargeError(
                f"the request has {rows} rows, more than the server takes in one request "
                f"({self.settings.max_rows}; serve.max_rows); split it"
            )
        return rows

    async def _score(
        self,
        servable: Servable,
        columns: Mapping[str, Any],
        rows: int,
        revision: int = 0,
        pool: ThreadPoolExecutor | None = None,
    ) -> Predictions:
        """``servable``'s answer; in ``pool`` when given (a version with a latency budget
        to keep: never inline on the event loop, never in the micro-batcher)."""
        manifest = servable.manifest
        if pool is not None:
            self.metrics.batched(manifest.model, manifest.version, rows)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(pool, servable.predict, columns)
        if manifest.kind != "onnx" or rows > IN_THREAD_ROWS:
            self.metrics.batched(manifest.model, manifest.version, rows)
            return await asyncio.to_thread(servable.predict, columns)
        if rows != 1:
            self.metrics.batched(manifest.model, manifest.version, rows)
            return servable.predict(columns)
        key = self.cache.key(servable.manifest, columns) if self.cache.enabled else None
        if key is not None:
            cached = self.cache.get(key)
            if cached is not None:
                self.metrics.cache_hit(manifest.model, manifest.version, revision)
                return cached
        if self.batcher.enabled:  # it counts the size of each call it makes
            answer = await self.batcher.submit(servable, columns)
        else:
            self.metrics.batched(manifest.model, manifest.version, 1)
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
        given = columns or {}
        self._rows({"entities": entities})

        def attempt(
            servable: Servable, pool: ThreadPoolExecutor | None
        ) -> Awaitable[tuple[Predictions, tuple[str, ...], EntityInputs]]:
            return self._entity_answer(servable, entities, given, pool, counted=True)

        answer, status, inputs = await self._down_chain(served, started, attempt)
        manifest = served.answering
        tally = self.tally
        if not tally.idle:
            tally.answered(
                manifest, served.revision, len(entities), started, perf_counter() - started,
                request_id, protocol, inputs, answer,
            )  # fmt: skip
        for shadow in served.shadows:
            job = functools.partial(self._shadow_entities, shadow, entities, given)
            self.shadows.submit(shadow, protocol, request_id, job)
        return EntityPredictions(answer, status)

    async def _entity_answer(
        self,
        servable: Servable,
        entities: Sequence[str],
        columns: Mapping[str, Any],
        pool: ThreadPoolExecutor | None = None,
        *,
        counted: bool = False,
    ) -> tuple[Predictions, tuple[str, ...], EntityInputs]:
        """``servable``'s answer for ``entities``, each entity's status, and the inputs to
        log (one value per entity, ``None`` where none was found); scored in ``pool`` when
        given (shadows, budgeted calls), else in the default one; ``counted``: the call's
        size goes to the metrics (not a shadow's)."""
        manifest = servable.manifest
        status, features, found = await self._vectors(manifest, entities, columns)
        scored = None
        if found.size:
            if counted:  # the request's own call (a shadow's is not counted)
                self.metrics.batched(manifest.model, manifest.version, int(found.size))
            loop = asyncio.get_running_loop()
            scored = await loop.run_in_executor(pool, servable.predict_features, features)
        answer = _scattered(manifest, scored, found, len(entities))
        logged: dict[str, np.ndarray] = {}
        for name, values in features.items():
            logged[name] = full = np.full(len(entities), None, dtype=object)
            full[found] = values
        inputs = EntityInputs(manifest.entity or "entity", entities, status, logged)
        return answer, status, inputs

    async def _shadow_entities(
        self,
        servable: Servable,
        entities: Sequence[str],
        columns: Mapping[str, Any],
        pool: ThreadPoolExecutor,
    ) -> Scored:
        answer, _, inputs = await self._entity_answer(servable, entities, columns, pool)
        return inputs, answer

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
                    f"column {name!r} is not a feature of {manifest.ref}: with entities, "
                    "rows or columns only override the entity's features "
                    f"({', '.join(names)}); to score raw columns, send them without entities",
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


async def _shadow_rows(
    servable: Servable, columns: Mapping[str, Any], pool: ThreadPoolExecutor
) -> Scored:
    answer = await asyncio.get_running_loop().run_in_executor(pool, servable.predict, columns)
    return columns, answer


def read_policy(stores: FeatureStores, model: str) -> TrafficPolicy | None:
    """``model``'s stored traffic policy, or ``None`` (no policy: ``@champion`` answers)."""
    return stores.metadata.registry.get_policy(model)
