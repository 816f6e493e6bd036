"""Feature set ids: derived from the feature set's definition and its input batch ids.

The same definition over the same inputs always has the same id, so training and scoring
agree on which features they mean, and computing a feature set twice finds the first one.
Any change to the section (steps, options, selection, roles, validation) or to the inputs
gives another id, and so does another split for the set training uses (ADR 8), or another
task set by the spec for a set whose selection scores against the label. The order of
``input_ids`` does not matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gristmill.config.features import FeatureSetSpec
from gristmill.core.ids import digest_json

PREFIX = "fs_"
DIGEST_CHARS = 24  # 96 bits of the sha256: collisions are out of reach for any catalog


def definition_digest(spec: FeatureSetSpec) -> str:
    """The digest (``sha256:<hex>``) of one ``features.<name>`` section, as written in JSON."""
    return digest_json(spec.model_dump(mode="json", by_alias=True))


def feature_set_id(
    name: str,
    spec: FeatureSetSpec,
    input_ids: Iterable[str],
    *,
    split: Mapping[str, Any] | None = None,
    task: str | None = None,
) -> str:
    """``fs_`` and 24 hex digits of the digest of ``name``, the section and the sorted inputs,
    and ``split``, the split the pipeline is fitted for (only the training set has one):
    another split means other fitted state, so another feature set. Likewise ``task``, the
    task the spec sets when label-based selection depends on it (``None``: left out, so the
    ids of other sets do not change)."""
    identity: dict[str, Any] = {
        "name": name,
        "definition": spec.model_dump(mode="json", by_alias=True),
        "inputs": sorted(input_ids),
    }
    if split is not None:
        identity["split"] = dict(split)
    if task is not None:
        identity["task"] = task
    return PREFIX + digest_json(identity).removeprefix("sha256:")[:DIGEST_CHARS]
