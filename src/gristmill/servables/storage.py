"""Where compiled servables are kept: artifacts by digest, found by version through a report.

A servable is a JSON manifest in the artifact store (kind ``servable``); an ONNX servable's
two graphs are artifacts of their own (kind ``onnx``), named by digest in the manifest. The
manifest's own digest is the servable's identity. Which servable a registered version has
is recorded in the metadata store as a report (kind ``servable``, subject ``<model>/<n>``,
body naming the digest): the newest such report wins, so compiling again (``--force``)
supersedes without rewriting history. Every read goes through the artifact store, which
refuses bytes that do not match their digest.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from gristmill.core.ids import digest_json
from gristmill.errors import ConflictError, DataError, NotFoundError
from gristmill.features.stores import FeatureStores
from gristmill.servables.port import InputColumn, Parity, ServableManifest
from gristmill.stores.models import ModelVersion
from gristmill.stores.reports import Report

FORMAT = "gristmill.servable/1"
SERVABLE_KIND = "servable"
GRAPH_KIND = "onnx"
MEDIA_TYPE = "application/vnd.gristmill.servable+json"
ONNX_MEDIA_TYPE = "application/onnx"


def to_body(manifest: ServableManifest, **extra: Any) -> dict[str, Any]:
    """The JSON form of ``manifest`` (its own digest aside) plus ``extra`` loader fields."""
    body = asdict(manifest)
    del body["digest"]
    body["classes"] = None if manifest.classes is None else list(manifest.classes)
    body["libraries"] = dict(manifest.libraries)
    return {"format": FORMAT, **body, **extra}


def from_body(body: dict[str, Any], digest: str) -> ServableManifest:
    """The manifest in a stored JSON body; ``DataError`` for another format."""
    if body.get("format") != FORMAT:
        raise DataError(f"servable {digest} has format {body.get('format')!r}, not {FORMAT}")
    parity = body.get("parity")
    classes = body.get("classes")
    return ServableManifest(
        model=body["model"],
        version=int(body["version"]),
        kind=body["kind"],
        reason=body["reason"],
        digest=digest,
        bundle=body["bundle"],
        pipeline=body.get("pipeline"),
        task=body["task"],
        output=body["output"],
        inputs=tuple(InputColumn(**c) for c in body["inputs"]),
        entity=body.get("entity"),
        classes=None if classes is None else tuple(classes),
        parity=None if parity is None else Parity(**parity),
        libraries=dict(body.get("libraries") or {}),
        features=tuple(InputColumn(**c) for c in body.get("features") or ()),
        view=body.get("view"),
    )


def put_graph(stores: FeatureStores, data: bytes) -> str:
    return stores.artifacts.put(data, kind=GRAPH_KIND, media_type=ONNX_MEDIA_TYPE).digest


def put_servable(stores: FeatureStores, version: ModelVersion, body: dict[str, Any]) -> str:
    """Store the manifest, record it as ``version``'s servable; its digest."""
    data = json.dumps(body, sort_keys=True, default=str).encode()
    digest = stores.artifacts.put(data, kind=SERVABLE_KIND, media_type=MEDIA_TYPE).digest
    report = Report(
        report_id="sv_" + digest_json({"ref": version.ref, "servable": digest})[7:31],
        kind=SERVABLE_KIND,
        subject=version.ref,
        status="passed" if body["kind"] == "onnx" else "warned",
        created_at=datetime.now(UTC),
        body={"servable": digest, "kind": body["kind"], "bundle": body["bundle"]},
    )
    stores.metadata.reports.add_report(report)
    return digest


def recorded(stores: FeatureStores, version: ModelVersion) -> str | None:
    """The digest of ``version``'s newest recorded servable, or ``None``."""
    reports = stores.metadata.reports.list_reports(subject=version.ref, kind=SERVABLE_KIND, limit=1)
    return str(reports[0].body["servable"]) if reports else None


def read(stores: FeatureStores, digest: str, what: str) -> bytes:
    """The verified bytes of artifact ``digest``; a clear refusal if they were altered."""
    ref = stores.artifacts.find(digest)
    if ref is None:
        raise NotFoundError(f"{what} {digest} is not in the artifact store")
    try:
        return stores.artifacts.get(ref)
    except ConflictError as exc:
        raise ConflictError(
            f"refusing to load {what} ({digest} at {ref.uri}): its stored bytes do not "
            "match that digest, so they were damaged or replaced"
        ) from exc
