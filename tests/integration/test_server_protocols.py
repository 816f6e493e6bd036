"""The Open Inference Protocol and the MLflow scoring protocol, served by a real uvicorn over
real servables, answer as the servables do, spoken to by the clients people use:
``tritonclient.http`` (JSON and binary tensors) and plain HTTP with MLflow's documented
payloads; every bad request is a 4xx naming what was wrong."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as triton
import uvicorn
from palmerpenguins import load_penguins
from sklearn.datasets import load_breast_cancer, load_diabetes
from starlette.applications import Starlette
from tritonclient.utils import InferenceServerException

from gristmill.config.settings import load_settings
from gristmill.errors import NotFoundError
from gristmill.runtime.wiring import open_services, open_stores
from gristmill.servables import Predictions, Servable, ServableManifest, load_servable
from gristmill.server import json_numbers
from gristmill.server.port import Served
from gristmill.server.protocols import mlflow, oip
from gristmill.testing.registered import train_and_register, write_csv

pytestmark = pytest.mark.slow
NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


@dataclass
class Held:
    """A ``ServedModels`` over servables loaded up front (the real one is the server's)."""

    servables: dict[str, dict[int, Servable]]
    aliases: dict[str, dict[str, int]]
    calls: list[tuple[str, str, int]] = field(default_factory=list)
    failures: list[tuple[str | None, int]] = field(default_factory=list)
    is_ready: bool = True

    def ready(self) -> bool:
        return self.is_ready

    def failed(self, served: Served | None, status: int, seconds: float) -> None:
        self.failures.append((None if served is None else served.asked, status))

    async def find(
        self,
        model: str,
        *,
        version: int | None = None,
        alias: str | None = None,
        key: str | None = None,  # no traffic policies here: @champion
    ) -> Served:
        if model not in self.servables:
            raise NotFoundError(f"no model named {model!r} is registered")
        if version is None:
            alias = alias or "champion"
            if alias not in self.aliases[model]:
                raise NotFoundError(f"{model}@{alias} points at no version")
            version = self.aliases[model][alias]
        if version not in self.servables[model]:
            raise NotFoundError(f"model {model!r} has no version {version}")
        return Served(self.servables[model][version], f"{model}/{version}")

    def list(self) -> list[ServableManifest]:
        return [s.manifest for held in self.servables.values() for s in held.values()]

    async def predict(
        self,
        served: Served,
        columns: Mapping[str, np.ndarray],
        *,
        protocol: str,
        request_id: str,
    ) -> Predictions:
        self.calls.append((protocol, request_id, len(next(iter(columns.values())))))
        return served.servable.predict(columns)


@dataclass
class Running:
    url: str
    host: str
    models: Held
    frames: dict[str, pd.DataFrame]


def _frames() -> dict[str, pd.DataFrame]:
    cancer = load_breast_cancer(as_frame=True).frame
    cancer.columns = [c.replace(" ", "_") for c in cancer.columns]
    return {
        "penguins_logreg": load_penguins(),
        "diabetes_linear": load_diabetes(as_frame=True, scaled=False).frame,
        "filtered_logreg": cancer,
    }


async def _train(settings: Any, folder: Path) -> None:
    frames = _frames()
    penguins, cancer = frames["penguins_logreg"], frames["filtered_logreg"]
    logreg = [{"name": "logreg", "algorithm": "logistic_regression"}]
    async with open_services(settings) as services:
        await train_and_register(
            services,
            write_csv(penguins, folder, "penguins"),
            model="penguins",
            section={
                "label": "species",
                "steps": [
                    {"impute": {"columns": NUMBERS, "strategy": "median"}},
                    {"impute": {"columns": ["sex"], "strategy": "most_frequent"}},
                    {"one_hot": {"columns": ["island", "sex"]}},
                    {"standardize": {"columns": NUMBERS}},
                ],
            },
            candidates=logreg,
            metric="accuracy",
            split={"strategy": "stratified", "test_size": 0.3, "seed": 7},
        )
        await train_and_register(
            services,
            write_csv(load_diabetes(as_frame=True, scaled=False).frame, folder, "diabetes"),
            model="diabetes",
            section={"label": "target", "steps": [{"scale": {"columns": ["bmi", "bp"]}}]},
            candidates=[{"name": "linear", "algorithm": "linear_regression"}],
            metric="rmse",
        )
        await train_and_register(
            services,
            write_csv(cancer[["mean_radius", "mean_texture", "target"]], folder, "cancer"),
            model="filtered",
            section={"label": "target", "steps": [{"filter": {"expr": "mean_radius > 12"}}]},
            candidates=logreg,
            metric="accuracy",
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("protocols")
    settings = load_settings(
        overrides={"home": str(folder / "home"), "executor": {"backend": "inline"}}
    )
    asyncio.run(_train(settings, folder))
    names = ("penguins_logreg", "diabetes_linear", "filtered_logreg")
    with open_stores(settings) as stores:
        servables = {name: {1: load_servable(stores, name)} for name in names}
    models = Held(servables, {name: {"champion": 1} for name in names})
    app = Starlette(routes=[*oip.routes(models), *mlflow.routes(models)])
    with _uvicorn(app) as host:
        yield Running(f"http://{host}", host, models, _frames())


@contextmanager
def _uvicorn(app: Starlette) -> Iterator[str]:
    """``app`` served by a real uvicorn on a free port of localhost: its ``host:port``."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    host = f"127.0.0.1:{sock.getsockname()[1]}"
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait_until(lambda: uv.started)
        yield host
    finally:
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _wait_until(condition: Any, timeout: float = 10.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("the server did not start")


@pytest.fixture
def client(server: Running) -> Iterator[triton.InferenceServerClient]:
    with triton.InferenceServerClient(server.host) as made:
        yield made


def _rows(server: Running, model: str, count: int) -> pd.DataFrame:
    frame = server.frames[model]
    if model == "penguins_logreg":  # rows with gaps where the model fills them
        gaps = frame[frame["sex"].isna()]
        return pd.concat([gaps, frame.dropna()]).head(count).reset_index(drop=True)
    return frame.head(count).reset_index(drop=True)


def _servable(server: Running, model: str) -> Servable:
    return server.models.servables[model][1]


def _columns(servable: Servable, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for column in servable.manifest.inputs:
        values = rows[column.name]
        if column.type == "string":
            out[column.name] = values.astype(object).where(values.notna(), None).to_numpy()
        elif column.type == "int64":
            out[column.name] = values.to_numpy(dtype=np.int64)
        else:
            out[column.name] = values.to_numpy(dtype=np.float64)
    return out


def _inputs(
    servable: Servable, rows: pd.DataFrame, *, binary: bool, column_shape: bool = False
) -> list[triton.InferInput]:
    inputs = []
    for column in servable.manifest.inputs:
        values = _columns(servable, rows)[column.name]
        datatype = {"string": "BYTES", "int64": "INT64"}.get(column.type, "FP64")
        if datatype == "BYTES":
            # tritonclient sends text as bytes; a missing text is an empty one
            values = np.array([(v or "").encode() for v in values], dtype=object)
        shape = [len(rows), 1] if column_shape else [len(rows)]
        made = triton.InferInput(column.name, shape, datatype)
        made.set_data_from_numpy(values.reshape(shape), binary_data=binary)
        inputs.append(made)
    return inputs


# --- Open Inference Protocol ---------------------------------------------------------------


def test_tritonclient_health_and_metadata(
    server: Running, client: triton.InferenceServerClient
) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    assert client.is_model_ready("penguins_logreg")
    assert client.is_model_ready("penguins_logreg", "1")
    assert client.is_model_ready("penguins_logreg@champion")
    assert not client.is_model_ready("nope")
    assert not client.is_model_ready("penguins_logreg", "7")

    manifest = _servable(server, "penguins_logreg").manifest
    metadata = client.get_model_metadata("penguins_logreg")
    assert metadata == client.get_model_metadata("penguins_logreg", "1")
    assert metadata["name"] == "penguins_logreg" and metadata["versions"] == ["1"]
    assert metadata["platform"] == f"gristmill_{manifest.kind}"
    inputs = {i["name"]: (i["datatype"], i["shape"]) for i in metadata["inputs"]}
    assert inputs == {
        "island": ("BYTES", [-1]),
        **{n: ("FP64", [-1]) for n in NUMBERS},
        "sex": ("BYTES", [-1]),
        "year": ("INT64", [-1]),
    }
    assert [i["name"] for i in metadata["inputs"]] == [c.name for c in manifest.inputs]
    predict, proba = metadata["outputs"]
    assert (predict["name"], predict["datatype"], predict["shape"]) == ("predict", "BYTES", [-1])
    assert (proba["name"], proba["datatype"], proba["shape"]) == ("predict_proba", "FP64", [-1, 3])
    assert proba["parameters"]["classes"] == ["Adelie", "Chinstrap", "Gentoo"]

    regression = client.get_model_metadata("diabetes_linear")
    assert [(o["name"], o["datatype"]) for o in regression["outputs"]] == [("predict", "FP64")]
    with pytest.raises(InferenceServerException, match="no model named 'nope'") as missing:
        client.get_model_metadata("nope")
    assert missing.value.status() == "404"
    with pytest.raises(InferenceServerException, match="has no version 7") as version:
        client.get_model_metadata("penguins_logreg", "7")
    assert version.value.status() == "404"


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_answers_as_the_servable_does(
    server: Running, client: triton.InferenceServerClient, binary: bool
) -> None:
    servable = _servable(server, "penguins_logreg")
    rows = _rows(server, "penguins_logreg", 25)
    expected = servable.predict(_columns(servable, rows))
    assert rows["sex"].isna().any()  # gaps the model imputes travel too

    outputs = [
        triton.InferRequestedOutput("predict", binary_data=binary),
        triton.InferRequestedOutput("predict_proba", binary_data=binary),
    ]
    result = client.infer(
        "penguins_logreg",
        _inputs(servable, rows, binary=binary),
        outputs=outputs,
        request_id="r-1",
    )
    answer = result.get_response()
    assert (answer["model_name"], answer["model_version"], answer["id"]) == (
        "penguins_logreg",
        "1",
        "r-1",
    )
    classes = result.as_numpy("predict")
    assert classes is not None and classes.shape == (25,)
    text = [c.decode() if isinstance(c, bytes) else c for c in classes]
    assert text == list(expected.values)
    proba = result.as_numpy("predict_proba")
    assert proba is not None and expected.probabilities is not None
    np.testing.assert_array_equal(proba, expected.probabilities)
    assert server.models.calls[-1][::2] == ("oip", 25)


def test_infer_binary_by_default_and_column_shapes(
    server: Running, client: triton.InferenceServerClient
) -> None:
    """No outputs named: tritonclient asks for every output in binary. Inputs of shape
    [rows, 1], and FP32 numbers for FP64 columns, are taken as well."""
    servable = _servable(server, "diabetes_linear")
    rows = _rows(server, "diabetes_linear", 40)
    expected = servable.predict(_columns(servable, rows))
    inputs = _inputs(servable, rows, binary=True, column_shape=True)
    result = client.infer("diabetes_linear", inputs)
    assert [o["parameters"]["binary_data_size"] for o in result.get_response()["outputs"]] == [
        40 * 8
    ]
    predict = result.as_numpy("predict")
    assert predict is not None and predict.dtype == np.float64
    np.testing.assert_allclose(predict, expected.values)

    narrow = []
    for column in servable.manifest.inputs:
        made = triton.InferInput(column.name, [len(rows)], "FP32")
        made.set_data_from_numpy(rows[column.name].to_numpy(dtype=np.float32))
        narrow.append(made)
    again = client.infer("diabetes_linear", narrow).as_numpy("predict")
    assert again is not None
    np.testing.assert_allclose(again, expected.values, rtol=1e-4)

    # gzip bodies (tritonclient's request compression) are read too
    zipped = client.infer("diabetes_linear", inputs, request_compression_algorithm="gzip")
    np.testing.assert_array_equal(zipped.as_numpy("predict"), predict)


def test_rows_a_filter_rejects_are_flagged(
    server: Running, client: triton.InferenceServerClient
) -> None:
    servable = _servable(server, "filtered_logreg")
    rows = _rows(server, "filtered_logreg", 30)
    expected = servable.predict(_columns(servable, rows))
    assert expected.rejected is not None and expected.rejected.any()
    result = client.infer("filtered_logreg", _inputs(servable, rows, binary=True))
    rejected = result.as_numpy("rejected")
    assert rejected is not None
    np.testing.assert_array_equal(rejected, expected.rejected)
    predict = result.as_numpy("predict")
    assert predict is not None
    kept = ~expected.rejected
    np.testing.assert_array_equal(predict[kept], expected.values[kept].astype(np.int64))


def _post(server: Running, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(server.url + path, content=data, headers=headers or {}, timeout=10)


def _oip_payload(
    servable: Servable, rows: pd.DataFrame, **changes: dict[str, Any]
) -> dict[str, Any]:
    inputs = []
    for column in servable.manifest.inputs:
        values = _columns(servable, rows)[column.name]
        datatype = {"string": "BYTES", "int64": "INT64"}.get(column.type, "FP64")
        data = [None if v is None or v != v else v for v in values.tolist()]
        tensor = {"name": column.name, "datatype": datatype, "shape": [len(rows)], "data": data}
        inputs.append({**tensor, **changes.get(column.name, {})})
    return {"inputs": inputs}


def test_bad_inference_requests_are_4xx_naming_the_field(server: Running) -> None:
    servable = _servable(server, "penguins_logreg")
    rows = _rows(server, "penguins_logreg", 3)
    url = "/v2/models/penguins_logreg/infer"
    good = _oip_payload(servable, rows)
    assert _post(server, url, good).status_code == 200

    def refused(body: Any, status: int, *words: str, **headers: str) -> None:
        answer = _post(server, url, body, headers)
        assert answer.status_code == status, answer.text
        message = answer.json()["error"]
        for word in words:
            assert word in message, message

    missing = {"inputs": [t for t in good["inputs"] if t["name"] != "sex"]}
    refused(missing, 400, "input 'sex' is missing", "island")
    unknown = {"inputs": [*good["inputs"], {**good["inputs"][0], "name": "colour"}]}
    refused(unknown, 400, "input 'colour' is not an input of model penguins_logreg/1")
    refused(_oip_payload(servable, rows, year={"datatype": "BYTES"}), 400, "'year'", "INT64")
    refused(_oip_payload(servable, rows, island={"datatype": "FP64"}), 400, "'island'", "BYTES")
    text_in_numbers = {"data": ["a", "b", "c"]}
    refused(_oip_payload(servable, rows, body_mass_g=text_in_numbers), 400, "'body_mass_g'")
    refused(_oip_payload(servable, rows, year={"data": [2007, 2008.5, 2009]}), 400, "'year'")
    refused(_oip_payload(servable, rows, sex={"shape": [3, 2]}), 400, "'sex'", "shape")
    refused(_oip_payload(servable, rows, sex={"shape": [4]}), 400, "'sex' has 4 row(s)")
    assert _post(server, url, _oip_payload(servable, rows, sex={"shape": [3, 1]})).is_success
    two_rows = {"shape": [2], "data": [1.0, 2.0]}
    refused(_oip_payload(servable, rows, bill_depth_mm=two_rows), 400, "'bill_depth_mm'", "row")
    # a model that cannot fill a gap refuses it, naming the column (here: year)
    refused(_oip_payload(servable, rows, year={"data": [2007, None, 2009]}), 400, "'year'")
    refused(b"{not json", 400, "not valid JSON")
    refused(b"[1, 2]", 400, "JSON object")
    refused({"inputs": []}, 400, "no 'inputs'", "island")
    refused({**good, "outputs": [{"name": "score"}]}, 400, "output 'score'", "predict_proba")
    header = orjson.dumps(good)
    refused(
        header,
        400,
        "Inference-Header-Content-Length",
        **{"Inference-Header-Content-Length": str(len(header) + 5)},
    )
    binary = _oip_payload(servable, rows)
    binary["inputs"][0] = {k: v for k, v in binary["inputs"][0].items() if k != "data"} | {
        "parameters": {"binary_data_size": 12}
    }
    head = orjson.dumps(binary)
    refused(
        head + b"\x01\x00",
        400,
        "binary_data_size",
        **{"Inference-Header-Content-Length": str(len(head))},
    )
    refused(
        head + b"\x01\x00\x00\x00a" + b"\x00" * 7,
        400,
        "'island'",
        **{"Inference-Header-Content-Length": str(len(head))},
    )
    refused(gzip.compress(b"x" * 100)[:-12], 400, "gzip", **{"Content-Encoding": "gzip"})
    refused(b"{}", 415, "Content-Encoding 'br'", **{"Content-Encoding": "br"})
    zipped = gzip.compress(orjson.dumps(good))
    assert _post(server, url, zipped, {"Content-Encoding": "gzip"}).status_code == 200
    small = Starlette(routes=oip.routes(server.models, max_bytes=len(orjson.dumps(good)) - 1))

    async def too_large() -> httpx.Response:
        transport = httpx.ASGITransport(app=small)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            body = gzip.compress(orjson.dumps(good))
            return await http.post(url, content=body, headers={"Content-Encoding": "gzip"})

    answer = asyncio.run(too_large())
    assert answer.status_code == 413 and "once decompressed" in answer.json()["error"]
    as_sent = asyncio.run(_asgi_post(small, url, orjson.dumps(good) + b" " * 64))
    assert as_sent.status_code == 413, as_sent.text
    assert "serve.max_body_bytes" in as_sent.json()["error"]
    refused(orjson.dumps(good), 415, "'text/plain'", **{"Content-Type": "text/plain"})
    octets = {"Content-Type": "application/octet-stream"}
    assert _post(server, url, orjson.dumps(good), octets).status_code == 200

    for path in ("/v2/models/nope/infer", "/v2/models/penguins_logreg@shadow/infer"):
        answer = _post(server, path, good)
        assert answer.status_code == 404, answer.text
        assert path.split("/")[3].split("@")[-1] in answer.json()["error"]
    assert _post(server, "/v2/models/penguins_logreg/versions/9/infer", good).status_code == 404


async def _asgi_post(
    app: Starlette, url: str, body: bytes, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.post(url, content=body, headers=dict(headers or {}))


def test_a_token_guards_infer_and_invocations_for_tritonclient_too(server: Running) -> None:
    servable = _servable(server, "penguins_logreg")
    rows = _rows(server, "penguins_logreg", 2)
    guarded = Starlette(
        routes=[
            *oip.routes(server.models, token="s3cret"),
            *mlflow.routes(server.models, token="s3cret"),
        ]
    )
    with _uvicorn(guarded) as host, triton.InferenceServerClient(host) as client:
        assert client.is_server_ready() and client.is_model_ready("penguins_logreg")
        assert client.get_model_metadata("penguins_logreg")["name"] == "penguins_logreg"
        inputs = _inputs(servable, rows, binary=False)
        with pytest.raises(InferenceServerException, match="has none"):
            client.infer("penguins_logreg", inputs)
        with pytest.raises(InferenceServerException, match="is wrong"):
            client.infer("penguins_logreg", inputs, headers={"Authorization": "Bearer nope"})
        answer = client.infer("penguins_logreg", inputs, headers={"Authorization": "Bearer s3cret"})
        assert answer.as_numpy("predict") is not None
        records = orjson.loads(rows.to_json(orient="records"))
        refused = httpx.post(
            f"http://{host}/invocations?model=penguins_logreg", json={"dataframe_records": records}
        )
        assert refused.status_code == 401 and refused.json()["error_code"] == "UNAUTHENTICATED"
        assert refused.headers["www-authenticate"].startswith("Bearer")
        bare = httpx.post(
            f"http://{host}/invocations?model=penguins_logreg",
            json={"dataframe_records": records},
            headers={"Authorization": "s3cret-typed-alone"},
        )  # the token sent without its scheme is never echoed back
        assert bare.status_code == 401 and "not a bearer token" in bare.json()["message"]
        assert "s3cret" not in bare.text


@dataclass
class Crashing(Held):
    """Models whose scoring fails unexpectedly (a bug, not the request's fault)."""

    async def predict(
        self,
        served: Served,
        columns: Mapping[str, np.ndarray],
        *,
        protocol: str,
        request_id: str,
    ) -> Predictions:
        raise RuntimeError("the scorer crashed")


def test_an_unexpected_error_is_a_500_naming_the_request_id(server: Running) -> None:
    crashing = Crashing(server.models.servables, server.models.aliases)
    app = Starlette(routes=[*oip.routes(crashing), *mlflow.routes(crashing)])
    servable = _servable(server, "penguins_logreg")
    rows = _rows(server, "penguins_logreg", 2)
    records = orjson.loads(rows.to_json(orient="records"))
    with _uvicorn(app) as host:
        for path, body in (
            ("/v2/models/penguins_logreg/infer", _oip_payload(servable, rows)),
            ("/invocations?model=penguins_logreg", {"dataframe_records": records}),
        ):
            answer = httpx.post(
                f"http://{host}{path}", json=body, headers={"x-request-id": "req-500"}
            )
            assert answer.status_code == 500, answer.text
            said = answer.json().get("error") or answer.json()["message"]
            assert "request req-500" in said and "crashed" not in said, said
            assert answer.headers["x-request-id"] == "req-500"
    assert (None, 401) not in crashing.failures
    assert crashing.failures == [("penguins_logreg/1", 500)] * 2


def test_server_not_ready_says_so(server: Running, client: triton.InferenceServerClient) -> None:
    server.models.is_ready = False
    try:
        assert client.is_server_live() and not client.is_server_ready()
        assert httpx.get(server.url + "/ping").status_code == 503
    finally:
        server.models.is_ready = True


# --- MLflow scoring protocol ---------------------------------------------------------------


def _invocations(server: Running, body: Any, model: str | None, kind: str) -> httpx.Response:
    path = "/invocations" + (f"?model={model}" if model else "")
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(server.url + path, content=content, headers={"Content-Type": kind})


def test_mlflow_health_and_version(server: Running) -> None:
    for path in ("/ping", "/health"):
        assert httpx.get(server.url + path).status_code == 200
    version = httpx.get(server.url + "/version")
    assert version.status_code == 200 and version.text.startswith("0.")


def test_mlflow_payloads_from_its_docs(server: Running) -> None:
    """The payloads MLflow's serving docs show, for a classifier with text, gaps and
    integers: each answers the servable's classes, one per row."""
    servable = _servable(server, "penguins_logreg")
    rows = _rows(server, "penguins_logreg", 12)
    expected = list(servable.predict(_columns(servable, rows)).values)
    names = [c.name for c in servable.manifest.inputs]
    table = rows[[*names, "species"]]  # a whole row of the table, the label included
    records = orjson.loads(table.to_json(orient="records"))
    split = orjson.loads(table.to_json(orient="split"))  # columns, index and data
    payloads = {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs (columns)": {"inputs": {n: records_column(records, n) for n in names}},
        "inputs (records)": {"inputs": records},
        "instances (rows)": {"instances": [[r[n] for n in names] for r in records]},
    }
    json = "application/json; charset=utf-8"
    for label, payload in payloads.items():
        answer = _invocations(server, payload, "penguins_logreg", json)
        assert answer.status_code == 200, (label, answer.text)
        assert answer.json() == {"predictions": expected}, label
    csv = table.to_csv(index=False).encode()
    answer = _invocations(server, csv, "penguins_logreg@champion", "text/csv")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": expected}
    assert server.models.calls[-1][::2] == ("mlflow", 12)

    regression = _servable(server, "diabetes_linear")
    numbers = _rows(server, "diabetes_linear", 5)
    answer = _invocations(
        server,
        {"dataframe_split": orjson.loads(numbers.to_json(orient="split"))},
        "diabetes_linear/1",
        "application/json",
    )
    values = regression.predict(_columns(regression, numbers)).values
    np.testing.assert_allclose(answer.json()["predictions"], values)


def records_column(records: list[dict[str, Any]], name: str) -> list[Any]:
    return [r[name] for r in records]


def test_mlflow_names_the_default_model_or_asks_for_one(server: Running) -> None:
    numbers = _rows(server, "diabetes_linear", 2)
    body = {"dataframe_records": orjson.loads(numbers.to_json(orient="records"))}
    several = _invocations(server, body, None, "application/json")
    assert several.status_code == 400
    assert "POST /invocations?model=NAME" in several.json()["message"]
    models = Held(
        {"diabetes_linear": server.models.servables["diabetes_linear"]},
        {"diabetes_linear": {"champion": 1}},
    )
    app = Starlette(routes=mlflow.routes(models))
    transport = httpx.ASGITransport(app=app)

    async def score() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.post(
                "/invocations",
                content=orjson.dumps(body),
                headers={"Content-Type": "application/json"},
            )

    assert asyncio.run(score()).status_code == 200


def test_bad_mlflow_requests_are_answered_as_mlflow_does(server: Running) -> None:
    servable = _servable(server, "penguins_logreg")
    rows = _rows(server, "penguins_logreg", 3)
    records = orjson.loads(rows.to_json(orient="records"))
    json = "application/json"

    def refused(body: Any, status: int, *words: str, kind: str = json, model: str = "") -> None:
        answer = _invocations(server, body, model or "penguins_logreg", kind)
        assert answer.status_code == status, answer.text
        error = answer.json()
        assert error["error_code"] == (
            "RESOURCE_DOES_NOT_EXIST" if status == 404 else "BAD_REQUEST"
        )
        for word in words:
            assert word in error["message"], error["message"]

    refused({"records": records}, 400, "exactly one of", "dataframe_split")
    refused({"instances": records, "inputs": records}, 400, "exactly one of")
    refused(b"{oops", 400, "not valid JSON")
    without_sex = [{k: v for k, v in r.items() if k != "sex"} for r in records]
    refused({"dataframe_records": without_sex}, 400, "column 'sex' is missing")
    typo = [{("sexx" if k == "sex" else k): v for k, v in r.items()} for r in records]
    refused({"dataframe_records": typo}, 400, "column 'sex' is missing", "sexx")
    mass = [{**r, "body_mass_g": "heavy"} for r in records]
    refused({"dataframe_records": mass}, 400, "column 'body_mass_g' takes numbers", "row 0")
    gap = [{**r, "year": None} for r in records]
    refused({"dataframe_records": gap}, 400, "'year' may not be missing")
    ragged = {"columns": ["island", "sex"], "data": [["Dream"], ["Dream", "male"]]}
    refused({"dataframe_split": ragged}, 400, "dataframe_split.data[0]")
    refused({"dataframe_split": [1, 2]}, 400, "dataframe_split")
    short = {n: [r[n] for r in records] for n in records[0]} | {"sex": ["male"]}
    refused({"inputs": short}, 400, "column 'sex' has 1 value(s)")
    header = ",".join(c.name for c in servable.manifest.inputs)
    bad_csv = f"{header}\n" + ",".join("x" for _ in servable.manifest.inputs) + "\n"
    # pyarrow converts columns on several threads: any numeric column may be the one named
    refused(bad_csv.encode(), 400, "CSV column '", "row 0 (line 2) holds 'x'", kind="text/csv")
    refused(b"island,sex\nDream,male\n", 400, "column 'bill_length_mm' is missing", kind="text/csv")
    refused(b"a=1", 415, "application/json, text/csv", kind="application/x-www-form-urlencoded")
    refused({"dataframe_records": records}, 404, "nope", model="nope")
    refused({"dataframe_records": records}, 404, "shadow", model="penguins_logreg@shadow")
    refused({"dataframe_records": records}, 400, "churn/3", model="penguins_logreg/x")
    doubled = f"{header},island\n" + ",".join("1" for _ in servable.manifest.inputs) + ",Dream\n"
    refused(doubled.encode(), 400, "names column 'island' twice", kind="text/csv")
    body = orjson.dumps({"dataframe_records": records})
    small = Starlette(routes=mlflow.routes(server.models, max_bytes=len(body) - 1))
    answer = asyncio.run(
        _asgi_post(small, "/invocations?model=penguins_logreg", body, {"Content-Type": json})
    )
    assert answer.status_code == 413, answer.text
    assert "serve.max_body_bytes" in answer.json()["message"]


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("island", 5, "column 'island' takes text"),
        ("island", {"a": 1}, "column 'island' takes text"),
        ("bill_length_mm", True, "column 'bill_length_mm' takes numbers"),
        ("bill_length_mm", "41.2", "column 'bill_length_mm' takes numbers"),
        ("bill_length_mm", [41.2], "column 'bill_length_mm' takes numbers"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_in_every_payload_naming_column_and_row(
    server: Running, column: str, value: Any, words: str
) -> None:
    records = orjson.loads(_rows(server, "penguins_logreg", 2).to_json(orient="records"))
    records[1][column] = value
    columns = {n: [r[n] for r in records] for n in records[0]}
    split = {"columns": list(columns), "data": [list(r.values()) for r in records]}
    for body in (
        {"dataframe_records": records},
        {"instances": records},
        {"inputs": columns},
        {"dataframe_split": split},
    ):
        answer = _invocations(server, body, "penguins_logreg", "application/json")
        assert answer.status_code == 400, (body, answer.text)
        assert words in answer.json()["message"] and "row 1" in answer.json()["message"]


def test_an_infinity_is_refused_in_json_and_binary_tensors_alike(server: Running) -> None:
    servable = _servable(server, "penguins_logreg")
    rows = _rows(server, "penguins_logreg", 2)
    url = "/v2/models/penguins_logreg/infer"
    finite = {"data": [41.0, 42.0]}
    assert _post(server, url, _oip_payload(servable, rows, bill_length_mm=finite)).is_success
    for literal in (b"1e400", b"Infinity", b"-Infinity"):
        body = orjson.dumps(_oip_payload(servable, rows, bill_length_mm=finite))
        body = body.replace(b"[41.0,42.0]", b"[41.0," + literal + b"]")
        answer = _post(server, url, body)
        assert answer.status_code == 400, (literal, answer.text)
        assert "'bill_length_mm'" in answer.json()["error"] and "finite" in answer.json()["error"]
    binary = _oip_payload(servable, rows)
    index = next(i for i, t in enumerate(binary["inputs"]) if t["name"] == "bill_length_mm")
    tensor = {k: v for k, v in binary["inputs"][index].items() if k != "data"}
    binary["inputs"][index] = tensor | {"parameters": {"binary_data_size": 16}}
    head = orjson.dumps(binary)
    for data, status in ((np.array([41.0, 42.0]), 200), (np.array([41.0, np.inf]), 400)):
        answer = _post(
            server,
            url,
            head + data.astype("<f8").tobytes(),
            {"Inference-Header-Content-Length": str(len(head))},
        )
        assert answer.status_code == status, answer.text
    assert "element 1 is inf" in answer.json()["error"]


def test_a_large_json_tensor_is_read_as_a_block_and_still_refuses_odd_values(
    server: Running,
) -> None:
    """A body of many numbers goes through json_numbers (a float64 block per tensor, no
    Python object per number): the same answers, the same refusals, naming the input."""
    servable = _servable(server, "diabetes_linear")
    rows = _rows(server, "diabetes_linear", 400)
    url = "/v2/models/diabetes_linear/infer"
    body = _oip_payload(servable, rows)
    assert len(orjson.dumps(body)) > json_numbers.LARGE
    answer = _post(server, url, body)
    assert answer.status_code == 200, answer.text
    (output,) = (o for o in answer.json()["outputs"] if o["name"] == "predict")
    expected = servable.predict(_columns(servable, rows)).values
    np.testing.assert_allclose(output["data"], expected, rtol=1e-12)

    name = servable.manifest.inputs[3].name
    for odd, words in ((True, "must be numbers"), ("41.2", "must be numbers"), ([1.0], "shape")):
        data = [float(v) for v in rows[name]]
        data[300] = odd  # type: ignore[call-overload]
        changed = _oip_payload(servable, rows, **{name: {"data": data}})
        refused = _post(server, url, changed)
        assert refused.status_code == 400, (odd, refused.text)
        assert name in refused.json()["error"] and words in refused.json()["error"], refused.text


def test_a_body_nested_too_deeply_is_a_400_in_every_protocol(server: Running) -> None:
    """``[`` 200,000 deep: neither orjson (its limit) nor the fallback that reads NaN
    (Python's recursive scanner) may make it a 500; the server goes on serving."""
    deep = b"[" * 200_000 + b"]" * 200_000
    for path in ("/v2/models/penguins_logreg/infer", "/invocations?model=penguins_logreg"):
        for body in (b'{"inputs":' + deep + b"}", b'{"inputs": [NaN, ' + deep + b"]}"):
            answer = _post(server, path, body, {"Content-Type": "application/json"})
            assert answer.status_code == 400, (path, answer.text[:300])
            said = answer.json().get("error") or answer.json()["message"]
            assert "nested too deeply" in said, said
    servable = _servable(server, "penguins_logreg")
    good = _oip_payload(servable, _rows(server, "penguins_logreg", 2))
    assert _post(server, "/v2/models/penguins_logreg/infer", good).status_code == 200


def test_a_value_of_the_wrong_kind_in_a_json_tensor_is_named_by_its_element(
    server: Running,
) -> None:
    servable = _servable(server, "penguins_logreg")
    url = "/v2/models/penguins_logreg/infer"
    for count in (3, 300):  # small bodies read by orjson, large ones by json_numbers
        rows = pd.concat([_rows(server, "penguins_logreg", 150)] * 2).head(count)
        for name, odd, words in (
            ("bill_length_mm", True, "its data must be numbers"),
            ("bill_length_mm", "41.2", "its data must be numbers"),
            ("bill_length_mm", {"a": 1}, "its data must be numbers"),
            ("island", 5, "its data must be strings"),
            ("island", True, "its data must be strings"),
        ):
            body = _oip_payload(servable, rows)
            tensor = next(t for t in body["inputs"] if t["name"] == name)
            tensor["data"][1] = odd
            answer = _post(server, url, body)
            assert answer.status_code == 400, (count, name, odd, answer.text)
            said = answer.json()["error"]
            assert f"input {name!r}" in said and words in said, said
            assert f"element 1 is {orjson.dumps(odd).decode()}" in said, said
