"""The bare endpoint of bench/bench_serving.py: FastAPI on uvicorn calling one ONNX model.

Usage: ``python bench/serving/bare_server.py MODEL.onnx --port N``

The limit of the Python HTTP stack for the benchmark: the very ONNX graph gristmill's
servable runs (pipeline and learner in one), one ONNX Runtime session with the options
gristmill's uses (one thread, sequential, every graph optimization), and nothing else — no
routing beyond one path, no validation, no logging, no metrics, no batching. It takes the
body gristmill's native API takes (``{"rows": [{column: value, ...}, ...]}``), decodes it
with orjson, builds the graph's input row by row — one array per column, or, for a graph
that takes its numeric columns as one tensor (the column order in its metadata, as
gristmill compiles numeric pipelines), one matrix — runs the session in the event loop and
answers the classes and probabilities with orjson. uvicorn runs as ``gristmill serve`` runs
it: one process, uvloop, httptools, no access log. It imports nothing from gristmill.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64}


def build(model: str) -> FastAPI:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    inputs = [(i.name, TYPES[i.type]) for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    packed = session.get_modelmeta().custom_metadata_map.get("gristmill.packed_columns")
    columns = json.loads(packed) if packed else None
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/ready")
    async def ready() -> Response:
        return Response(b'{"ready": true}', media_type="application/json")

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        rows = orjson.loads(await request.body())["rows"]
        if columns is not None:
            ((name, kind),) = inputs
            feed = {name: np.array([[row[c] for c in columns] for row in rows], dtype=kind)}
        else:
            feed = {
                name: np.array([row[name] for row in rows], dtype=kind).reshape(-1, 1)
                for name, kind in inputs
            }
        labels, probabilities = session.run(outputs, feed)[:2]
        body: dict[str, Any] = {
            "predictions": labels.reshape(-1),
            "probabilities": np.ascontiguousarray(probabilities),
        }
        return Response(
            orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
        )

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("model", help="the ONNX graph")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(
        build(args.model),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
