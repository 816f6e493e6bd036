"""Prediction routes are answered first, without Starlette's stack; everything else as before.

A real Starlette app (``PredictionFirst``) through httpx's ASGI transport: a hot ``POST``
reaches its endpoint without the middleware and counts as in flight while it runs; the
same path with another method, other paths, and a hot path's unknown neighbour go through
the middleware, the router and the exception handlers as they would without it.
"""

from __future__ import annotations

from types import SimpleNamespace

import httpx
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gristmill.server.hot_path import PredictionFirst, prediction_routes

COUNTER = SimpleNamespace(in_flight=0)


class Marked:
    """A middleware that says, in a header, that the request went through it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def marked(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-through", b"stack")]
            await send(message)

        await self.app(scope, receive, send if scope["type"] != "http" else marked)


async def predict(request: Request) -> Response:
    body = await request.json()
    return JSONResponse(
        {
            "ref": request.path_params["ref"],
            "rows": len(body["rows"]),
            "in_flight": COUNTER.in_flight,
            "app": request.app is APP,
        }
    )


async def describe(request: Request) -> Response:
    return JSONResponse({"ref": request.path_params["ref"]})


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": f"{exc.detail}: {request.method}"}, exc.status_code)


ROUTES = [
    Route("/v1/models/{ref}/predict", predict, methods=["POST"]),
    Route("/v1/models/{ref}", describe, methods=["GET"]),
]
APP = PredictionFirst(
    hot=prediction_routes(ROUTES),
    counter=COUNTER,
    routes=ROUTES,
    middleware=[Middleware(Marked)],
    exception_handlers={HTTPException: refused},
)


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://test")


def test_only_post_routes_are_hot() -> None:
    assert [r.path for r in prediction_routes(ROUTES)] == ["/v1/models/{ref}/predict"]


async def test_a_prediction_is_answered_first_and_counted_in_flight() -> None:
    async with _client() as client:
        answer = await client.post("/v1/models/birds@champion/predict", json={"rows": [{}, {}]})
    assert answer.status_code == 200
    assert answer.json() == {"ref": "birds@champion", "rows": 2, "in_flight": 1, "app": True}
    assert "x-through" not in answer.headers  # not through the middleware
    assert COUNTER.in_flight == 0


async def test_everything_else_goes_through_the_stack() -> None:
    async with _client() as client:
        described = await client.get("/v1/models/birds")
        wrong_method = await client.get("/v1/models/birds/predict")
        unknown = await client.post("/v1/models/birds/predict/more", json={})
    assert (described.status_code, described.json()) == (200, {"ref": "birds"})
    assert described.headers["x-through"] == "stack"
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "Method Not Allowed: GET"}
    assert unknown.status_code == 404 and unknown.headers["x-through"] == "stack"
    assert COUNTER.in_flight == 0
