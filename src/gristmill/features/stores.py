"""``FeatureStores``: the stores a stage or the server works with, bundled.

Its own small module (not ``features.prepare``) so that what only needs the bundle — the
server's start, the registry reads — does not import pandas and scikit-learn with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gristmill.config.features import FeatureSetSpec
    from gristmill.stores.artifacts import ArtifactStore
    from gristmill.stores.features import OfflineFeatureStore, OnlineFeatureStore
    from gristmill.stores.metadata import MetadataStore
    from gristmill.stores.raw import RawStore


@dataclass(frozen=True)
class FeatureStores:
    """The stores preparation reads and writes (``online`` is optional)."""

    raw: RawStore
    metadata: MetadataStore
    offline: OfflineFeatureStore
    artifacts: ArtifactStore
    online: OnlineFeatureStore | None = None


def trusted_packages(spec: FeatureSetSpec | None) -> list[str]:
    """The packages of the custom steps the spec names: the spec is trusted configuration,
    so the fitted objects of those steps may be loaded."""
    if spec is None:
        return []
    packages = []
    for step in spec.steps:
        name = next(iter(step))
        if ":" in name or "." in name:
            packages.append(name.replace(":", ".").split(".")[0])
    return sorted(set(packages))
