"""An answer's head and body leave in one write, and nothing is lost, stuck or reordered.

First the transport itself over a real TCP connection (its writes counted on their way to
the socket), then uvicorn with ``CoalescingHttpToolsProtocol`` on a real port: keep-alive,
pipelined requests, ``HEAD``, a 204, a streamed answer and ``Expect: 100-continue`` all
answered as HTTP says.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gristmill.server.coalescing import CoalescingTransport


class _Counted:
    """A real transport, its writes counted on their way through."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def _connected() -> tuple[CoalescingTransport, _Counted, asyncio.StreamReader, Any]:
    """A coalescing transport on the server side of a real connection, and a reader on
    the client side."""
    made: asyncio.Future[asyncio.Transport] = asyncio.get_running_loop().create_future()

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            made.set_result(transport)  # type: ignore[arg-type]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    counted = _Counted(await made)
    return CoalescingTransport(counted, loop), counted, reader, (server, writer)  # type: ignore[arg-type]


async def _closed(held: Any) -> None:
    server, writer = held
    writer.close()
    server.close()
    await server.wait_closed()


async def test_writes_of_one_turn_leave_as_one_in_order() -> None:
    transport, counted, reader, held = await _connected()
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
    transport.write(b"body")
    transport.write(b"more")
    await asyncio.sleep(0)  # the turn ends
    assert await reader.readexactly(46) == b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbodymore"
    # the head went out with the body; the third write alone, at the end of the turn
    assert counted.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody", b"more"]
    await _closed(held)


async def test_a_write_alone_goes_out_when_its_turn_ends() -> None:
    transport, counted, reader, held = await _connected()
    transport.write(b"alone")
    assert counted.writes == []  # held for the rest of this turn
    assert await asyncio.wait_for(reader.readexactly(5), 5) == b"alone"
    assert counted.writes == [b"alone"]
    await _closed(held)


async def test_closing_sends_what_is_held_first() -> None:
    transport, _, reader, held = await _connected()
    transport.write(b"last words")
    transport.close()
    assert await asyncio.wait_for(reader.read(), 5) == b"last words"  # then the end
    await _closed(held)


# --- uvicorn with the coalescing protocol, on a real port ---------------------------------


async def _plain(request: Request) -> Response:
    body = await request.body()
    return Response(b"echo:" + body, media_type="text/plain")


async def _empty(request: Request) -> Response:
    return Response(status_code=204)


async def _streamed(request: Request) -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one,", b"two,", b"three"):
            yield part
            await asyncio.sleep(0.01)

    return StreamingResponse(parts(), media_type="text/plain")


APP = Starlette(
    routes=[
        Route("/echo", _plain, methods=["GET", "POST", "HEAD"]),
        Route("/empty", _empty),
        Route("/stream", _streamed),
    ]
)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    config = uvicorn.Config(
        APP,
        host="127.0.0.1",
        port=0,
        http="gristmill.server.coalescing:CoalescingHttpToolsProtocol",
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (server.started and server.servers):
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    thread.join(10)


def _exchange(port: int, request: bytes, done: Callable[[bytes], bool]) -> bytes:
    """Send ``request`` and read until what came is ``done``."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        got = b""
        while not done(got):
            chunk = sock.recv(65536)
            assert chunk, f"the connection closed after {got!r}"
            got += chunk
        return got


def test_keep_alive_answers_come_whole_one_after_another(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for n in range(50):
            body = b"n=%d" % n
            sock.sendall(
                b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            got = b""
            while not got.endswith(b"echo:" + body):
                chunk = sock.recv(65536)
                assert chunk
                got += chunk
            assert got.startswith(b"HTTP/1.1 200 OK\r\n")


def test_pipelined_requests_are_answered_in_order(port: int) -> None:
    requests = b"".join(
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\n%d" % n for n in range(5)
    )
    got = _exchange(port, requests, lambda got: got.endswith(b"echo:4"))
    assert [int(part[:1]) for part in got.split(b"echo:")[1:]] == [0, 1, 2, 3, 4]


def _ends_head(got: bytes) -> bool:
    return b"\r\n\r\n" in got


def test_head_and_no_content_answers_end(port: int) -> None:
    head = _exchange(port, b"HEAD /echo HTTP/1.1\r\nhost: x\r\n\r\n", _ends_head)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    empty = _exchange(port, b"GET /empty HTTP/1.1\r\nhost: x\r\n\r\n", _ends_head)
    assert empty.startswith(b"HTTP/1.1 204 No Content\r\n")


def test_a_streamed_answer_comes_whole(port: int) -> None:
    got = _exchange(
        port, b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n", lambda got: got.endswith(b"0\r\n\r\n")
    )
    assert b"transfer-encoding: chunked" in got
    assert got.endswith(b"4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n")


def test_expect_continue_is_answered_before_the_body_is_sent(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"hello")
        got = b""
        while not got.endswith(b"echo:hello"):
            chunk = sock.recv(65536)
            assert chunk
            got += chunk
