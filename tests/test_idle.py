"""What an idle connection costs: no output storage held between answers, and a sweep
that leaves idle connections alone until their deadline while still enforcing every
timeout. Both cores.

An answer is written into an output buffer whose storage is borrowed when there is
something to write and given back once it has gone to the transport; a pipelined
burst still leaves in one ``transport.write``. The server's sweep visits a connection
at every sweep only while it is busy with a request; an idle one is parked until its
idle deadline, and woken by its next read.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import cyhttp
from cyhttp import _impl

from .support import Conn, FakeTransport, split_responses

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


# -- the sweep -------------------------------------------------------------------------


def _sweeps(c: Conn, count: int) -> int:
    """Run *count* sweeps of the server; how many connections they visited in all."""
    return sum(c.server._sweep_due() for _ in range(count))


async def test_idle_connections_are_left_alone_until_their_deadline(impl):
    c = Conn(app, impl, keepalive_timeout=5)
    limit = c.server.sweeps.idle
    idle = []
    for _ in range(50):  # more connections of the same server, answered once each
        protocol = _impl.protocol_class(impl)(c.server)
        transport = FakeTransport(protocol)
        protocol.connection_made(transport)
        protocol.get_buffer(len(GET))[: len(GET)] = GET
        protocol.buffer_updated(len(GET))
        idle.append(transport)
    c.feed(GET)
    assert _sweeps(c, 1) == 51  # the first sweep finds them idle and parks them
    assert c.protocol.parked
    assert _sweeps(c, limit - 1) == 0  # parked: no sweep visits them
    assert not c.transport.ended
    assert _sweeps(c, 1) == 51  # their deadline: limit sweeps after their last request
    await c.settle()
    assert c.transport.ended and all(t.ended for t in idle)
    assert c.server.connections == set() and c.server._wheel == {}  # nothing left behind


async def test_a_read_wakes_a_parked_connection_and_keeps_its_idle_time(impl):
    c = Conn(app, impl, keepalive_timeout=5)
    limit = c.server.sweeps.idle
    _sweeps(c, 3)  # a connection that never sent anything is idle from its first sweep
    assert c.protocol.parked
    c.feed(b"\r\n")  # a read that starts no request: the idle time so far still counts
    assert not c.protocol.parked
    assert _sweeps(c, limit - 4) == 1  # the next sweep finds it idle again and parks it
    assert not c.transport.ended
    _sweeps(c, 1)  # closed limit sweeps after it opened, as if it had never been parked
    await c.settle()
    assert c.transport.ended


async def test_a_request_resets_the_idle_deadline_of_a_parked_connection(impl):
    c = Conn(app, impl, keepalive_timeout=5)
    limit = c.server.sweeps.idle
    _sweeps(c, limit - 1)
    c.feed(GET)  # just before the deadline: answered, and the wait starts again
    _sweeps(c, limit)
    assert not c.transport.ended
    assert c.data.endswith(b"hello")
    _sweeps(c, 1)
    await c.settle()
    assert c.transport.ended


@pytest.mark.parametrize(
    ("timeout", "data", "ends"),
    [
        ("header", b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ", "408"),  # a head never ending
        ("body", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npart", "408"),
        ("write", _get("/big"), "closed"),  # an answer the client does not read
        ("linger", b"GET /bad path HTTP/1.1\r\nHost: x\r\n\r\n", "closed"),  # 400, drained
    ],
    ids=["header", "body", "write", "linger"],
)
async def test_every_timeout_applies_to_a_parked_connection_that_reads(impl, timeout, data, ends):
    c = Conn(app, impl, keepalive_timeout=60, **{f"{timeout}_timeout": 2})
    c.feed(GET)
    _sweeps(c, 3)
    assert c.protocol.parked
    c.transport.pause_on_write = timeout == "write"  # the client stops reading
    c.feed(data)
    await c.settle()
    limit = getattr(c.server.sweeps, "head" if timeout == "header" else timeout)
    if timeout == "body":
        limit += 1  # the first sweep sees the body's progress
    _sweeps(c, limit - 1)  # counted from the read, not from when the connection was parked
    assert not c.transport.closed and b" 408 " not in c.data
    _sweeps(c, 1)
    await c.settle()
    if ends == "408":
        assert split_responses(c.data)[-1].startswith(b"HTTP/1.1 408 ") and c.transport.ended
    else:
        assert c.transport.closed


async def test_a_busy_connection_is_visited_at_every_sweep(impl):
    gate = asyncio.Event()

    async def waiting(request: cyhttp.Request) -> cyhttp.Response:
        await gate.wait()
        return cyhttp.Response(b"done")

    c = Conn(waiting, impl, keepalive_timeout=2)
    c.feed(GET)
    await c.settle()
    # A handler at work: no timeout of the connection runs, and it is not parked.
    assert _sweeps(c, 3 * c.server.sweeps.idle) == 3 * c.server.sweeps.idle
    assert not c.protocol.parked and not c.transport.ended
    gate.set()
    await c.settle()
    assert c.data.endswith(b"done")
    assert _sweeps(c, 1) == 1 and c.protocol.parked
