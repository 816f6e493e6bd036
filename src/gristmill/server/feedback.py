"""``POST /v1/feedback``: actual outcomes of served predictions, announced on the bus.

The body is the feedback JSON (``core.feedback``): outcomes named by the request id the
server answered with (and the row of a request of several rows), or by entity key and
time. It is checked at once — a malformed outcome is a 400 naming its field
(``outcomes[2].actual``), more outcomes than ``serve.max_rows`` a 413, a ``model`` the
registry does not have a 404 naming it — then published as
one ``feedback.received`` event, and the server answers ``202`` with the event's id as
``feedback_id``: the ``feedback`` worker stage records and joins it (``stages.feedback``).
The server keeps nothing itself, so a client may send feedback to any replica, and the
same endpoint needs the same bearer token as the prediction endpoints.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gristmill.config.settings import ServeSettings
from gristmill.core.events import FEEDBACK_RECEIVED, Event
from gristmill.core.feedback import parse_feedback
from gristmill.runtime.serving_views import check_model
from gristmill.server.http import (
    JSONResponse,
    NotReadyError,
    TooLargeError,
    check_token,
    error_response,
    json_of,
    prediction_token,
    request_id,
)
from gristmill.server.models import RegistryModels
from gristmill.server.openapi import documented, operation
from gristmill.server.prediction_log import Publish


def feedback_event(body: object, max_outcomes: int) -> Event:
    """The ``feedback.received`` event of a request body; ``DataError`` naming the field,
    ``TooLargeError`` for more than ``max_outcomes`` outcomes."""
    parsed = parse_feedback(body, what="the body of /v1/feedback")
    if len(parsed.outcomes) > max_outcomes:
        raise TooLargeError(
            f"the feedback holds {len(parsed.outcomes)} outcomes, more than the server takes "
            f"in one request ({max_outcomes}; serve.max_rows); send them in parts"
        )
    payload = parsed.model_dump(mode="json", exclude_none=True)
    return Event(type=FEEDBACK_RECEIVED, key=parsed.model or "", payload=payload)


def routes(serve: ServeSettings, publish: list[Publish], models: RegistryModels) -> list[BaseRoute]:
    """``POST /v1/feedback``; ``publish`` holds the bus's publish once the server opened it;
    the model a body names is looked up in ``models``' registry."""
    token = prediction_token(serve)
    registered: set[str] = set()  # models found once (a model is never unregistered)

    async def check(model: str) -> None:
        if model not in registered:
            await asyncio.to_thread(check_model, models.stores.metadata.registry, model)
            registered.add(model)

    async def received(request: Request) -> Response:
        rid = request_id(request)
        try:
            check_token(request, token)
            event = feedback_event(await json_of(request, serve.max_body_bytes), serve.max_rows)
            if event.payload.get("model"):
                await check(event.payload["model"])
            if not publish:
                raise NotReadyError("the server is starting; send the feedback again in a moment")
            await publish[0]([event])
        except Exception as exc:
            return error_response(exc, rid)
        outcomes = len(event.payload["outcomes"])
        return JSONResponse({"feedback_id": event.id, "outcomes": outcomes}, 202)

    return [
        Route(
            "/v1/feedback",
            documented(
                received,
                operation(
                    "Send actual outcomes of served predictions (joined to them by a worker)",
                    body="FeedbackRequest",
                    answer="FeedbackAccepted",
                    status=202,
                    errors=(400, 401, 404, 413, 415, 503),
                ),
            ),
            methods=["POST"],
        )
    ]
