"""The prediction routes taken first: a Starlette app that answers them without its stack.

A request goes through Starlette's middleware (its error and exception handlers, each
wrapping ``send``), the router (each route's pattern tried in turn, some thirty here), and
the route's own wrappers before its endpoint runs — some tens of microseconds of Python
per request, a tenth of a one-row prediction's time in the server. The prediction
endpoints of every protocol (``POST``: the native ``…/predict``, the Open Inference
Protocol's ``…/infer``, MLflow's ``/invocations``) answer every error themselves (their
``guarded``/``_answering`` wrappers turn any exception into the protocol's error answer),
so the stack has nothing to add to them: ``PredictionFirst`` matches a ``POST`` against
those routes alone and, on a full match, calls the endpoint and sends its answer directly;
anything else (another method, another path, a lifespan or websocket scope) goes through
Starlette as before. The in-flight count (``InFlight``) is kept on both paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send


def prediction_routes(routes: Sequence[BaseRoute]) -> list[Route]:
    """The ``POST`` routes of ``routes``: the protocols' prediction endpoints."""
    return [r for r in routes if isinstance(r, Route) and r.methods and "POST" in r.methods]


class PredictionFirst(Starlette):
    """Starlette, with ``hot`` routes (endpoints that answer every error themselves) matched
    first and answered without the middleware and the router (see the module docstring);
    ``counter.in_flight`` counts the requests they are answering."""

    def __init__(self, *, hot: Sequence[Route], counter: Any, **options: Any) -> None:
        super().__init__(**options)
        self._hot = tuple(hot)
        self._counter = counter
        counter.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route in self._hot:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope["app"] = self
                    scope.update(child)
                    counter = self._counter
                    counter.in_flight += 1
                    try:
                        response = await route.endpoint(Request(scope, receive, send))
                        await response(scope, receive, send)
                    finally:
                        counter.in_flight -= 1
                    return
        await super().__call__(scope, receive, send)
