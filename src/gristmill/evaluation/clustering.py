"""Clustering evaluators: silhouette (needs the features) and, given true groups, ARI.

Silhouette costs memory quadratic in rows, so above ``SILHOUETTE_SAMPLE`` rows it is
computed on a fixed-seed sample of that size (the size is in the result's details).
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from gristmill.errors import ConfigError, DataError
from gristmill.evaluation.result import Part, Scored, number

SILHOUETTE_SAMPLE = 5000


def silhouette(scored: Scored) -> Part:
    if scored.features is None:
        raise ConfigError("silhouette needs the features the clusters were made from")
    clusters = len(np.unique(scored.y_pred))
    if not 2 <= clusters < len(scored.y_pred):
        raise DataError(
            f"silhouette needs between 2 and n_rows - 1 clusters; the model made {clusters}"
        )
    sample = SILHOUETTE_SAMPLE if len(scored.y_pred) > SILHOUETTE_SAMPLE else None
    value = skm.silhouette_score(scored.features, scored.y_pred, sample_size=sample, random_state=0)
    return Part({"silhouette": number(value)}, {})


def adjusted_rand(scored: Scored) -> Part:
    """Agreement of the clusters with known groups (``y_true``): 1 same, about 0 chance."""
    value = skm.adjusted_rand_score(scored.truth, scored.y_pred)
    return Part({"adjusted_rand": number(value)}, {})
