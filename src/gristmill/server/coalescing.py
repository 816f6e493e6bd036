"""uvicorn's httptools protocol with a response's head and body sent as one write.

uvicorn writes an answer's status line and headers (``http.response.start``) and its body
(``http.response.body``) with two ``transport.write`` calls; uvloop sends each at once
(``TCP_NODELAY``): two ``send`` system calls and two TCP segments per answer, and a client
that wakes up for the head alone, then again for the body. For a one-row prediction that is
most of the server's time outside Python (py-spy, 2026-12-04: the head's ``send`` alone was
12 % of the one-connection profile). Here a write is held until the next one, which goes out
joined with it, or until the end of the event loop's turn (``call_soon``), whichever comes
first — so nothing waits past the turn that wrote it, and the order of writes is kept.
Closing the connection sends what is held first.

``gristmill serve`` names ``CoalescingHttpToolsProtocol`` as uvicorn's ``http`` protocol
(``supervisor.uvicorn_options``) when httptools is installed; everything else is uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport whose writes of one turn of the event loop go out as one (see the module
    docstring); every other call goes to the transport it wraps."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
        else:
            self._held = None
            self._transport.write(held + data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._transport.write(held)

    def writelines(self, data: Any) -> None:
        self.write(b"".join(data))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
