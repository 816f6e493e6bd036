"""A trained candidate's stored model: its bundle manifest and its fitted learner.

The bundle (a JSON manifest) names the learner's skops artifact and the fitted feature
pipeline, so the model scores raw rows. Both are read through the artifact store, which
verifies each digest; nothing outside the trusted loader is unpickled.
"""

from __future__ import annotations

import json
from typing import Any

from gristmill.errors import NotFoundError
from gristmill.features.prepare import FeatureStores
from gristmill.learners import FittedLearner
from gristmill.learners.serialization import loads
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
    return manifest, loads(learner)
