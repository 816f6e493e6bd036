"""What every protocol's routes ask of the server: find a served version, score columns.

The protocols (Open Inference Protocol v2, the MLflow scoring protocol, the native API) only
translate between their wire format and typed columns; everything a prediction goes through
besides (picking the version by name, alias or number; the online store for entity keys;
micro-batching; the prediction cache; logging; metrics) sits behind ``ServedModels``, so all
protocols get the same behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gristmill.servables import Predictions, Servable, ServableManifest
from gristmill.servables.port import NumericColumns

__all__ = ["EntityInputs", "NumericColumns", "Served", "ServedModels"]


class EntityInputs(dict[str, Any]):
    """What the prediction log keeps of an entity request: the entity keys (the mapping's
    one column, under the entity's name), each row's ``status`` (``found``, ``missing``,
    ``expired``, ``superseded``) and the standardized ``features`` the learner scored
    (from the online store or the request; ``None`` where none was found). Kept apart from
    a row request's raw inputs, so a log column never mixes raw values and features."""

    __slots__ = ("features", "status")

    def __init__(
        self,
        entity: str,
        keys: Sequence[str],
        status: Sequence[str],
        features: Mapping[str, np.ndarray],
    ) -> None:
        super().__init__({entity: list(keys)})
        self.status = tuple(status)
        self.features = dict(features)


@dataclass
class Served:
    """A loaded version as a request reaches it: its servable and how it was named, and,
    when a traffic policy chose it, the versions that answer if it fails (``fallbacks``,
    in order) and those scored beside it (``shadows``). ``predict`` sets ``answered`` to
    the manifest of the version that actually answered (a fallback, maybe), or that failed
    last: what the protocols report and count (per policy ``revision``). One per request;
    what it holds stays with the request to its end."""

    servable: Servable
    asked: str  # what the client named: "churn", "churn@challenger", "churn/3"
    fallbacks: tuple[Servable, ...] = ()
    shadows: tuple[Servable, ...] = ()
    answered: ServableManifest | None = None
    revision: int = 0
    """The revision of the traffic policy that chose it (0: named by version or alias)."""
    budget: float | None = None
    """The request's latency budget in seconds (``server.budget``; ``None``: none)."""
    model_budget_ms: float | None = None
    """The version's own default budget, in milliseconds: ``serve.latency_budget_ms`` of the
    spec of the run that trained it (``None``: none; the server's setting applies)."""

    @property
    def manifest(self) -> ServableManifest:
        return self.servable.manifest

    @property
    def fell_back(self) -> bool:
        """Whether a version other than the chosen one answered (or failed last)."""
        return self.answered is not None and self.answered is not self.servable.manifest

    @property
    def answering(self) -> ServableManifest:
        """The manifest of the version that answered (the chosen one until ``predict``)."""
        return self.answered or self.servable.manifest


@dataclass(frozen=True)
class EntityPredictions:
    """An answer per entity asked, in order: ``predictions`` for every row (missing where
    the entity had no usable vector) and ``status`` per row — ``found``, ``missing``,
    ``expired`` or ``superseded`` (see ``VectorLookup``); only ``found`` rows were scored."""

    predictions: Predictions
    status: tuple[str, ...]


class ServedModels(Protocol):
    """The versions a server holds and the one way requests are scored.

    ``find`` resolves ``model`` with ``version`` (a number) or ``alias`` to a loaded
    version; with neither, the model's traffic policy picks it (``key`` makes a canary pick
    sticky; no policy: ``@champion``), loading it on first use (hence async: loading reads
    the registry and the artifact store off the event loop); ``NotFoundError`` names the
    model, version or alias when there is none (the routes answer 404), ``NotReadyError``
    (503) while the server is starting. A promotion changes what an alias finds from then
    on; a request that found a version keeps it to its end. ``predict`` scores
    ``columns`` (one array per input column of the manifest; the routes answer a
    ``DataError`` with 400 naming its field) and records the request under ``protocol`` and
    ``request_id`` (metrics, prediction log). ``predict_entities`` scores entities by their
    feature vectors in the online store — only vectors made by the version's own fitted
    pipeline — with ``columns`` (feature columns, one value per entity) overriding stored
    values. ``ready`` says whether the server can answer. ``failed`` counts a prediction
    request that failed, whatever its status (a 4xx too), under the version it reached
    (``served``: its ``answering`` manifest; ``None`` when it failed before one was found):
    the routes call it, so a request is counted once, wherever it failed.
    """

    def ready(self) -> bool: ...

    def failed(self, served: Served | None, status: int, seconds: float) -> None: ...

    async def find(
        self,
        model: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        key: str | None = None,
    ) -> Served: ...

    def list(self) -> list[ServableManifest]: ...

    async def predict(
        self,
        served: Served,
        columns: Mapping[str, np.ndarray],
        *,
        protocol: str,
        request_id: str,
    ) -> Predictions: ...

    async def predict_entities(
        self,
        served: Served,
        entities: Sequence[str],
        columns: Mapping[str, Any] | None = None,
        *,
        protocol: str,
        request_id: str,
    ) -> EntityPredictions: ...
