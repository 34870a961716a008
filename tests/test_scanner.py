"""The compiled core's own head scanner and its hand-over to httptools.

The scanner only changes who reads a plain head, never what the server does:
the behavioural tests here run on both cores, and the differential fuzz tests
(``test_fuzz.py``) compare them on generated requests. The Cython-only tests
prove that plain heads really skip httptools, and that a connection returns to
the scanner once httptools has finished the message it was given.
"""

from __future__ import annotations

from typing import Any

import pytest

import cyhttp
from cyhttp import _impl

from .support import DATE, Conn, FakeTransport, compiled, split_responses

PLAIN = b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n"
CHUNKED = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"


async def summary(request: cyhttp.Request) -> cyhttp.Response:
    body = await request.body()
    return cyhttp.Response(b"%s %s %s" % (request.method.encode(), request.raw_path, body))


def bodies(data: bytes) -> list[bytes]:
    return [response.partition(b"\r\n\r\n")[2] for response in split_responses(data)]


async def test_scanned_body_across_reads_then_pipelined(conn):
    c = conn(summary)
    c.feed(b"PUT /u HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123")
    c.feed(b"456")
    await c.settle()
    assert c.data == b""
    c.feed(b"789" + PLAIN)
    await c.settle()
    assert bodies(c.data) == [b"PUT /u 0123456789", b"GET /p "]


def test_head_split_across_reads(conn):
    c = conn(summary)
    for piece in (PLAIN[:9], PLAIN[9:20], PLAIN[20:] + PLAIN):
        c.feed(piece)
    assert bodies(c.data) == [b"GET /p ", b"GET /p "]


def test_scanned_and_httptools_requests_interleaved(conn):
    c = conn(summary)
    c.feed(PLAIN + CHUNKED + PLAIN)
    c.feed(CHUNKED[:30])
    c.feed(CHUNKED[30:] + PLAIN)
    assert bodies(c.data) == [b"GET /p ", b"POST /c hi", b"GET /p ", b"POST /c hi", b"GET /p "]


@pytest.mark.parametrize(
    "head, expected",
    [
        (
            b"GET /h HTTP/1.1\r\nhost:x\r\nX-A: \t a b \r\n\r\n",
            b"GET /h [(b'host', b'x'), (b'X-A', b'a b')]",
        ),
        (b"HEAD /h HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", b""),
        (
            b"DELETE /h?q HTTP/1.1\r\nHost: x\r\nX-E:\r\n\r\n",
            b"DELETE /h?q [(b'Host', b'x'), (b'X-E', b'')]",
        ),
    ],
)
def test_plain_heads_read_as_httptools_reads_them(conn, head, expected):
    async def fields(request: cyhttp.Request) -> cyhttp.Response:
        return cyhttp.Response(
            b"%s %s %r" % (request.method.encode(), request.raw_path, request.headers.raw)
        )

    c = conn(fields)
    c.feed(head)
    assert bodies(c.data) == [expected]
    assert not c.transport.ended


class _Counting:
    """httptools' callback target in between: counts the messages httptools begins."""

    def __init__(self, target: Any, counts: list[int]) -> None:
        self._target = target
        self._counts = counts

    def on_message_begin(self) -> None:
        self._counts[0] += 1
        self._target.on_message_begin()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def _counting_connection(app: Any, monkeypatch: Any) -> tuple[Any, FakeTransport, list[int]]:
    """A compiled connection, and how many messages httptools has read for it."""
    assert _impl.HttpProtocolC is not None
    from cyhttp import _protocol_c

    counts = [0]
    parser = _protocol_c.HttpRequestParser
    monkeypatch.setattr(
        _protocol_c, "HttpRequestParser", lambda target: parser(_Counting(target, counts))
    )
    protocol = _impl.HttpProtocolC(cyhttp.Server(app, implementation="cython"))
    transport = FakeTransport(protocol)
    protocol.connection_made(transport)
    return protocol, transport, counts


def _feed(protocol: Any, data: bytes) -> None:
    protocol.get_buffer(len(data))[: len(data)] = data
    protocol.buffer_updated(len(data))


@compiled
def test_plain_heads_bypass_httptools(monkeypatch):
    protocol, transport, begins = _counting_connection(summary, monkeypatch)
    _feed(protocol, PLAIN * 3 + b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
    assert begins == [0]
    assert bodies(transport.data) == [b"GET /p "] * 3 + [b"POST /b ok"]


@compiled
def test_a_repeated_content_type_is_left_to_httptools(monkeypatch):
    """The scanner reads one Content-Type; two go where the core compares their values."""
    protocol, transport, begins = _counting_connection(summary, monkeypatch)
    head = b"POST /t HTTP/1.1\r\nHost: x\r\nContent-Type: a\r\nContent-Length: 2\r\n"
    _feed(protocol, head + b"\r\nok")
    assert begins == [0]
    _feed(protocol, head + b"Content-Type: a\r\n\r\nok")
    assert begins == [1]
    assert bodies(transport.data) == [b"POST /t ok"] * 2


@compiled
def test_connection_returns_to_the_scanner_after_httptools(monkeypatch):
    protocol, transport, begins = _counting_connection(summary, monkeypatch)
    _feed(protocol, CHUNKED + PLAIN)  # httptools takes the rest of a read it was handed
    assert begins == [2]
    _feed(protocol, CHUNKED[:20])
    _feed(protocol, CHUNKED[20:])
    assert begins == [3]
    _feed(protocol, PLAIN + PLAIN)
    assert begins == [3]
    assert len(bodies(transport.data)) == 5


@compiled
@pytest.mark.parametrize("position", [0, 7, 8, 13])
async def test_every_byte_in_a_value_reads_as_httptools_reads_it(position):
    """The scanner checks values eight bytes at a time: no byte may slip through a word."""

    async def fields(request: cyhttp.Request) -> cyhttp.Response:
        return cyhttp.Response(repr(request.headers.raw).encode())

    for byte in range(256):
        value = bytearray(b"0123456789abcdef")
        value[position] = byte
        data = b"GET / HTTP/1.1\r\nHost: h\r\nX-V: " + bytes(value) + b"\r\n\r\n"
        outputs = []
        for impl in ("cython", "python"):
            c = Conn(fields, impl)
            c.feed(data)
            await c.settle(2)
            outputs.append((DATE.sub(b"", c.data), c.transport.ended))
        assert outputs[0] == outputs[1], byte
