"""The protocol-switch seam (RFC 9110 §7.8): a handler's ``SwitchProtocols`` answer
hands the connection, and the bytes read past the request's head, to another
``asyncio`` protocol once every earlier answer has left. Both cores."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, ClassVar

import pytest

import cyhttp
from cyhttp import SwitchProtocols

from .support import read_until_closed

UPGRADE = b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"


class Echo(asyncio.Protocol):
    """The test protocol: sends back whatever it receives."""

    made: ClassVar[list[Echo]] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.received = b""
        self.lost = False
        Echo.made.append(self)

    def data_received(self, data: bytes) -> None:
        self.received += data
        self.transport.write(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True


@pytest.fixture(autouse=True)
def _fresh_echo():
    Echo.made = []


async def switching_app(request: cyhttp.Request) -> Any:
    if request.path == "/first":
        for _ in range(5):
            await asyncio.sleep(0)  # answers after the upgrade's handler has returned
        return cyhttp.Response(b"first")
    if request.path == "/decline":
        return cyhttp.Response(b"staying HTTP")
    if request.headers.get("upgrade") == "echo":
        return SwitchProtocols(Echo, "echo", {"X-Switched": "yes"})
    return SwitchProtocols(Echo, "echo")  # for a request that did not ask: a 500


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def _recv_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def test_switch_hands_over_with_the_bytes_after_the_head(live):
    with live(switching_app) as srv, srv.connect() as sock:
        sock.sendall(UPGRADE + b"sent with the head")
        head = _recv_head(sock)
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert b"\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Switched: yes\r\n\r\n" in head
        assert _recv_exactly(sock, 18) == b"sent with the head"
        sock.sendall(b"and later")
        assert _recv_exactly(sock, 9) == b"and later"
        assert srv.server.connections == set()  # the server let go of it


def test_earlier_pipelined_answers_leave_first(live):
    with live(switching_app) as srv, srv.connect() as sock:
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n" + UPGRADE + b"ping")
        first = _recv_head(sock)
        assert first.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 5\r\n" in first
        assert _recv_exactly(sock, 5) == b"first"
        assert _recv_head(sock).startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert _recv_exactly(sock, 4) == b"ping"


def test_a_declining_handler_answers_normally_and_closes(live):
    with live(switching_app) as srv, srv.connect() as sock:
        # What follows the head is not HTTP: the request inside it is never answered.
        sock.sendall(UPGRADE.replace(b"/chat", b"/decline") + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_closed(sock)
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Connection: close\r\n" in data and data.endswith(b"\r\n\r\nstaying HTTP")
        assert data.count(b"HTTP/1.1") == 1
    assert Echo.made == []


def test_switch_for_a_request_that_did_not_ask_is_a_logged_500(conn, caplog):
    c = conn(switching_app)
    with caplog.at_level(logging.ERROR, logger="cyhttp"):
        c.feed(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert "SwitchProtocols answers only a request to switch protocols" in caplog.text
    assert Echo.made == []


async def test_bytes_in_later_reads_before_the_switch_reach_the_new_protocol(conn):
    go = asyncio.Event()

    async def app(request: cyhttp.Request) -> Any:
        await go.wait()
        return SwitchProtocols(Echo, "echo")

    c = conn(app)
    c.feed(UPGRADE[:20])
    c.feed(UPGRADE[20:] + b"one ")
    await c.settle()
    assert not c.transport.reading  # the rest waits for the switch
    c.feed(b"two")  # a read already under way when reading paused: kept too
    go.set()
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert c.data.endswith(b"\r\n\r\none two")
    assert c.transport.reading and c.transport.protocol is Echo.made[0]
    assert Echo.made[0].received == b"one two"


async def test_client_gone_mid_switch_leaves_nothing(conn):
    waiting = asyncio.Event()
    outcome = []

    async def app(request: cyhttp.Request) -> Any:
        waiting.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return SwitchProtocols(Echo, "echo")

    c = conn(app)
    before = asyncio.all_tasks()
    c.feed(UPGRADE + b"early")
    await waiting.wait()
    c.transport.close()  # the client went away before the handler decided
    await c.settle()
    assert outcome == ["cancelled"]
    assert Echo.made == [] and c.server.connections == set()
    assert c.data == b""
    assert asyncio.all_tasks() - before == set()  # the handler's task is gone


class BufferedEcho(asyncio.BufferedProtocol):
    """A buffered protocol takes the bytes after the head through its own buffer."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = bytearray(4)  # smaller than the tail: it arrives in pieces
        self.received = b""

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.received += bytes(self.buffer[:nbytes])


async def test_buffered_protocol_gets_the_tail_through_its_buffer(conn):
    made: list[BufferedEcho] = []

    def factory() -> BufferedEcho:
        made.append(BufferedEcho())
        return made[-1]

    c = conn(lambda request: SwitchProtocols(factory, "echo"))
    c.feed(UPGRADE + b"ten bytes!")
    await c.settle()
    assert made and made[0].received == b"ten bytes!"
    assert c.transport.protocol is made[0] and c.transport.reading


async def test_a_failing_factory_closes_the_connection_with_a_log(conn, caplog):
    def factory() -> asyncio.Protocol:
        raise RuntimeError("no protocol today")

    c = conn(lambda request: SwitchProtocols(factory, "echo"))
    with caplog.at_level(logging.ERROR, logger="cyhttp"):
        c.feed(UPGRADE)
        await c.settle()
    assert c.data.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert c.transport.closed
    assert "failed to start" in caplog.text and "no protocol today" in caplog.text
    assert c.server.connections == set()


async def test_a_handler_that_suspends_then_switches_leaves_no_error(conn, caplog):
    async def app(request: cyhttp.Request) -> Any:
        await asyncio.sleep(0)  # its answer comes from a Task, through handler_done
        return SwitchProtocols(Echo, "echo")

    c = conn(app)
    with caplog.at_level(logging.ERROR):
        c.feed(UPGRADE + b"tail")
        await c.settle()
    assert c.transport.protocol is Echo.made[0] and Echo.made[0].received == b"tail"
    assert "Exception in callback" not in caplog.text  # the switch had cut the writer
