"""The limit of the Python HTTP stack for bench_serving.py: a bare FastAPI endpoint on
uvicorn that runs one ONNX graph, with no routing by name, no logging and no metrics.

Usage: ``python bench/serving_bare.py GRAPH.onnx PORT COLUMN…`` (the graph's numeric input
columns, each fed as ``[rows, 1]`` float64, as gristmill's graphs take them).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, Request

graph, port, columns = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
outputs = [o.name for o in session.get_outputs()]
app = FastAPI()


@app.post("/predict")
async def predict(request: Request) -> dict[str, Any]:
    rows = (await request.json())["rows"]
    feed = {c: np.array([[row[c]] for row in rows], dtype=np.float64) for c in columns}
    values, *rest = session.run(outputs, feed)
    answer: dict[str, Any] = {"predictions": values.reshape(-1).tolist()}
    if rest:
        answer["probabilities"] = rest[0].tolist()
    return answer


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
