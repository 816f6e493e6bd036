"""The decode-only endpoint of bench/bench_serving.py: what any server pays to read a body.

Usage: ``python bench/serving/decode_server.py --port N``

FastAPI on uvicorn, run as the bare endpoint runs (uvloop, httptools, no access log, one
process): it reads the request body, decodes it with orjson — as the bare endpoint and
gristmill do for a body of row objects — and answers a constant. No model, no arrays.
Its requests/s for the 1,000-row body is the most a Python server that decodes that body
with orjson can answer on this machine: the limit the 1,000-row target is measured
against.
"""

from __future__ import annotations

import argparse

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

ANSWER = b'{"predictions": [0]}'


def build() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/ready")
    async def ready() -> Response:
        return Response(b'{"ready": true}', media_type="application/json")

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        orjson.loads(await request.body())
        return Response(ANSWER, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(
        build(),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
