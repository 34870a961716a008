"""What an idle connection costs: no output storage held between answers. Both cores.

An answer is written into an output buffer whose storage is borrowed when there is
something to write and given back once it has gone to the transport; a pipelined
burst still leaves in one ``transport.write``.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import cyhttp

from .support import Conn, split_responses

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
BIG = b"b" * 10_000  # under the size handed to the transport as is: it goes through the buffer


def app(request: cyhttp.Request) -> Any:
    if request.method == "POST":
        return echo(request)
    if request.path == "/big":
        return cyhttp.Response(BIG)
    if request.path == "/later":
        return later(request)
    return cyhttp.Response(b"hello")


async def echo(request: cyhttp.Request) -> cyhttp.Response:
    return cyhttp.Response(await request.body())


async def later(request: cyhttp.Request) -> cyhttp.Response:
    await asyncio.sleep(0)  # finishes in a Task, one loop turn later
    return cyhttp.Response(b"later")


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = BIG if scope["path"] == "/big" else b"hello"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _get(path: str) -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode()


def _storage(protocol: Any) -> int:
    return int(protocol._writer.out.capacity())


def _read_answers(sock: socket.socket, count: int) -> list[bytes]:
    data = b""
    while True:
        try:
            answers = split_responses(data)
            if len(answers) == count and answers[-1].endswith((b"hello", BIG)):
                return answers
        except (AssertionError, ValueError):
            pass  # not whole yet
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk


@pytest.mark.parametrize("application", [app, asgi_app], ids=["native", "asgi"])
def test_answered_connections_hold_no_output_storage(live, application):
    with live(application) as srv:
        socks = [srv.connect() for _ in range(8)]
        try:
            for i, sock in enumerate(socks):
                # A small answer, then one that grows the buffer to 16 KiB, pipelined.
                sock.sendall(_get("/") + _get("/big") if i % 2 else _get("/"))
                answers = _read_answers(sock, 2 if i % 2 else 1)
                assert answers[0].endswith(b"\r\n\r\nhello")
            assert srv.loop is not None

            async def held() -> list[int]:
                return [_storage(conn) for conn in srv.server.connections]

            storage = asyncio.run_coroutine_threadsafe(held(), srv.loop).result(10)
            assert storage == [0] * 8
        finally:
            for sock in socks:
                sock.close()


@pytest.mark.parametrize("path", ["/", "/big", "/later"])
async def test_pipelined_burst_leaves_in_one_write_and_gives_the_storage_back(impl, path):
    c = Conn(app, impl)
    c.feed(_get(path) * 16)  # /big: 160 KB of answers, far past the first 4 KiB block
    await c.settle()
    assert len(c.transport.writes) == 1
    body = {"/": b"hello", "/big": BIG, "/later": b"later"}[path]
    answers = split_responses(c.data)
    assert len(answers) == 16 and all(a.endswith(b"\r\n\r\n" + body) for a in answers)
    assert _storage(c.protocol) == 0
    c.feed(_get(path) * 2)  # the next burst borrows storage again
    await c.settle()
    assert len(c.transport.writes) == 2 and _storage(c.protocol) == 0


async def test_asgi_pipelined_burst_leaves_in_one_write(impl):
    c = Conn(asgi_app, impl)
    c.feed(_get("/") * 16)
    await c.settle()
    assert len(c.transport.writes) == 1
    assert [a.endswith(b"\r\n\r\nhello") for a in split_responses(c.data)] == [True] * 16
    assert _storage(c.protocol) == 0


def test_serialize_leaves_no_storage_behind(impl):
    c = Conn(app, impl)
    assert c.protocol.serialize(cyhttp.Response(BIG)).endswith(BIG)
    assert _storage(c.protocol) == 0
