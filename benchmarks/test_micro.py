"""Micro suite: in-process cost per request of each core, no sockets.

Run with ``pytest benchmarks/ --benchmark-only``. Each case feeds bytes to a
protocol on a sink transport, exactly as the event loop would, and runs the
handler eagerly; the summary at the end prints the Cython/pure-Python ratio.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import cyhttp
from cyhttp import _impl

IMPLS = list(_impl.AVAILABLE)

HELLO = cyhttp.Response(b"Hello, world!", content_type="text/plain")
WITH_HEADERS = cyhttp.Response(
    b"x" * 256,
    content_type="application/json",
    headers=[("Cache-Control", "no-cache"), ("X-Request-Id", "4f1c2a"), ("Vary", "Accept")],
)

GET = b"GET / HTTP/1.1\r\nHost: localhost:8000\r\n\r\n"
GET_10_HEADERS = (
    b"GET /api/items?page=2 HTTP/1.1\r\n"
    b"Host: api.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    b"Accept: application/json, text/plain, */*\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Referer: https://example.com/items\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: session=8d1f9a0c3b; theme=dark\r\n"
    b"Cache-Control: no-cache\r\n"
    b"X-Requested-With: XMLHttpRequest\r\n"
    b"\r\n"
)
POST_1K = b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1024\r\n\r\n" + b"p" * 1024


async def hello(request: cyhttp.Request) -> cyhttp.Response:
    return HELLO


async def echo(request: cyhttp.Request) -> cyhttp.Response:
    return cyhttp.Response(await request.body())


class Sink:
    """The least a transport must do: accept writes."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else default

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def close(self) -> None:
        raise AssertionError("the benchmark connection must stay open")


def _connection(impl: str, app: Any) -> Any:
    server = cyhttp.Server(app, implementation=impl)
    protocol = _impl.protocol_class(impl)(server)
    protocol.connection_made(Sink())
    return protocol


def _feeder(impl: str, app: Any, data: bytes) -> Any:
    protocol = _connection(impl, app)
    size = len(data)

    def feed() -> None:
        protocol.get_buffer(size)[:size] = data
        protocol.buffer_updated(size)

    return feed


CASES = {
    "get": (hello, GET, 1),
    "get-10-headers": (hello, GET_10_HEADERS, 1),
    "post-1k": (echo, POST_1K, 1),
    "pipelined-16": (hello, GET * 16, 16),
}


@pytest.fixture(scope="module")
def loop():
    with asyncio.Runner() as runner:
        yield runner.get_loop()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES)
def test_request(benchmark, loop, impl, case):
    app, data, count = CASES[case]
    benchmark.group = case
    benchmark.extra_info["requests_per_round"] = count
    loop.run_until_complete(_bench_in_loop(benchmark, _feeder(impl, app, data)))


async def _bench_in_loop(benchmark: Any, feed: Any) -> None:
    benchmark(feed)  # handlers need a running loop only if they suspend; these do not


@pytest.mark.parametrize("impl", IMPLS)
def test_serialize(benchmark, impl):
    benchmark.group = "serialize"
    protocol = _connection(impl, hello)
    benchmark(protocol.serialize, WITH_HEADERS)
