"""Pull requests of one JetStream consumer that return as soon as messages came."""

from __future__ import annotations

import json
import time

from gristmill.errors import BackendError, MissingExtraError

try:
    import nats.errors
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from nats.js import api
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingExtraError(
        "the NATS bus needs the nats-py driver: pip install 'gristmill[nats]'"
    ) from exc

# Status codes JetStream puts on a pull request's last reply: no messages now, request expired.
_PULL_ENDED = {"404", "408"}
_HEARTBEAT = "100"


class Puller:
    """Pull requests of one consumer on its own inbox, returning as soon as messages came.

    (nats-py's ``fetch`` of a batch keeps waiting for the rest of the batch after the first
    message; a consumer must get the first event at once.)
    """

    def __init__(self, nc: Client, inbox: Subscription, api_subject: str) -> None:
        self.nc = nc
        self.inbox = inbox
        self.api_subject = api_subject

    async def pull(self, batch: int, wait: float) -> list[Msg]:
        """What is there now, up to ``batch``; if nothing, the first to come within ``wait``."""
        got = await self._request(batch, expires=None)
        if got or wait < 0.02:
            return got
        got = await self._request(1, expires=wait)
        if got and batch > 1:
            got += await self._request(batch - 1, expires=None)
        return got

    async def _request(self, batch: int, *, expires: float | None) -> list[Msg]:
        # ``no_wait`` answers at once (the messages there, then 404 if short); ``expires``
        # lingers until a message comes or the server ends it with 408 just before our timeout.
        if expires is None:
            body: dict[str, object] = {"batch": batch, "no_wait": True}
            timeout = 2.0  # a live server answers in milliseconds; a hung one must not hold us
        else:
            body = {"batch": batch, "expires": int((expires - 0.01) * 1e9)}
            timeout = expires + 1.0
        await self.nc.publish(self.api_subject, json.dumps(body).encode(), self.inbox.subject)
        deadline = time.monotonic() + timeout
        got: list[Msg] = []
        while len(got) < batch:
            try:
                message = await self.inbox.next_msg(timeout=max(deadline - time.monotonic(), 0.001))
            except nats.errors.TimeoutError:
                break
            status = (message.headers or {}).get(api.Header.STATUS)
            if status is None:
                got.append(message)
            elif status in _PULL_ENDED:
                break
            elif status != _HEARTBEAT:
                description = (message.headers or {}).get(api.Header.DESCRIPTION, "")
                raise BackendError(
                    f"JetStream pull on {self.api_subject} failed: {status} {description}"
                )
        return got
