"""``load_servable``: a registered version's servable, compiled on first use, verified on load.

A version is named by number (``3``), alias (``champion``; ``latest`` is the newest
version) or, in one string, ``churn``, ``churn@challenger``, ``churn/3`` (``parse_ref``).
Its servable is found through the metadata store (``storage.recorded``); when it has none
yet it is compiled now (``compile_version``) unless ``compile=False``. Every artifact is
read through the artifact store, which checks its digest: bytes altered after they were
written are refused with a ``ConflictError`` that names the artifact and how to recompile.
The manifest must name the version's own bundle. A native servable's fitted objects load
only through the trusted skops loader (``load_scorer``), never plain pickle.

The heavy libraries are imported inside the functions that need them (see below).
"""

from __future__ import annotations

import json

from gristmill.errors import (
    BackendUnavailableError,
    ConfigError,
    ConflictError,
    DataError,
    GristmillError,
    MissingExtraError,
    NotFoundError,
)
from gristmill.features.stores import FeatureStores, trusted_packages
from gristmill.servables import storage
from gristmill.servables.port import Servable, ServableManifest
from gristmill.stores.models import ModelVersion

# Compiling, ONNX Runtime and the native loader (pandas, scikit-learn, skops) are imported
# when a version needs them, not with this module: a server process starts in well under
# a second and pays for a library only when it loads a version that uses it.

CHAMPION = "champion"
LATEST = "latest"


def parse_ref(text: str) -> tuple[str, int | str]:
    """``churn`` → (churn, champion); ``churn@challenger``; ``churn/3`` → (churn, 3)."""
    if "@" in text:
        model, alias = text.split("@", 1)
        return model, alias
    if "/" in text:
        model, number = text.rsplit("/", 1)
        if not (number.isascii() and number.isdigit()):
            raise ConfigError(f"{text!r}: a model version is <model>/<number>, e.g. churn/3")
        return model, int(number)
    return text, CHAMPION


def resolve_version(stores: FeatureStores, model: str, which: int | str) -> ModelVersion:
    """The registered version ``model`` ``which`` names; ``NotFoundError`` saying what exists."""
    registry = stores.metadata.registry
    if isinstance(which, int) or (which.isascii() and which.isdigit()):
        if not 0 < int(which) < 2**63:  # beyond what a database integer holds: no such version
            raise NotFoundError(f"{model} has no version {which}; see `gristmill models {model}`")
        return registry.get_version(model, int(which))
    newest = registry.list_versions(model, limit=1)
    if not newest:
        raise NotFoundError(
            f"no model named {model!r} is registered in this metadata store; list them with "
            "`gristmill models` (`gristmill doctor` says which store is in use: by default "
            ".gristmill/ in the folder the command runs in)"
        )
    if which == LATEST:
        return newest[0]
    version = registry.find_alias(model, which)
    if version is None:
        known = [f"@{a.alias}" for a in registry.list_aliases(model)]
        hint = f"its aliases: {', '.join(known)}" if known else "it has no aliases"
        raise NotFoundError(
            f"{model}@{which} points at no version ({hint}); see `gristmill models {model}`"
        )
    return version


def load_servable(
    stores: FeatureStores,
    model: str,
    which: int | str = CHAMPION,
    *,
    compile: bool = True,
    threads: int = 1,
) -> Servable:
    """The servable of ``model`` version or alias ``which`` (see the module docstring)."""
    version = resolve_version(stores, model, which)
    digest = storage.recorded(stores, version)
    if digest is None or stores.artifacts.find(digest) is None:
        if not compile:
            raise NotFoundError(
                f"{version.ref} has no compiled servable; compile it: gristmill compile "
                f"{version.ref}"
            )
        from gristmill.servables.compiling import compile_version

        return compile_version(stores, version, threads=threads).servable
    try:
        return load_digest(stores, version, digest, threads=threads)
    except NotFoundError:
        if not compile:  # a graph gone from the store (not altered): compile it again
            raise
        from gristmill.servables.compiling import compile_version

        return compile_version(stores, version, threads=threads).servable


def load_digest(
    stores: FeatureStores, version: ModelVersion, digest: str, *, threads: int = 1
) -> Servable:
    """The servable stored as ``digest`` for ``version``, every artifact verified."""
    hint = f"; compile it again from its bundle: gristmill compile {version.ref} --force"
    try:
        body = json.loads(storage.read(stores, digest, f"the servable of {version.ref}"))
        manifest = storage.from_body(body, digest)
        if manifest.bundle != version.artifact or manifest.ref != version.ref:
            raise ConflictError(
                f"servable {digest} was compiled for {manifest.ref} from bundle "
                f"{manifest.bundle}, not for {version.ref} ({version.artifact})"
            )
        if manifest.kind == "onnx":
            from gristmill.servables.onnx_servable import OnnxServable

            graph = storage.read(stores, body["graph"], f"the ONNX graph of {version.ref}")
            learner = storage.read(stores, body["learner_graph"], f"the learner of {version.ref}")
            return OnnxServable(
                manifest,
                graph,
                learner,
                decode_classes=bool(body.get("decode_classes")),
                threads=threads,
            )
    except ConflictError as exc:
        raise ConflictError(f"{exc}{hint}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"the servable of {version.ref} ({digest}) is malformed: {exc}") from exc
    from gristmill.servables.compiling import feature_section
    from gristmill.servables.native import NativeServable
    from gristmill.training.bundle import load_scorer

    candidate = stores.metadata.candidates.get_candidate(version.candidate_id)
    trust = trusted_packages(feature_section(stores, candidate))
    return NativeServable(manifest, load_scorer(stores, candidate, also_trust=trust))


def compile_for_serving(
    stores: FeatureStores, model: str, version: int, *, refused: str
) -> ServableManifest | None:
    """Compile (or load) the servable of ``model`` ``version`` now, so servers only load
    it: its manifest; ``None`` when the serving extra is not installed here (servers then
    compile it on first load). A version that cannot be served (a tampered artifact, a
    graph that does not load) is a ``ConfigError`` saying ``refused`` (what is not done:
    "no alias moves to it") and how to repair it; a store that cannot be reached is raised
    as it is (a retry may succeed)."""
    ref = f"{model}/{version}"
    try:
        return load_servable(stores, model, version).manifest
    except BackendUnavailableError:
        raise
    except MissingExtraError:
        return None
    except GristmillError as exc:
        raise ConfigError(
            f"{ref} cannot be served, so {refused}: {exc}; repair it (gristmill compile "
            f"{ref} --force) and try again"
        ) from exc
