"""Micro suite: in-process cost per request of each core, no sockets.

Run with ``pytest benchmarks/ --benchmark-only``. Each case feeds bytes to a
protocol on a sink transport, exactly as the event loop would, and runs the
handler eagerly; the summary at the end prints the Cython/pure-Python ratio.
Each core builds its responses with its own implementation's classes.

The ``step-*`` cases feed 16 pipelined browser-like requests (a path with a
query, eight field lines) to handlers that each add one thing a real handler
does to the prebuilt-response case; ``realistic`` does all of them, as the
load suite's realistic route does.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import Any, Tuple

import orjson
import pytest

import cyhttp
from cyhttp import _impl, response

IMPLS = list(_impl.AVAILABLE)


def response_class(impl: str) -> Any:
    """The Response class a handler on core *impl* builds."""
    if impl == "python":
        return response.Response
    from cyhttp import _response

    return _response.Response


def with_headers(Response: Any) -> Any:
    return Response(
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
# What a browser sends for a page of an API: a query and eight field lines.
BROWSER = (
    b"GET /items/42?q=abc&page=2 HTTP/1.1\r\n"
    b"Host: shop.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Cookie: session=8d1f9a0c3b; theme=dark\r\n"
    b"Referer: https://shop.example.com/items\r\n"
    b"Connection: keep-alive\r\n"
    b"\r\n"
)


def hello(Response: Any) -> Any:
    prebuilt = Response(b"Hello, world!", content_type="text/plain")

    async def app(request: cyhttp.Request) -> Any:
        return prebuilt

    return app


def echo(Response: Any) -> Any:
    async def app(request: cyhttp.Request) -> Any:
        return Response(await request.body())

    return app


def step(work: Any) -> Any:
    """A handler that does *work* and answers with its result or a prebuilt response."""

    def make(Response: Any) -> Any:
        prebuilt = Response(b"{}", content_type="application/json")

        async def app(request: cyhttp.Request) -> Any:
            result = work(request, Response)
            return result if isinstance(result, Response) else prebuilt

        return app

    return make


def realistic(dumps: Any) -> Any:
    """The load suite's realistic route: route on the path, read the query and a header,
    build a JSON answer with a custom header per request."""

    def make(Response: Any) -> Any:
        async def app(request: cyhttp.Request) -> Any:
            path = request.path
            if not path.startswith("/items/"):
                return Response(b"not found", 404)
            answer = {
                "item": int(path[7:]),
                "q": request.query.get("q"),
                "page": int(request.query.get("page", "1")),
                "agent": request.headers.get("user-agent"),
            }
            return Response(
                dumps(answer),
                headers={"Cache-Control": "no-store", "X-Item": path[7:]},
                content_type="application/json",
            )

        return app

    return make


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
    "step-prebuilt": (step(lambda r, R: None), BROWSER * 16, 16),
    "step-path": (step(lambda r, R: r.path), BROWSER * 16, 16),
    "step-header": (step(lambda r, R: r.headers.get("user-agent")), BROWSER * 16, 16),
    "step-query": (step(lambda r, R: r.query.get("q")), BROWSER * 16, 16),
    "step-response": (
        step(lambda r, R: R(b'{"ok": true}', content_type="application/json")),
        BROWSER * 16,
        16,
    ),
    "step-response-headers": (
        step(
            lambda r, R: R(
                b'{"ok": true}',
                headers={"Cache-Control": "no-store", "X-Item": "42"},
                content_type="application/json",
            )
        ),
        BROWSER * 16,
        16,
    ),
    "step-all": (
        step(
            lambda r, R: R(
                b"item %s, q=%s, %s"
                % (
                    r.path.encode(),
                    r.query.get("q").encode(),
                    r.headers.get("user-agent").encode(),
                ),
                headers={"Cache-Control": "no-store", "X-Item": "42"},
                content_type="text/plain",
            )
        ),
        BROWSER * 16,
        16,
    ),
    "realistic": (realistic(orjson.dumps), BROWSER * 16, 16),
    "realistic-stdlib-json": (realistic(json.dumps), BROWSER * 16, 16),
}


@pytest.fixture(scope="module")
def loop():
    with asyncio.Runner() as runner:
        yield runner.get_loop()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES)
def test_request(benchmark, loop, impl, case):
    make, data, count = CASES[case]
    benchmark.group = case
    benchmark.extra_info["requests_per_round"] = count
    app = make(response_class(impl))
    loop.run_until_complete(_bench_in_loop(benchmark, _feeder(impl, app, data)))


async def _bench_in_loop(benchmark: Any, feed: Any) -> None:
    benchmark(feed)  # handlers need a running loop only if they suspend; these do not


@pytest.mark.parametrize("impl", IMPLS)
def test_serialize(benchmark, impl):
    benchmark.group = "serialize"
    protocol = _connection(impl, hello(response_class(impl)))
    benchmark(protocol.serialize, with_headers(response_class(impl)))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "case",
    ["content-type", "two-headers"],
)
def test_build_response(benchmark, impl, case):
    """Building a response alone (the bar: 100 ns with a content type, 250 with two headers)."""
    Response = response_class(impl)
    benchmark.group = f"build-{case}"
    if case == "content-type":
        benchmark(Response, b'{"ok": true}', content_type="application/json")
    else:
        headers = {"Cache-Control": "no-store", "X-Item": "42"}
        benchmark(Response, b'{"ok": true}', headers=headers, content_type="application/json")


# -- ASGI: the load suite's raw ASGI app, beside the native handler, both with the loop
# turning between reads (an ASGI application runs in a Task of its own, which the loop
# finishes: the same harness for both, so the ratio is fair).


def _native_app(route: str) -> Any:
    from .servers import cyhttp_app

    return cyhttp_app.app


def _asgi_app(route: str) -> Any:
    from .servers import asgi_app

    return asgi_app.app


def _native_as_asgi_app(route: str) -> Any:
    """A native handler written the ASGI app's way: its query and header code, its
    header list; what is left between the two is the interface."""
    from urllib.parse import parse_qsl

    from .servers._common import ITEMS, item_answer

    def app(request: cyhttp.Request) -> cyhttp.Response:
        path = request.path
        query = dict(parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True))
        agent = next((v for n, v in request.headers.items() if n == "user-agent"), None)
        item = path[len(ITEMS) :]
        body = item_answer(item, query.get("q"), query.get("page"), agent)
        headers = [
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
            (b"x-item", item.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        return cyhttp.Response(body, 200, headers)

    return app


TURNING_CASES = {
    "native-hello": (_native_app, GET * 16),
    "asgi-hello": (_asgi_app, GET * 16),
    "native-realistic": (_native_app, BROWSER * 16),
    "asgi-realistic": (_asgi_app, BROWSER * 16),
    "native_as_asgi-realistic": (_native_as_asgi_app, BROWSER * 16),
}


async def _turns() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", TURNING_CASES)
def test_with_loop_turns(benchmark, loop, impl, case):
    """16 requests per read, delivered from a loop callback as the event loop does, then
    the loop's next turns (where an application's Task ends)."""
    make, data = TURNING_CASES[case]
    benchmark.group = f"turning-{case.partition('-')[2]}"
    benchmark.extra_info["requests_per_round"] = 16
    feed = _feeder(impl, make(case), data)

    def read_and_turn() -> None:
        loop.call_soon(feed)
        loop.run_until_complete(_turns())

    benchmark(read_and_turn)


# -- WSGI: the load suite's raw WSGI app on the pool's threads. Each read waits until its
# 16 answers are written, the loop asleep meanwhile: woken by the threads' hand-back to
# it, as when serving.


class AnswerSink(Sink):
    """A Sink that counts the answers written and wakes a waiter at a target count."""

    def __init__(self) -> None:
        super().__init__()
        self.answers = 0
        self.target = 0
        self.done: Any = None

    def write(self, data: bytes) -> None:
        self.written += len(data)
        self.answers += data.count(b"HTTP/1.1 ")
        if self.answers >= self.target and self.done is not None and not self.done.done():
            self.done.set_result(None)


def wsgi_reader(impl: str, case: Tuple[str, bytes]) -> Any:
    """A coroutine function: one read of *case*'s data (16 requests) by a connection of
    its WSGI app (the module of ``benchmarks.servers`` it names) on core *impl*, until
    its 16 answers are written."""
    module, data = case
    app = importlib.import_module(f"benchmarks.servers.{module}").app
    server = cyhttp.Server(app, implementation=impl, interface="wsgi")
    protocol = _impl.protocol_class(impl)(server)
    sink = AnswerSink()
    protocol.connection_made(sink)
    size = len(data)

    async def read() -> None:
        sink.target = sink.answers + 16
        sink.done = asyncio.get_running_loop().create_future()
        protocol.get_buffer(size)[:size] = data
        protocol.buffer_updated(size)
        await sink.done

    return read


# The raw WSGI app, and Flask's (its cost with the server's share in it).
WSGI_CASES = {
    "wsgi-hello": ("wsgi_app", GET * 16),
    "wsgi-realistic": ("wsgi_app", BROWSER * 16),
    "wsgi-flask-hello": ("flask_app", GET * 16),
    "wsgi-flask-realistic": ("flask_app", BROWSER * 16),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", WSGI_CASES)
def test_wsgi(benchmark, loop, impl, case):
    """16 requests per read to a WSGI app (raw or Flask), until all 16 are answered."""
    benchmark.group = case
    benchmark.extra_info["requests_per_round"] = 16
    read = wsgi_reader(impl, WSGI_CASES[case])
    benchmark(lambda: loop.run_until_complete(read()))


class _Done:
    """The cheapest awaitable a server's ``send`` could return: done at once."""

    def __await__(self) -> Any:
        return iter(())


def test_asgi_app_alone(benchmark):
    """The raw ASGI app's realistic route with no server at all: a ready scope (what the
    browser request becomes) and a ``send`` that never waits. Every server's ASGI
    realistic figure includes this; compare it with the native handler's whole request
    (``test_with_loop_turns[native-realistic-*]``, per request)."""
    from .servers import asgi_app

    head, _, _ = BROWSER.partition(b"\r\n\r\n")
    fields = [line.split(b": ", 1) for line in head.split(b"\r\n")[1:]]
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/items/42",
        "query_string": b"q=abc&page=2",
        "headers": [(name.lower(), value) for name, value in fields],
    }
    done = _Done()

    def send(message: Any) -> _Done:
        return done

    def run() -> None:
        step = asgi_app.app(scope, None, send)
        try:
            step.send(None)
        except StopIteration:
            return
        raise AssertionError("the app waited for something")

    benchmark.group = "asgi-app-alone"
    benchmark(run)
