"""A servable as plain files in a directory: written from the stores, loaded without them.

A package (``gristmill package``) must serve its model with no metadata store and no
artifact store around, so the servable's artifacts are copied out under ``model/``, each
file named by its digest, and ``package.json`` indexes them::

    package.json          format, model, version, kind, the servable's digest, each file's
                          digest, the packages trusted to load native objects
    model/servable.json   the servable manifest, byte for byte as stored (its digest is the
                          servable's identity)
    model/<hex>.onnx      ONNX: the pipeline-and-learner graph and the learner graph
    model/<hex>.bin       native: the model bundle, the learner (skops), the fitted pipeline

``load_directory`` checks every file against its recorded digest before anything is built
from it (and the manifest against the servable's digest): a file altered after packaging is
refused with a ``ConflictError`` naming it, never loaded. Native objects load through the
trusted skops loader only, as they do from the registry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gristmill.core.ids import digest_bytes
from gristmill.errors import ConflictError, DataError, NotFoundError
from gristmill.features import serialization as pipelines
from gristmill.features.stores import FeatureStores, trusted_packages
from gristmill.learners.serialization import loads
from gristmill.servables import storage
from gristmill.servables.compiling import feature_section
from gristmill.servables.native import NativeServable
from gristmill.servables.onnx_servable import OnnxServable
from gristmill.servables.port import Servable, ServableManifest
from gristmill.stores.models import ModelVersion
from gristmill.training.bundle import Scorer, own_packages

INDEX = "package.json"
FORMAT = "gristmill.package/1"
FOLDER = "model"
MANIFEST = "servable.json"


def write_servable(
    stores: FeatureStores, version: ModelVersion, digest: str, target: Path
) -> dict[str, Any]:
    """Copy the servable ``digest`` of ``version`` (and every artifact it loads from) into
    ``target/model``; the index to write as ``package.json`` (the caller adds to it)."""
    what = f"the servable of {version.ref}"
    body = json.loads(storage.read(stores, digest, what))
    manifest = storage.from_body(body, digest)
    folder = target / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    files = {_put(folder, MANIFEST, storage.read(stores, digest, what)): digest}
    trust: list[str] = []
    named: dict[str, str] = {}
    if manifest.kind == "onnx":
        for key in ("graph", "learner_graph"):
            files[_put(folder, _name(body[key], ".onnx"), storage.read(stores, body[key], key))] = (
                body[key]
            )
    else:
        candidate = stores.metadata.candidates.get_candidate(version.candidate_id)
        trust = sorted(
            {*own_packages(candidate), *trusted_packages(feature_section(stores, candidate))}
        )
        bundle_digest = version.artifact or ""
        bundle = json.loads(storage.read(stores, bundle_digest, f"the bundle of {version.ref}"))
        parts = {"bundle": bundle_digest, "learner": bundle["learner"]}
        if bundle.get("feature_pipeline"):
            parts["pipeline"] = bundle["feature_pipeline"]
        for role, part in parts.items():
            data = storage.read(stores, part, f"the {role} of {version.ref}")
            files[_put(folder, _name(part, ".bin"), data)] = part
        named = {role: _name(part, ".bin") for role, part in parts.items()}
    return {
        "format": FORMAT,
        "model": manifest.model,
        "version": manifest.version,
        "kind": manifest.kind,
        "servable": digest,
        "files": files,
        "parts": named,
        "trust": trust,
    }


def _name(digest: str, suffix: str) -> str:
    return digest.split(":", 1)[-1] + suffix


def _put(folder: Path, name: str, data: bytes) -> str:
    (folder / name).write_bytes(data)
    return f"{FOLDER}/{name}"


def read_index(directory: Path) -> dict[str, Any]:
    """The ``package.json`` of ``directory``; ``NotFoundError``/``DataError`` saying why not."""
    path = directory / INDEX
    if not path.is_file():
        raise NotFoundError(
            f"{directory} holds no {INDEX}: it is not a gristmill package; make one with "
            "`gristmill package MODEL --out DIR`"
        )
    try:
        index: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        found = index.get("format") if isinstance(index, dict) else None
        raise DataError(f"{path} has format {found!r}, not {FORMAT}; package the model again")
    return index


def verified(directory: Path, index: dict[str, Any]) -> dict[str, bytes]:
    """Every file the index lists, its bytes checked against its recorded digest."""
    contents: dict[str, bytes] = {}
    for name, digest in index["files"].items():
        path = directory / name
        if not path.is_file():
            raise NotFoundError(f"{path} is missing from the package; package the model again")
        data = path.read_bytes()
        if digest_bytes(data) != digest:
            raise ConflictError(
                f"refusing to serve {path}: its bytes do not match the digest {digest} recorded "
                f"in {INDEX}, so it was damaged or replaced after packaging; package the model "
                "again with `gristmill package`"
            )
        contents[name] = data
    return contents


def load_directory(directory: Path, *, threads: int = 1) -> Servable:
    """The servable packaged in ``directory``, every file verified first (module docstring)."""
    index = read_index(directory)
    try:
        contents = verified(directory, index)
        manifest_file = f"{FOLDER}/{MANIFEST}"
        if index["files"].get(manifest_file) != index["servable"]:
            raise ConflictError(
                f"{directory / manifest_file} is not the servable {index['servable']} that "
                f"{INDEX} names; package the model again"
            )
        body = json.loads(contents[manifest_file])
        manifest = storage.from_body(body, index["servable"])
        if manifest.kind == "onnx":
            return OnnxServable(
                manifest,
                contents[f"{FOLDER}/{_name(body['graph'], '.onnx')}"],
                contents[f"{FOLDER}/{_name(body['learner_graph'], '.onnx')}"],
                decode_classes=bool(body.get("decode_classes")),
                threads=threads,
            )
        return _native(manifest, index, contents)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"the package in {directory} is malformed: {exc}") from exc


def _native(
    manifest: ServableManifest, index: dict[str, Any], contents: dict[str, bytes]
) -> NativeServable:
    parts = {role: contents[f"{FOLDER}/{name}"] for role, name in index["parts"].items()}
    trust = list(index.get("trust") or ())
    bundle: dict[str, Any] = json.loads(parts["bundle"])
    learner = loads(parts["learner"], also_trust=trust)
    pipeline = pipelines.loads(parts["pipeline"], also_trust=trust) if "pipeline" in parts else None
    names = [str(name) for name in bundle.get("features") or learner.feature_names]
    return NativeServable(manifest, Scorer(learner, pipeline, names, bundle))
