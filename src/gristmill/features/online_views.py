"""Which fitted pipelines keep a feature set's online view, and lookups in one of them.

A feature set's online view holds one part per fitted pipeline (ADR 0009). The *newest*
feature set of a name gives the default part; every model the registry points an alias at
(``champion``, ``challenger`` …) keeps the part of the pipeline it was trained with, named
by its bundle's ``feature_pipeline`` digest, so it is only ever given vectors made by that
pipeline.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gristmill.errors import ConfigError, NotFoundError
from gristmill.stores.features import VectorLookup
from gristmill.stores.models import Candidate

if TYPE_CHECKING:
    from gristmill.features.stores import FeatureStores
    from gristmill.stores.metadata import MetadataStore

logger = logging.getLogger(__name__)

NEWEST = "newest"
"""What ``used_by`` says of the newest feature set's pipeline."""

MODELS_SCANNED = 10_000  # registry versions read to find every model name


@dataclass(frozen=True)
class OnlineView:
    """One pipeline's part of a feature set's online view.

    ``name`` is the feature set's name (the view), ``feature_set_id`` the set whose fitted
    pipeline it is, ``pipeline`` that pipeline's artifact digest, and ``used_by`` who reads
    it: ``newest`` and/or ``<model>@<alias>`` references.
    """

    name: str
    feature_set_id: str
    pipeline: str
    used_by: tuple[str, ...] = ()


def newest_view(metadata: MetadataStore, name: str) -> OnlineView:
    """The part of the newest feature set named ``name``; ``NotFoundError`` if none."""
    latest = metadata.feature_sets.latest_feature_set(name)
    if latest is None:
        raise NotFoundError(
            f"no feature set named {name!r}; list them with `gristmill ls feature-sets`"
        )
    if not latest.pipeline_artifact:
        raise NotFoundError(f"feature set {latest.feature_set_id} records no fitted pipeline")
    return OnlineView(name, latest.feature_set_id, latest.pipeline_artifact, (NEWEST,))


def candidate_of(metadata: MetadataStore, model: str) -> Candidate:
    """The candidate ``model`` names: a candidate id, ``<model>@<alias>`` or ``<model>/<n>``."""
    registry = metadata.registry
    if "@" in model:
        name, alias = model.split("@", 1)
        version = registry.find_alias(name, alias)
        if version is None:
            raise NotFoundError(f"{model} points at no version; see `gristmill models {name}`")
        return metadata.candidates.get_candidate(version.candidate_id)
    if "/" in model:
        name, number = model.rsplit("/", 1)
        if not number.isdigit():
            raise ConfigError(f"{model!r}: a model version is <model>/<number>, e.g. churn/3")
        version = registry.get_version(name, int(number))
        return metadata.candidates.get_candidate(version.candidate_id)
    return metadata.candidates.get_candidate(model)


def model_view(stores: FeatureStores, candidate: Candidate, *, used_by: str = "") -> OnlineView:
    """The part a candidate reads: its feature set's name, the pipeline its bundle names."""
    feature_set = stores.metadata.feature_sets.get_feature_set(candidate.feature_set_id)
    ref = stores.artifacts.find(candidate.artifact or "")
    if ref is None:
        raise NotFoundError(
            f"candidate {candidate.candidate_id} ({candidate.name}) has no stored model; "
            "train it again"
        )
    manifest = json.loads(stores.artifacts.get(ref))
    pipeline = str(manifest.get("feature_pipeline") or feature_set.pipeline_artifact or "")
    if not pipeline:
        raise NotFoundError(
            f"candidate {candidate.candidate_id} ({candidate.name}) names no fitted feature "
            "pipeline, so no online vectors are its own"
        )
    who = (used_by or candidate.candidate_id,)
    return OnlineView(feature_set.name, feature_set.feature_set_id, pipeline, who)


def views_in_use(stores: FeatureStores, name: str) -> list[OnlineView]:
    """The parts of ``name``'s view that are read: the newest set's first, then one per
    other pipeline a model alias points at (one entry per pipeline, its users merged)."""
    metadata = stores.metadata
    views: dict[str, OnlineView] = {}
    try:
        newest = newest_view(metadata, name)
        views[newest.pipeline] = newest
    except NotFoundError:
        return []
    registry = metadata.registry
    models = {v.model for v in registry.list_versions(limit=MODELS_SCANNED)}
    for model in sorted(models):
        for alias in registry.list_aliases(model):
            reference = f"{model}@{alias.alias}"
            version = registry.get_version(model, alias.version)
            candidate = metadata.candidates.find_candidate(version.candidate_id)
            if candidate is None:
                continue
            try:
                view = model_view(stores, candidate, used_by=reference)
            except NotFoundError as exc:
                logger.warning("%s keeps no online view: %s", reference, exc)
                continue
            if view.name != name:
                continue
            known = views.get(view.pipeline)
            views[view.pipeline] = (
                view if known is None else replace(known, used_by=(*known.used_by, reference))
            )
    return list(views.values())


def resolve_view(
    stores: FeatureStores, name: str, *, model: str | None = None, pipeline: str | None = None
) -> OnlineView:
    """The part a lookup reads: ``model``'s, ``pipeline``'s, or else the newest set's."""
    if model is not None and pipeline is not None:
        raise ConfigError("name a model or a pipeline to look up, not both")
    if model is not None:
        view = model_view(stores, candidate_of(stores.metadata, model), used_by=model)
        if view.name != name:
            raise ConfigError(
                f"{model} was trained on feature set {view.name!r}, not {name!r}; "
                f"look it up with `gristmill lookup {view.name} … --model {model}`"
            )
        return view
    if pipeline is not None:
        for feature_set in stores.metadata.feature_sets.list_feature_sets(name=name, limit=1000):
            if feature_set.pipeline_artifact == pipeline:
                return OnlineView(name, feature_set.feature_set_id, pipeline, ())
        # a model's bundle may carry a pipeline no feature set records: still its vectors
        return OnlineView(name, "", pipeline, ())
    return newest_view(stores.metadata, name)


def lookup(
    stores: FeatureStores,
    name: str,
    entities: Sequence[str],
    *,
    model: str | None = None,
    pipeline: str | None = None,
    features: Sequence[str] | None = None,
) -> tuple[OnlineView, list[VectorLookup]]:
    """The vectors of ``entities`` made by one pipeline: ``model``'s (a candidate id,
    ``<model>@<alias>`` or ``<model>/<n>``), ``pipeline`` (a digest), or the newest set's.

    Each entity's ``VectorLookup`` says found, missing, expired or superseded: a vector of
    another pipeline is never returned.
    """
    if stores.online is None:
        raise ConfigError("no online store is configured; set `online.backend`")
    view = resolve_view(stores, name, model=model, pipeline=pipeline)
    if online_declared(stores.metadata, view.feature_set_id) is False:
        raise NotFoundError(
            f"feature set {name!r} has no online view: the spec it was prepared with has no "
            f"`online:` under features.{name}, so no vector of it is kept for lookups; add "
            f"`online: {{ttl: 1d}}` there (with an `entity:` key column) and prepare again"
        )
    return view, stores.online.get(name, entities, pipeline=view.pipeline, features=features)


def online_declared(metadata: MetadataStore, feature_set_id: str) -> bool | None:
    """Whether the spec a feature set was prepared with asks for its online view (an
    enabled ``online:`` in its section); ``None`` when that spec is not on record."""
    feature_set = metadata.feature_sets.find_feature_set(feature_set_id) if feature_set_id else None
    run = metadata.runs.find_run(feature_set.run_id) if feature_set and feature_set.run_id else None
    stored = metadata.specs.find_spec(run.spec_digest) if run and run.spec_digest else None
    if feature_set is None or stored is None:
        return None
    section = (stored.body.get("features") or {}).get(feature_set.name) or {}
    online = section.get("online")
    return isinstance(online, dict) and online.get("enabled", True) is not False
