"""A trained candidate's stored model: its bundle manifest, its learner, and a scorer of raw rows.

The bundle (a JSON manifest) names the learner's skops artifact (``learner``), the fitted
feature pipeline of its feature set (``feature_pipeline``) and the feature columns the
learner was fitted on (``features``). Both artifacts are read through the artifact store,
which verifies each digest; nothing outside the trusted loader is unpickled.

``load_model`` gives the learner alone: it predicts from *feature* rows (what the feature
store holds). ``load_scorer`` gives a ``Scorer``, which predicts from *raw* rows, as they
were ingested: it computes their features with the fitted pipeline first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gristmill.errors import NotFoundError
from gristmill.features import serialization as pipelines
from gristmill.features.pipeline import FittedFeaturePipeline
from gristmill.features.stores import FeatureStores
from gristmill.learners import FittedLearner
from gristmill.learners.inputs import select_features
from gristmill.learners.serialization import loads, trusted_packages
from gristmill.stores.models import Candidate


def model_bytes(stores: FeatureStores, candidate: Candidate) -> tuple[dict[str, Any], bytes]:
    """A candidate's bundle manifest and its learner's skops bytes, verified by digest."""
    ref = stores.artifacts.find(candidate.artifact or "")
    if ref is None:
        raise NotFoundError(f"candidate {candidate.name!r} has no stored model; train it again")
    manifest: dict[str, Any] = json.loads(stores.artifacts.get(ref))
    learner = stores.artifacts.find(manifest["learner"])
    if learner is None:
        raise NotFoundError(f"the learner of candidate {candidate.name!r} is missing")
    return manifest, stores.artifacts.get(learner)


def load_model(stores: FeatureStores, candidate: Candidate) -> tuple[dict[str, Any], FittedLearner]:
    """A candidate's bundle manifest and its fitted learner, both verified by digest."""
    manifest, learner = model_bytes(stores, candidate)
    return manifest, loads(learner, also_trust=own_packages(candidate))


def own_packages(candidate: Candidate) -> list[str]:
    """The package of the estimator a candidate names by import path: the spec that named
    it is trusted like code, so its fitted types may load (``[]`` for built-in ones)."""
    return trusted_packages([candidate.algorithm])


@dataclass(frozen=True)
class Scorer:
    """A trained candidate that scores raw rows: the fitted feature pipeline, then the learner.

    ``predict(frame)`` and ``predict_proba(frame)`` take rows as they were ingested (the
    columns the pipeline was fitted on; a label column, if present, is ignored). Their
    features are computed by the very pipeline fitted with the feature set, narrowed to
    ``feature_names`` (the columns the learner was fitted on), then given to the learner.
    Results keep ``frame``'s index; a row a ``filter`` step rejects gets no prediction.

    Errors: ``DataError`` naming the column for a missing input column or a value of the
    wrong type; ``ConfigError`` for probabilities or classes from a model without them.
    """

    learner: FittedLearner
    pipeline: FittedFeaturePipeline | None
    feature_names: list[str]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[Any]:
        """The classes a classifier knows, in the order of ``predict_proba``'s columns."""
        return self.learner.classes

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The learner's input for raw ``frame``: its features, in fitting order."""
        computed = frame if self.pipeline is None else self.pipeline.transform(frame)
        return select_features(computed, self.feature_names, self.learner.algorithm)

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        """One prediction per raw row (a class, a value, a cluster, a forecast)."""
        return self.learner.predict(self.features(frame))

    def predict_proba(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Class probabilities per raw row, one column per class in the order of ``classes``."""
        return self.learner.predict_proba(self.features(frame))


def load_scorer(
    stores: FeatureStores, candidate: Candidate, *, also_trust: Iterable[str] = ()
) -> Scorer:
    """A ``Scorer`` of raw rows for a trained candidate, every artifact verified by digest.

    ``also_trust`` names packages whose types may be loaded besides the built-in ones and
    the candidate's own estimator package (if named by import path): that of a custom
    feature step (``features.stores.trusted_packages``). ``NotFoundError``
    when the model or its pipeline is not in the artifact store; ``DataError`` for a type
    not trusted.
    """
    trusted = [*own_packages(candidate), *also_trust]
    manifest, learner = model_bytes(stores, candidate)
    fitted = loads(learner, also_trust=trusted)
    digest = manifest.get("feature_pipeline")
    pipeline = None
    if digest:
        ref = stores.artifacts.find(digest)
        if ref is None:
            raise NotFoundError(
                f"the fitted feature pipeline {digest} of candidate {candidate.name!r} is not "
                "in the artifact store; prepare the feature set and train it again"
            )
        pipeline = pipelines.loads(stores.artifacts.get(ref), also_trust=trusted)
    names = [str(name) for name in manifest.get("features") or fitted.feature_names]
    return Scorer(fitted, pipeline, names, manifest)
