"""The prediction server in this process (its ASGI app, lifespan and all, through httpx):
the native API over real registered versions, entities from the online store, every bad
input a 4xx naming the field, promotion picked up, metrics and the prediction log."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
from palmerpenguins import load_penguins

from gristmill.config.settings import Settings, load_settings
from gristmill.core.events import MODEL_DEPLOYED, PREDICTIONS_LOGGED, Event
from gristmill.runtime.wiring import open_services, open_stores
from gristmill.servables import compile_version
from gristmill.servables.storage import recorded
from gristmill.server import reload
from gristmill.server.app import create_app
from gristmill.stores.models import ModelVersion
from gristmill.testing.registered import train_and_register, write_csv
from gristmill.training.gate import promote

pytestmark = pytest.mark.slow
NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
SECTION = {
    "entity": "penguin_id",
    "label": "species",
    "online": {},
    "steps": [
        {"impute": {"columns": NUMBERS, "strategy": "median"}},
        {"impute": {"columns": ["sex"], "strategy": "most_frequent"}},
        {"one_hot": {"columns": ["island", "sex"]}},
        {"standardize": {"columns": NUMBERS}},
        {"drop": {"columns": ["year"]}},
    ],
}


def _penguins() -> pd.DataFrame:
    frame = load_penguins()
    frame.insert(0, "penguin_id", [f"p{i:04d}" for i in range(len(frame))])
    return frame


async def _train(settings: Settings, folder: Path) -> dict[str, ModelVersion]:
    async with open_services(settings) as services:
        made = await train_and_register(
            services,
            write_csv(_penguins(), folder, "penguins"),
            model="penguins",
            section=SECTION,
            candidates=[
                {"name": "logreg", "algorithm": "logistic_regression", "params": {"C": 0.5}},
                {"name": "forest", "algorithm": "random_forest", "params": {"n_estimators": 5}},
            ],
            metric="accuracy",
            split={"strategy": "stratified", "test_size": 0.3, "seed": 7},
        )
        # one model, "birds", whose version 1 is the logistic regression
        promote(services.metadata, made["logreg"].candidate_id, "birds")
    return made


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, ModelVersion]]:
    folder = tmp_path_factory.mktemp("server")
    settings = load_settings(
        overrides={
            "home": str(folder / "home"),
            "executor": {"backend": "inline"},
            "serve": {"poll_seconds": 3600, "log_flush_seconds": 0.05, "max_rows": 50},
        }
    )
    return settings, asyncio.run(_train(settings, folder))


Serve = Callable[..., Any]


@asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            yield client


def _rows(count: int = 2, start: int = 0) -> list[dict[str, Any]]:
    frame = _penguins().drop(columns=["species"]).iloc[start : start + count]
    return json.loads(frame.to_json(orient="records"))


def _tuned(settings: Settings, **serve: Any) -> Settings:
    return settings.model_copy(update={"serve": settings.serve.model_copy(update=serve)})


async def test_rows_and_columns_answer_with_model_version_and_request_id(trained: Any) -> None:
    settings, _ = trained
    async with _serving(settings) as client:
        answer = await client.post(
            "/v1/models/birds/predict",
            json={"rows": _rows(3)},
            headers={"x-request-id": "req-42"},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == "birds" and body["version"] == 1
        assert body["request_id"] == "req-42" and answer.headers["x-request-id"] == "req-42"
        assert body["predictions"] == ["Adelie", "Adelie", "Adelie"]
        assert body["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
        assert all(abs(sum(p) - 1) < 1e-9 for p in body["probabilities"])

        frame = pd.DataFrame(_rows(3))
        columns = json.loads(frame.to_json(orient="columns"))
        columns = {k: list(v.values()) for k, v in columns.items()}
        same = await client.post("/v1/models/birds@champion/predict", json={"columns": columns})
        assert same.status_code == 200, same.text
        assert same.json()["probabilities"] == body["probabilities"]
        assert same.json()["request_id"] != "req-42"

        by_number = await client.post(
            "/v1/models/birds/versions/1/predict", json={"rows": _rows(1)}
        )
        assert by_number.json()["version"] == 1

        listed = (await client.get("/v1/models")).json()
        assert {"model": "birds", "version": 1} in [
            {k: m[k] for k in ("model", "version")} for m in listed["models"]
        ]
        assert listed["aliases"]["birds@champion"] == 1
        manifest = (await client.get("/v1/models/birds")).json()
        assert manifest["kind"] == "onnx" and manifest["entity"] == "penguin_id"
        assert (await client.get("/healthz")).json() == {"live": True}
        assert (await client.get("/readyz")).json() == {"ready": True}


async def test_entities_read_the_online_store_and_answer_missing_per_row(trained: Any) -> None:
    settings, _ = trained
    async with _serving(settings) as client:
        answer = await client.post(
            "/v1/models/birds/predict", json={"entities": ["p0000", "nobody", "p0200"]}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == ["found", "missing", "found"]
        assert body["predictions"][0] == "Adelie" and body["predictions"][1] is None
        assert body["predictions"][2] == "Gentoo"
        assert body["probabilities"][1] == [None, None, None]

        # a request column overrides the stored feature value (one per entity)
        overridden = await client.post(
            "/v1/models/birds/predict",
            json={"entities": ["p0000"], "columns": {"flipper_length_mm": [3.0]}},
        )
        assert overridden.status_code == 200, overridden.text
        assert overridden.json()["probabilities"] != body["probabilities"][:1]


def _without(name: str) -> dict[str, Any]:
    row = _rows(1)[0]
    del row[name]
    return {"rows": [row]}


def _typed(name: str, value: Any) -> dict[str, Any]:
    columns = {k: [v] for k, v in _rows(1)[0].items()}
    columns[name] = [value]
    return {"columns": columns}


def _one_row(name: str, value: Any) -> dict[str, Any]:
    return {"rows": [{**_rows(1)[0], name: value}]}


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        (_without("bill_length_mm"), 400, "bill_length_mm", "has no column"),
        (_typed("bill_length_mm", "long"), 400, "bill_length_mm", "takes numbers"),
        (_typed("bill_length_mm", "41.2"), 400, "bill_length_mm", "takes numbers"),
        (_typed("bill_length_mm", True), 400, "bill_length_mm", "takes numbers"),
        (_typed("island", 5), 400, "island", "takes text"),
        (_typed("island", {"a": 1}), 400, "island", "takes text"),
        (_one_row("island", 5), 400, "island", "row 0 holds 5"),
        (_one_row("island", {"a": 1}), 400, "island", "takes text"),
        (_one_row("bill_length_mm", True), 400, "bill_length_mm", "row 0 holds True"),
        (_one_row("bill_length_mm", [1.0]), 400, "bill_length_mm", "takes numbers"),
        (_typed("island", None), None, None, None),
        ({"rowz": []}, 400, "rowz", "unknown field"),
        ([1, 2], 400, "body", "JSON object"),
        ({"rows": "nope"}, 400, "rows", "list of objects"),
        ({"columns": {"island": "Dream"}}, 400, "island", "must be a list"),
        ({"entities": "p1"}, 400, "entities", "list of keys"),
        ({"rows": [{}] * 51}, 413, None, "more than the server takes"),
    ],
)
async def test_bad_inputs_are_4xx_naming_the_field(
    trained: Any, body: Any, status: int | None, field: str | None, words: str | None
) -> None:
    settings, _ = trained
    async with _serving(settings) as client:
        answer = await client.post("/v1/models/birds/predict", json=body)
        if status is None:  # a gap where the model imputes one: answered
            assert answer.status_code == 200, answer.text
            return
        assert answer.status_code == status, answer.text
        error = answer.json()
        assert words is not None and words in error["error"]
        if field is not None:
            assert error["field"] == field
        # and the server goes on answering
        ok = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
        assert ok.status_code == 200


async def test_unknown_models_bad_json_content_type_and_size(trained: Any) -> None:
    settings, _ = trained
    async with _serving(_tuned(settings, max_body_bytes=2048)) as client:
        rows = {"rows": _rows(1)}
        cases = [
            ("/v1/models/fish/predict", 404, "no model named 'fish'"),
            ("/v1/models/birds@nope/predict", 404, "birds@nope points at no version"),
            ("/v1/models/birds/versions/9/predict", 404, "no version 9"),
        ]
        for path, status, words in cases:
            answer = await client.post(path, json=rows)
            assert answer.status_code == status and words in answer.json()["error"], answer.text
        answer = await client.post(
            "/v1/models/birds/predict",
            content=b'{"rows": [',
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 400 and "not valid JSON" in answer.json()["error"]
        answer = await client.post(
            "/v1/models/birds/predict", content=b"a,b", headers={"content-type": "text/csv"}
        )
        assert answer.status_code == 415 and "text/csv" in answer.json()["error"]
        answer = await client.post("/v1/models/birds/predict", json={"rows": _rows(40)})
        assert answer.status_code == 413 and "max_body_bytes" in answer.json()["error"]
        nowhere = await client.get("/v1/models/birds/predict")
        assert nowhere.status_code == 405 and "GET /v1/models/birds/predict" in nowhere.text
        assert (await client.get("/v2/nothing")).json()["error"].startswith("Not Found")
        missing = await client.post(
            "/v1/models/penguins_logreg/predict",
            json={"entities": ["p0000"], "columns": {"x": [1]}},
        )
        assert missing.status_code == 400 and missing.json()["field"] == "x"


async def test_a_promotion_is_picked_up_by_a_reload(trained: Any) -> None:
    settings, made = trained
    async with _serving(settings) as client:
        first = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
        assert first.json()["version"] == 1
        async with open_services(settings) as services:
            promote(services.metadata, made["forest"].candidate_id, "birds")
        try:
            reloaded = await client.post("/admin/reload")
            assert reloaded.json()["switched"] == ["birds@champion"]
            after = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
            assert after.json()["version"] == 2
            pinned = await client.post(
                "/v1/models/birds/versions/1/predict", json={"rows": _rows(1)}
            )
            assert pinned.json()["version"] == 1
        finally:
            async with open_services(settings) as services:
                services.metadata.registry.set_alias("birds", "champion", 1)


async def test_metrics_and_the_prediction_log(trained: Any) -> None:
    settings, _ = trained
    async with _serving(settings) as client:
        for start in range(3):
            await client.post(
                "/v1/models/birds/predict",
                json={"rows": _rows(1, start)},
                headers={"x-request-id": f"logged-{start}"},
            )
        await client.post("/v1/models/birds/predict", json={"rows": [{"island": 1}]})
        entities = await client.post(
            "/v1/models/birds/predict",
            json={"entities": ["p0000", "nobody"]},
            headers={"x-request-id": "logged-entities"},
        )
        assert entities.status_code == 200, entities.text
        text = (await client.get("/metrics")).text
        assert 'gristmill_requests_total{model_name="birds",model_version="1"' in text
        assert "gristmill_errors_total{" in text
        assert "gristmill_request_latency_seconds_bucket" in text
    folder = Path(settings.home) / "predictions" / "birds" / "1"
    # one file per kind of request: raw rows' and entities' files differ in their columns
    files = [pq.read_table(f).to_pylist() for f in sorted(folder.glob("*.parquet"))]
    logged = {r["request_id"]: r for table in files for r in table}
    assert {"logged-0", "logged-1", "logged-2"} <= set(logged)
    record = logged["logged-1"]
    assert record["protocol"] == "native" and record["prediction"] == "Adelie"
    assert record["inputs"]["island"] == "Torgersen" and record["row"] == 0
    assert record["status"] is None and "features" not in record  # a raw row
    assert set(record["probabilities"]) == {"Adelie", "Chinstrap", "Gentoo"}
    # an entity request's rows: the key in inputs, the scored features apart, a status each
    rows = [r for table in files for r in table if r["request_id"] == "logged-entities"]
    assert [r["inputs"] for r in rows] == [{"penguin_id": "p0000"}, {"penguin_id": "nobody"}]
    assert [r["status"] for r in rows] == ["found", "missing"]
    found, missing = rows[0]["features"], rows[1]["features"]
    assert "island" not in rows[0]["inputs"] and len(found) > 4
    assert all(isinstance(v, float) for v in found.values())  # standardized, not raw
    assert all(v is None for v in missing.values())
    async with open_services(settings) as services:
        events = await services.bus.consume("test-log", PREDICTIONS_LOGGED, "t", max_events=100)
    assert events and events[0].event.payload["model"] == "birds"
    for event in events:
        path = Path(event.event.payload["path"])
        assert path.is_absolute() and path.exists(), path


async def test_every_failed_prediction_is_counted_by_status_and_every_call_by_size(
    trained: Any,
) -> None:
    settings, _ = trained
    async with _serving(_tuned(settings, max_batch_size=1)) as client:
        oip = await _oip_request(client, "birds", _rows(1)[0])
        assert (await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})).is_success
        assert (await client.post("/v1/models/birds/predict", json={"rows": _rows(3)})).is_success
        assert (await client.post("/v2/models/birds/infer", json=oip)).is_success
        bad = [
            ("/v1/models/birds/predict", _without("bill_length_mm"), 400),
            ("/v1/models/birds/predict", b'{"rows": [', 400),
            ("/v2/models/birds/infer", {"inputs": oip["inputs"][1:]}, 400),
            ("/invocations?model=birds", {"dataframe_records": _rows(51)}, 413),
            ("/invocations?model=birds", {"dataframe_records": [{"island": "x"}]}, 400),
            ("/v2/models/fish/infer", oip, 404),
        ]
        for path, body, status in bad:
            sent = {"content": body} if isinstance(body, bytes) else {"json": body}
            answer = await client.post(path, **sent)  # type: ignore[arg-type]
            assert answer.status_code == status, (path, answer.text)
        text = (await client.get("/metrics")).text
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))

    def value(name: str, *labels: str) -> int:
        found = [v for k, v in lines.items() if k.startswith(name) and all(x in k for x in labels)]
        assert len(found) == 1, (name, labels, found)
        return int(float(found[0]))

    birds = 'model_name="birds",model_version="1"'
    assert value("gristmill_errors_total{", birds, 'status="400"') == 3
    assert value("gristmill_errors_total{", birds, 'status="413"') == 1
    # before a version was found (malformed JSON, unknown model): under empty labels
    assert value("gristmill_errors_total{", 'model_name=""', 'status="400"') == 1
    assert value("gristmill_errors_total{", 'model_name=""', 'status="404"') == 1
    # unbatched: every call of the model observed, its rows as the size (1, 3, 1)
    assert value("gristmill_batch_size_count{", birds) == 3
    assert value("gristmill_batch_size_sum{", birds) == 5
    assert value("gristmill_batch_size_bucket{", birds, 'le="1"') == 2


async def test_a_version_that_is_not_a_number_is_said_to_be_one(trained: Any) -> None:
    settings, _ = trained
    async with _serving(settings) as client:
        answer = await client.post("/v1/models/birds/versions/abc/predict", json={"rows": []})
        assert answer.status_code == 404
        said = answer.json()["error"]
        assert "'abc' is not a version: a version is a number" in said
        assert "/v1/models/birds@ALIAS" in said


async def test_concurrent_one_row_requests_share_a_batch_and_the_cache_answers(
    trained: Any,
) -> None:
    settings, _ = trained
    tuned = _tuned(settings, max_batch_size=16, max_batch_wait_ms=5.0, cache_size=100)
    async with _serving(tuned) as client:
        rows = _rows(20)
        posts = [client.post("/v1/models/birds/predict", json={"rows": [r]}) for r in rows]
        answers = await asyncio.gather(*posts)
        assert all(a.status_code == 200 for a in answers)
        alone = await client.post("/v1/models/birds/predict", json={"rows": rows})
        assert [a.json()["predictions"][0] for a in answers] == alone.json()["predictions"]
        again = await client.post("/v1/models/birds/predict", json={"rows": [rows[0]]})
        assert again.json()["probabilities"] == answers[0].json()["probabilities"]
        text = (await client.get("/metrics")).text
    batches = [line for line in text.splitlines() if line.startswith("gristmill_batch_size_count")]
    assert batches and int(batches[0].rsplit(" ", 1)[1]) >= 1
    hits = [line for line in text.splitlines() if line.startswith("gristmill_cache_hits_total{")]
    assert hits and int(hits[0].rsplit(" ", 1)[1]) >= 1


async def test_a_tampered_servable_is_refused_and_the_others_keep_serving(trained: Any) -> None:
    settings, made = trained
    version = made["forest"]  # registered as penguins_forest/1
    async with _serving(settings) as client:
        first = await client.post(f"/v1/models/{version.model}/predict", json={"rows": _rows(1)})
        assert first.status_code == 200, first.text
    with open_stores(settings) as stores:
        digest = recorded(stores, version)
        assert digest is not None
        manifest = Path(settings.artifacts_url()) / "servable" / digest.removeprefix("sha256:")
        manifest.write_bytes(manifest.read_bytes().replace(b'"onnx"', b'"native"', 1))
    try:
        async with _serving(settings) as client:
            refused = await client.post(
                f"/v1/models/{version.model}/predict", json={"rows": _rows(1)}
            )
            assert refused.status_code == 503, refused.text
            message = refused.json()["error"]
            assert f"refusing to load the servable of {version.ref}" in message
            assert f"gristmill compile {version.ref} --force" in message
            # every protocol answers it as the native API does: 503 with the same message
            model, number = version.model, version.version
            oip = f"/v2/models/{model}/versions/{number}"
            for method, path, body in (
                ("GET", oip, None),
                ("GET", f"{oip}/ready", None),
                ("POST", f"{oip}/infer", {"inputs": []}),
                ("POST", f"/invocations?model={model}/{number}", {"dataframe_records": _rows(1)}),
                ("GET", f"/v1/models/{model}/versions/{number}", None),
            ):
                answer = await client.request(method, path, json=body)
                assert answer.status_code == 503, (path, answer.text)
                said = answer.json().get("error") or answer.json()["message"]
                assert f"refusing to load the servable of {version.ref}" in said, path
                assert answer.headers["x-request-id"], path
            ok = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
            assert ok.status_code == 200
    finally:
        with open_stores(settings) as stores:
            assert compile_version(stores, version).manifest.digest == digest


async def test_a_poll_picks_up_a_promotion_without_being_asked(trained: Any) -> None:
    settings, made = trained
    async with _serving(_tuned(settings, poll_seconds=0.1)) as client:
        first = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
        assert first.json()["version"] == 1
        async with open_services(settings) as services:
            promote(services.metadata, made["forest"].candidate_id, "birds")
        try:
            for _ in range(200):
                after = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
                assert after.status_code == 200
                if after.json()["version"] == 2:
                    break
                await asyncio.sleep(0.05)
            assert after.json()["version"] == 2
        finally:
            async with open_services(settings) as services:
                services.metadata.registry.set_alias("birds", "champion", 1)


async def test_a_server_that_stops_leaves_no_bus_consumer_group(trained: Any) -> None:
    settings, _ = trained
    group = reload.group_name()
    async with open_services(settings) as services:
        await services.bus.publish([Event(type=MODEL_DEPLOYED, key="birds", payload={})])
        async with _serving(settings):
            deadline = asyncio.get_running_loop().time() + 10
            while group not in await services.bus.groups(MODEL_DEPLOYED):
                assert asyncio.get_running_loop().time() < deadline, "the server made no group"
                await asyncio.sleep(0.05)
        assert group not in await services.bus.groups(MODEL_DEPLOYED)


def _loaded(answer: httpx.Response) -> list[str]:
    return [f"{m['model']}/{m['version']}" for m in answer.json()["models"]]


async def test_an_unloaded_version_is_loaded_again_on_next_use(trained: Any) -> None:
    settings, _ = trained
    async with _serving(settings) as client:
        first = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
        pinned = await client.post("/v1/models/birds/versions/1/predict", json={"rows": _rows(1)})
        assert first.status_code == pinned.status_code == 200
        assert _loaded(await client.get("/v1/models")) == ["birds/1"]
        unloaded = await client.post("/admin/unload", json={"ref": "birds/1"})
        assert unloaded.status_code == 200, unloaded.text
        assert unloaded.json() == {"unloaded": ["birds/1"], "loaded": []}
        assert (await client.get("/v1/models")).json()["models"] == []
        again = await client.post("/admin/unload", json={"ref": "birds@champion"})
        assert again.json()["unloaded"] == []  # nothing loaded: nothing to do
        after = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
        assert after.status_code == 200 and after.json()["version"] == 1
        assert _loaded(await client.get("/v1/models")) == ["birds/1"]
        by_alias = await client.post("/admin/unload", json={"ref": "birds"})
        assert by_alias.json()["unloaded"] == ["birds/1"]
        bad = await client.post("/admin/unload", json={"model": "birds"})
        assert bad.status_code == 400 and bad.json()["field"] == "ref"
        not_json = await client.post("/admin/unload", content=b"birds")
        assert not_json.status_code == 400


async def test_the_token_guards_admin_always_and_predictions_when_asked(trained: Any) -> None:
    settings, _ = trained
    async with _serving(_tuned(settings, token="s3cret")) as client:
        for path, body in (("/admin/reload", None), ("/admin/unload", {"ref": "birds"})):
            refused = await client.post(path, json=body)
            assert refused.status_code == 401 and "Bearer" in refused.json()["error"], path
            wrong = await client.post(path, json=body, headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 401, path
            allowed = await client.post(path, json=body, headers={"authorization": "Bearer s3cret"})
            assert allowed.status_code == 200, (path, allowed.text)
        open_predict = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
        assert open_predict.status_code == 200
    guarded = _tuned(settings, token="s3cret", token_for_predictions=True)
    async with _serving(guarded) as client:
        # metadata and health stay open; the OIP request is built from it
        oip = await _oip_request(client, "birds", _rows(1)[0])
        for path in ("/v1/models/birds", "/v2/models/birds", "/v2/models/birds/ready", "/ping"):
            assert (await client.get(path)).status_code == 200, path
        predictions = [
            ("/v1/models/birds/predict", {"json": {"rows": _rows(1)}}),
            ("/v1/models/birds/versions/1/predict", {"json": {"rows": _rows(1)}}),
            ("/v2/models/birds/infer", {"json": oip}),
            ("/v2/models/birds/versions/1/infer", {"json": oip}),
            ("/invocations?model=birds", {"json": {"dataframe_records": _rows(1)}}),
            ("/invocations?model=birds/1", {"content": _csv(_rows(1)), "headers": _CSV}),
            ("/v1/jobs", {"json": {"model": "birds", "input": "nowhere.csv"}}),
        ]
        for path, request in predictions:
            given = request.get("headers", {})
            for token, words in ((None, "has none"), ("nope", "is wrong")):
                headers = given if token is None else {**given, "authorization": f"Bearer {token}"}
                refused = await client.post(path, **{**request, "headers": headers})
                assert refused.status_code == 401, (path, token, refused.text)
                assert refused.headers["www-authenticate"].startswith("Bearer"), path
                said = refused.json().get("error") or refused.json()["message"]
                assert words in said and "Bearer" in said, (path, said)
            headers = {**given, "authorization": "Bearer s3cret"}
            allowed = await client.post(path, **{**request, "headers": headers})
            assert allowed.status_code != 401, (path, allowed.text)
            if not path.startswith("/v1/jobs"):
                assert allowed.status_code == 200, (path, allowed.text)
        text = (await client.get("/metrics")).text
    refusals = 'gristmill_errors_total{model_name="",model_version=""'
    assert any(line.startswith(refusals) and 'status="401"' in line for line in text.split("\n"))


_CSV = {"content-type": "text/csv"}


def _csv(rows: list[dict[str, Any]]) -> bytes:
    return pd.DataFrame(rows).to_csv(index=False).encode()


async def _oip_request(client: httpx.AsyncClient, model: str, row: dict[str, Any]) -> Any:
    """An OIP inference request of one row, its tensors typed as the model's metadata says."""
    metadata = (await client.get(f"/v2/models/{model}")).json()
    inputs = [
        {"name": t["name"], "datatype": t["datatype"], "shape": [1], "data": [row[t["name"]]]}
        for t in metadata["inputs"]
    ]
    return {"inputs": inputs}


async def test_the_openapi_document_describes_every_endpoint(trained: Any) -> None:
    settings, _ = trained
    async with _serving(settings) as client:
        document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    for path, method in [
        ("/v1/models/{ref}/predict", "post"),
        ("/v1/models/{name}/versions/{version}/predict", "post"),
        ("/v1/models", "get"),
        ("/v1/models/{ref}", "get"),
        ("/v1/models/{name}/versions/{version}", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/admin/reload", "post"),
        ("/admin/unload", "post"),
        ("/openapi.json", "get"),
        ("/v2/models/{name}/infer", "post"),
        ("/v2/models/{name}/versions/{version}/infer", "post"),
        ("/invocations", "post"),
        ("/ping", "get"),
        ("/v1/feedback", "post"),
    ]:
        assert method in paths[path], path
    predict = paths["/v1/models/{name}/versions/{version}/predict"]["post"]
    assert [(p["name"], p["in"]) for p in predict["parameters"]] == [
        ("name", "path"),
        ("version", "path"),
        ("x-gristmill-latency-budget-ms", "header"),
    ]
    assert predict["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictRequest"
    }
    assert {"400", "404", "413", "415"} <= set(predict["responses"])
    assert set(document["components"]["schemas"]) >= {"Error", "PredictRequest"}
    schemas = document["components"]["schemas"]
    for path in ("/v2/models/{name}/infer", "/invocations", "/admin/unload", "/v1/feedback"):
        body = paths[path]["post"]["requestBody"]["content"]
        assert body["application/json"]["schema"]["$ref"].startswith("#/components/"), path
        assert "400" in paths[path]["post"]["responses"], path
    assert "text/csv" in paths["/invocations"]["post"]["requestBody"]["content"]
    assert set(schemas["InferRequest"]["properties"]) >= {"inputs", "parameters", "outputs"}
    tensor = schemas["InferRequest"]["properties"]["inputs"]["items"]["properties"]
    assert set(tensor) >= {"name", "shape", "datatype", "data"}
    fields = {next(iter(s["required"])) for s in schemas["InvocationsRequest"]["oneOf"]}
    assert fields == {"dataframe_split", "dataframe_records", "instances", "inputs"}
    assert paths["/admin/reload"]["post"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ] == {"$ref": "#/components/schemas/ReloadResponse"}
    infer = paths["/v2/models/{name}/versions/{version}/infer"]["post"]
    assert [p["name"] for p in infer["parameters"]] == ["name", "version"]


async def test_feedback_naming_an_unknown_model_is_refused_and_blank_budgets_too(
    trained: Any,
) -> None:
    settings, _ = trained
    async with _serving(settings) as client:
        outcome = {"request_id": "r1", "actual": "Adelie"}
        unknown = await client.post("/v1/feedback", json={"model": "nosuch", "outcomes": [outcome]})
        assert unknown.status_code == 404, unknown.text
        assert "no model named 'nosuch' in the registry" in unknown.json()["error"]
        assert "birds" in unknown.json()["error"]  # what is registered
        known = await client.post("/v1/feedback", json={"model": "birds", "outcomes": [outcome]})
        assert known.status_code == 202, known.text
        anonymous = await client.post("/v1/feedback", json={"outcomes": [outcome]})
        assert anonymous.status_code == 202, anonymous.text

        for blank in (" ", "", "\t"):
            answer = await client.post(
                "/v1/models/birds/predict",
                json={"rows": _rows(1)},
                headers={"x-gristmill-latency-budget-ms": blank},
            )
            assert answer.status_code == 400, (blank, answer.text)
            assert answer.json()["field"] == "x-gristmill-latency-budget-ms"
            assert "x-gristmill-latency-budget-ms" in answer.json()["error"]


DEEP = b"[" * 200_000 + b"]" * 200_000


async def test_a_body_nested_too_deeply_is_a_400_and_the_server_goes_on(trained: Any) -> None:
    settings, _ = trained
    async with _serving(settings) as client:
        for body in (b'{"rows":' + DEEP + b"}", b'{"rows": [NaN, ' + DEEP + b"]}"):
            answer = await client.post(
                "/v1/models/birds/predict",
                content=body,
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 400, answer.text[:300]
            assert "nested too deeply" in answer.json()["error"]
        ok = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
        assert ok.status_code == 200, ok.text


def _literal(body: dict[str, Any], literal: bytes) -> bytes:
    """``body`` as JSON with its ``"@@"`` value written as ``literal`` (not JSON itself)."""
    return json.dumps(body).encode().replace(b'"@@"', literal)


async def test_nan_and_infinities_in_a_native_body_are_named_by_column_and_row(
    trained: Any,
) -> None:
    """As in the Open Inference Protocol and MLflow's: NaN is a missing value (imputed
    here), an infinity a 400 naming the column and the row, in rows and columns alike,
    small bodies and large ones (read by json_numbers first)."""
    settings, _ = trained
    async with _serving(_tuned(settings, max_rows=1000)) as client:
        rows = _rows(2)
        rows[1]["bill_length_mm"] = "@@"
        columns = {k: [r[k] for r in rows] for k in rows[0]}
        many = _rows(340)  # numbers first, written long: a large body of mostly numbers
        large: dict[str, list[Any]] = {
            name: [(r[name] or 40.0) + 1e-9 for r in many] for name in NUMBERS
        }
        large |= {name: [r[name] for r in many] for name in ("island", "sex", "year")}
        large["bill_length_mm"][300] = "@@"
        cases = (
            ({"rows": rows}, 1, 2),
            ({"columns": columns}, 1, 2),
            ({"columns": large}, 300, 340),
        )
        for body, row, count in cases:
            for literal in (b"Infinity", b"-Infinity", b"1e400"):
                data = _literal(body, literal)
                answer = await client.post(
                    "/v1/models/birds/predict",
                    content=data,
                    headers={"content-type": "application/json"},
                )
                assert answer.status_code == 400, (literal, answer.text)
                error = answer.json()
                assert error["field"] == "bill_length_mm" and error["row"] == row, error
                assert "finite" in error["error"], error
            answer = await client.post(
                "/v1/models/birds/predict",
                content=_literal(body, b"NaN"),
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 200, answer.text  # missing: the model imputes it
            assert len(answer.json()["predictions"]) == count


async def test_compressed_bodies_are_read_in_every_protocol_and_bombs_refused(
    trained: Any,
) -> None:
    settings, _ = trained
    async with _serving(_tuned(settings, max_body_bytes=100_000)) as client:
        native = json.dumps({"rows": _rows(2)}).encode()
        mlflow = json.dumps({"dataframe_records": _rows(2)}).encode()
        for path, body in (
            ("/v1/models/birds/predict", native),
            ("/invocations?model=birds", mlflow),
        ):
            for encoding, packed in (
                ("gzip", gzip.compress(body)),
                ("deflate", zlib.compress(body)),
                ("identity", body),
            ):
                headers = {"content-type": "application/json", "content-encoding": encoding}
                answer = await client.post(path, content=packed, headers=headers)
                assert answer.status_code == 200, (path, encoding, answer.text)
            headers = {"content-type": "application/json", "content-encoding": "br"}
            answer = await client.post(path, content=body, headers=headers)
            assert answer.status_code == 415, (path, answer.text)
            said = answer.json().get("error") or answer.json()["message"]
            assert "Content-Encoding 'br'" in said
            bomb = gzip.compress(b'{"rows": [' + b" " * 40_000_000 + b"]}")
            headers = {"content-type": "application/json", "content-encoding": "gzip"}
            answer = await client.post(path, content=bomb, headers=headers)
            assert answer.status_code == 413, (path, answer.text)
            said = answer.json().get("error") or answer.json()["message"]
            assert "once decompressed" in said
            broken = await client.post(path, content=gzip.compress(body)[:-12], headers=headers)
            assert broken.status_code == 400, (path, broken.text)


async def test_unload_lets_go_of_a_version_on_every_route_so_it_is_read_again(
    trained: Any,
) -> None:
    """A model answered per its traffic policy: unloading it by name, or its version by
    number, drops the version from the policy's route too, so the next request reads the
    registry again — and refuses an artifact altered in the meantime."""
    settings, made = trained
    version = made["forest"]  # penguins_forest/1
    model, ref = version.model, version.ref
    predict = f"/v1/models/{model}/predict"
    async with _serving(settings) as client:
        put = await client.put(f"/admin/policies/{model}", json={"primary": 1, "reason": "t"})
        assert put.status_code == 200, put.text
        for name in (model, ref):
            assert (await client.post(predict, json={"rows": _rows(1)})).status_code == 200
            assert ref in _loaded(await client.get("/v1/models"))
            unloaded = await client.post("/admin/unload", json={"ref": name})
            assert unloaded.status_code == 200, unloaded.text
            assert unloaded.json()["unloaded"] == [ref], name
            assert ref not in _loaded(await client.get("/v1/models")), name
        assert (await client.post(predict, json={"rows": _rows(1)})).status_code == 200
        with open_stores(settings) as stores:
            digest = recorded(stores, version)
        assert digest is not None
        unloaded = await client.post("/admin/unload", json={"ref": ref})
        assert unloaded.json()["unloaded"] == [ref]
        manifest = Path(settings.artifacts_url()) / "servable" / digest.removeprefix("sha256:")
        kept = manifest.read_bytes()
        manifest.write_bytes(kept.replace(b'"onnx"', b'"native"', 1))
        try:
            for method, path in (
                ("POST", predict),
                ("GET", f"/v2/models/{model}/ready"),
                ("POST", f"/v1/models/{model}/versions/1/predict"),
            ):
                answer = await client.request(method, path, json={"rows": _rows(1)})
                assert answer.status_code == 503, (path, answer.text)
            ok = await client.post("/v1/models/birds/predict", json={"rows": _rows(1)})
            assert ok.status_code == 200
        finally:
            manifest.write_bytes(kept)
