"""The server of one packaged version (``DirectoryModels`` and its app), with a servable of
its own: it answers its one version under the names it may have, refuses others and entity
keys with a clear message, and speaks the same protocols as ``gristmill serve``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import numpy as np
import pytest

from gristmill.config.settings import ServeSettings, Settings
from gristmill.errors import DataError, NotFoundError
from gristmill.servables.port import InputColumn, Predictions, ServableManifest
from gristmill.server.standalone import DirectoryModels, create_directory_app

MANIFEST = ServableManifest(
    model="churn",
    version=3,
    kind="onnx",
    reason="",
    digest="sha256:abc",
    bundle="b",
    pipeline=None,
    task="regression",
    output="number",
    inputs=(InputColumn("x", "float64", nullable=False),),
)


class Doubling:
    """Answers twice x."""

    manifest = MANIFEST

    def predict(self, columns: Mapping[str, Any]) -> Predictions:
        return Predictions(np.asarray(columns["x"], dtype=np.float64) * 2)

    def predict_features(self, columns: Mapping[str, Any]) -> Predictions:
        return self.predict(columns)


def _models() -> DirectoryModels:
    return DirectoryModels(ServeSettings(), Doubling(), aliases=["challenger"])


def test_its_one_version_answers_by_number_and_by_the_aliases_it_has() -> None:
    models = _models()
    for asked in ({"version": 3}, {"alias": "champion"}, {"alias": "challenger"}, {}):
        served = asyncio.run(models.find("churn", **asked))  # type: ignore[arg-type]
        assert served.manifest.ref == "churn/3"
    assert models.aliases() == {"churn@champion": 3, "churn@latest": 3, "churn@challenger": 3}
    assert [m.ref for m in models.list()] == ["churn/3"]


@pytest.mark.parametrize(
    ("model", "asked", "message"),
    [
        ("other", {}, "no model named 'other': this package serves churn/3 only"),
        ("churn", {"version": 2}, "churn has no version 2 here"),
        ("churn", {"alias": "staging"}, "churn@staging is not in this package"),
    ],
)
def test_anything_else_is_not_found_naming_what_it_serves(
    model: str, asked: dict[str, Any], message: str
) -> None:
    with pytest.raises(NotFoundError, match=message):
        asyncio.run(_models().find(model, **asked))


async def test_the_app_speaks_the_native_api_and_oip_and_refuses_entities() -> None:
    app = create_directory_app(_models(), Settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://package") as client:
            assert (await client.get("/readyz")).json() == {"ready": True}
            assert (await client.get("/v2/health/ready")).status_code == 200
            rows = {"rows": [{"x": 1.5}, {"x": -2}]}
            answer = await client.post("/v1/models/churn/predict", json=rows)
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == [3.0, -4.0]
            tensor = {"name": "x", "datatype": "FP64", "shape": [1], "data": [2.0]}
            infer = await client.post("/v2/models/churn/infer", json={"inputs": [tensor]})
            assert infer.status_code == 200 and infer.json()["outputs"][0]["data"] == [4.0]
            refused = await client.post("/v1/models/churn/predict", json={"entities": ["c1"]})
            assert refused.status_code == 400
            assert "no online feature store" in refused.json()["error"]
            other = await client.post("/v1/models/other/predict", json={"rows": []})
            assert other.status_code == 404


def test_entities_are_refused_before_any_store_is_asked() -> None:
    models = _models()
    served = asyncio.run(models.find("churn"))
    with pytest.raises(DataError, match="send the raw columns of churn/3"):
        asyncio.run(models.predict_entities(served, ["c1"], protocol="native", request_id="r"))
