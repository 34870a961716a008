"""Protocol behaviour through a fake transport: the exact bytes each core writes."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re

import pytest

import cyhttp
from cyhttp._wire import format_date_block

from .support import Conn, split_responses

DATE = re.compile(rb"Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n")
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
HELLO = cyhttp.Response(b"Hello, world!", content_type="text/plain")
HELLO_BYTES = (
    b"HTTP/1.1 200 OK\r\nServer: cyhttp\r\nDate: D\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 13\r\n\r\nHello, world!"
)


def norm(data: bytes) -> bytes:
    """Replace every Date value (checked for its format) with ``D``."""
    return DATE.sub(b"Date: D\r\n", data)


def hello(request: cyhttp.Request) -> cyhttp.Response:
    return HELLO


async def ahello(request: cyhttp.Request) -> cyhttp.Response:
    return HELLO


def test_simple_get_exact_bytes(conn):
    c = conn(hello)
    c.feed(GET)
    assert norm(c.data) == HELLO_BYTES
    assert not c.transport.closed


@pytest.mark.parametrize(
    "status, line",
    [
        (413, b"HTTP/1.1 413 Content Too Large\r\n"),  # "Request Entity Too Large" before 3.13
        (414, b"HTTP/1.1 414 URI Too Long\r\n"),
        (416, b"HTTP/1.1 416 Range Not Satisfiable\r\n"),
        (422, b"HTTP/1.1 422 Unprocessable Content\r\n"),
        (299, b"HTTP/1.1 299 \r\n"),  # unregistered: an empty reason phrase
    ],
)
def test_reason_phrases_do_not_depend_on_the_interpreter(conn, status, line):
    # RFC 9110's names on every Python: http.HTTPStatus changed some in 3.13.
    c = conn(lambda request: cyhttp.Response(b"", status=status))
    c.feed(GET)
    assert c.data.startswith(line)


def test_server_answers_carry_the_same_phrases(conn):
    c = conn(lambda request: HELLO, max_body_size=10)
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
    assert c.data.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert c.data.endswith(b"\r\n\r\nContent Too Large\n")


@pytest.mark.parametrize("when", [0, 951782400, 1_700_000_000.7, 4_102_444_799])
def test_date_format_matches_the_standard_library(when):
    from email.utils import formatdate

    expected = b"Server: cyhttp\r\nDate: " + formatdate(when, usegmt=True).encode() + b"\r\n"
    assert format_date_block(when) == expected


def test_date_header_is_current_rfc_format(conn):
    c = conn(hello)
    c.feed(GET)
    date = DATE.search(c.data)
    assert date is not None
    assert format_date_block(0).startswith(b"Server: cyhttp\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT")


def test_coroutine_handler_same_bytes(conn):
    c = conn(ahello)
    c.feed(GET)
    assert norm(c.data) == HELLO_BYTES


async def test_eager_coroutine_creates_no_task(conn):
    seen = []

    async def app(request):
        seen.append(len(asyncio.all_tasks()))
        return HELLO

    c = conn(app)
    before = len(asyncio.all_tasks())
    c.feed(GET * 3)
    assert seen == [before] * 3  # no task existed while the handlers ran
    assert len(asyncio.all_tasks()) == before
    assert norm(c.data) == HELLO_BYTES * 3


def test_pipelined_requests_one_write(conn):
    c = conn(hello)
    c.feed(GET * 16)
    assert len(c.transport.writes) == 1
    assert norm(c.data) == HELLO_BYTES * 16


async def test_pipelined_order_kept_when_later_finishes_first(conn):
    gate = asyncio.Event()

    async def app(request):
        if request.path == "/slow":
            await gate.wait()
        return cyhttp.Response(request.path.encode())

    c = conn(app)
    c.feed(
        b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p for p in (b"/slow", b"/fast", b"/fast2"))
    )
    await c.settle()
    assert c.data == b""  # /fast is ready but must wait for /slow
    gate.set()
    await c.settle()
    bodies = [r.partition(b"\r\n\r\n")[2] for r in split_responses(c.data)]
    assert bodies == [b"/slow", b"/fast", b"/fast2"]


async def test_suspending_handler_runs_in_task_with_current_task(conn):
    async def app(request):
        await asyncio.sleep(0)
        assert asyncio.current_task() is not None
        async with asyncio.timeout(5):  # needs a current task
            await asyncio.sleep(0.001)
        return HELLO

    c = conn(app)
    c.feed(GET)
    await asyncio.sleep(0.05)
    assert norm(c.data) == HELLO_BYTES


async def test_handler_awaiting_failed_future_sees_exception(conn):
    async def app(request):
        fut = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(fut.set_exception, KeyError("k"))
        try:
            await fut
        except KeyError:
            return cyhttp.Response(b"caught")
        return cyhttp.Response(b"missed")

    c = conn(app)
    c.feed(GET)
    await c.settle()
    assert c.data.endswith(b"\r\n\r\ncaught")


async def test_contextvars_isolated_per_request(conn):
    var: contextvars.ContextVar[str] = contextvars.ContextVar("v", default="unset")
    seen = []

    async def app(request):
        seen.append(var.get())
        var.set(request.path)
        if request.path == "/a":
            await asyncio.sleep(0)
            seen.append(var.get())
        return HELLO

    c = conn(app)
    c.feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    await c.settle()
    assert seen == ["unset", "unset", "/a"]


@pytest.mark.parametrize(
    ("request_bytes", "connection_header", "closes"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None, False),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"close", True),
        (b"GET / HTTP/1.0\r\n\r\n", b"close", True),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", b"keep-alive", False),
    ],
    ids=["http11-default", "http11-close", "http10-default", "http10-keep-alive"],
)
async def test_keep_alive_rules(conn, request_bytes, connection_header, closes):
    c = conn(hello)
    c.feed(request_bytes)
    head = c.data.partition(b"\r\n\r\n")[0]
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    assert headers.get(b"Connection") == connection_header
    await c.settle()
    assert c.transport.closed is closes


@pytest.mark.parametrize("app", [hello, ahello, "suspending"])
async def test_data_after_connection_close_is_ignored(conn, app):
    async def suspending(request: cyhttp.Request) -> cyhttp.Response:
        await asyncio.sleep(0)
        return HELLO

    c = conn(suspending if app == "suspending" else app)
    c.feed(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + GET)
    c.feed(GET)
    await c.settle()
    # One answer and nothing for what followed (RFC 9112 §9.6), then a lingering close:
    # half-closed first, so the unread bytes cannot turn the close into a reset.
    assert norm(c.data) == HELLO_BYTES.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    assert c.transport.eof


async def test_handler_connection_close_closes(conn):
    closing = cyhttp.Response(b"bye", headers={"Connection": "close"})
    c = conn(lambda r: closing)
    c.feed(GET + GET)
    assert norm(c.data).count(b"HTTP/1.1 200") == 1
    assert b"Connection: close\r\n" in c.data
    assert c.transport.ended


def test_head_has_get_headers_and_no_body(conn):
    c = conn(hello)
    c.feed(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert norm(c.data) == HELLO_BYTES[: -len(b"Hello, world!")]


@pytest.mark.parametrize("status", [204, 304, 101, 103])
def test_no_body_statuses(conn, status):
    resp = cyhttp.Response(b"ignored", status=status)
    c = conn(lambda r: resp)
    c.feed(GET)
    head, _, body = c.data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status)
    assert b"Content-Length" not in head
    assert body == b""


def test_user_headers_and_overrides(conn):
    resp = cyhttp.Response(
        b"x",
        headers=[("X-A", "1"), ("X-A", "2"), ("Server", "mine"), ("Date", "yesterday")],
    )
    c = conn(lambda r: resp)
    c.feed(GET)
    assert c.data == (
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\nX-A: 2\r\nServer: mine\r\nDate: yesterday\r\n"
        b"Content-Length: 1\r\n\r\nx"
    )


def test_user_content_length_for_head(conn):
    resp = cyhttp.Response(headers={"Content-Length": "1000"})
    c = conn(lambda r: resp)
    c.feed(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (
        norm(c.data)
        == b"HTTP/1.1 200 OK\r\nServer: cyhttp\r\nDate: D\r\nContent-Length: 1000\r\n\r\n"
    )


def test_content_length_body(conn):
    async def echo(request):
        return cyhttp.Response(await request.body())

    c = conn(echo)
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world" + GET)
    first, second = c.data.split(b"HTTP/1.1 200 OK")[1:]
    assert first.endswith(b"Content-Length: 11\r\n\r\nhello world")
    assert second.endswith(b"Content-Length: 0\r\n\r\n")


async def test_chunked_body_split_across_reads(conn):
    async def echo(request):
        return cyhttp.Response(await request.body())

    c = conn(echo)
    data = (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    for i in range(len(data)):
        c.feed(data[i : i + 1])
        await c.settle(2)
    await c.settle()
    assert c.data.endswith(b"Content-Length: 11\r\n\r\nhello world")


async def test_stream_request_body(conn):
    pieces = []

    async def app(request):
        async for chunk in request.stream():
            pieces.append(chunk)
        return cyhttp.Response(b"%d" % sum(map(len, pieces)))

    c = conn(app)
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
    await c.settle()
    assert c.data == b""
    c.feed(b"56789")
    await c.settle()
    assert b"".join(pieces) == b"0123456789"
    assert len(pieces) == 2
    assert c.data.endswith(b"\r\n\r\n10")


async def test_streaming_body_reader_backpressure(conn):
    release = asyncio.Event()

    async def app(request):
        await release.wait()
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
        return cyhttp.Response(b"%d" % total)

    c = conn(app)
    size = 1024 * 1024
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
    sent = 0
    block = b"x" * 65536
    while c.transport.reading and sent < size:
        c.feed(block)
        sent += len(block)
        await c.settle(2)
    assert not c.transport.reading  # the reader fell behind: the core stopped reading
    assert sent < size
    release.set()
    while sent < size:
        await c.settle()
        if c.transport.reading:
            c.feed(block)
            sent += len(block)
    await c.settle()
    assert c.data.endswith(b"\r\n\r\n%d" % size)


async def test_expect_100_continue(conn):
    async def echo(request):
        return cyhttp.Response(await request.body())

    c = conn(echo)
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    await c.settle()
    assert c.data == b"HTTP/1.1 100 Continue\r\n\r\n"
    c.feed(b"hello")
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert c.data.endswith(b"\r\n\r\nhello")
    assert not c.transport.closed


async def test_expect_rejected_without_reading_closes(conn):
    c = conn(lambda r: cyhttp.Response(b"no", status=413))
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    await c.settle()
    assert b"100 Continue" not in c.data
    assert c.data.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close\r\n" in c.data
    assert c.transport.ended


async def test_bad_request_400_and_close(conn):
    c = conn(hello)
    c.feed(GET + b"GET / NOT-HTTP/1.1\r\n\r\n")
    await c.settle()
    first, second = c.data.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200 OK")
    assert norm(b"HTTP/1.1 " + second) == (
        b"HTTP/1.1 400 Bad Request\r\nServer: cyhttp\r\nDate: D\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 12\r\n"
        b"Connection: close\r\n\r\nBad Request\n"
    )
    assert c.transport.ended


@pytest.mark.parametrize(
    "length", [b"2000", b"9223372036854775808", b"9999999999999999999", b"18446744073709551615"]
)
async def test_huge_content_length_is_413_not_500(conn, length):
    """Found by the differential fuzzer: lengths past 2**63 overflowed a C integer."""
    c = conn(hello, max_body_size=1000)
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n")
    assert c.data.startswith(b"HTTP/1.1 413 ")


async def test_error_close_lingers_then_closes(conn):
    c = conn(hello)
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
    assert c.data.startswith(b"HTTP/1.1 400 ")
    assert c.transport.eof and not c.transport.closed  # half-closed: the answer is safe
    before = c.data
    c.feed(b"more body the client was still sending" * 100)
    assert c.data == before  # read and discarded
    for _ in range(c.server.sweeps.linger - 1):
        c.protocol.tick()
        assert not c.transport.closed
    c.protocol.tick()
    await c.settle()
    assert c.transport.closed


async def test_bad_request_waits_for_earlier_answers(conn):
    gate = asyncio.Event()

    async def app(request):
        await gate.wait()
        return HELLO

    c = conn(app)
    c.feed(GET + b"\x00garbage\r\n\r\n")
    await c.settle()
    assert c.data == b""
    gate.set()
    await c.settle()
    assert norm(c.data).startswith(HELLO_BYTES + b"HTTP/1.1 400 Bad Request")
    assert c.transport.ended


async def test_handler_exception_500_and_connection_survives(conn, caplog):
    def app(request):
        if request.path == "/boom":
            raise RuntimeError("kaboom")
        return HELLO

    c = conn(app)
    with caplog.at_level(logging.ERROR, logger="cyhttp.error"):
        c.feed(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n" + GET)
    responses = norm(c.data).split(b"HTTP/1.1 ")[1:]
    assert responses[0].startswith(b"500 Internal Server Error")
    assert responses[0].endswith(b"Internal Server Error\n")
    assert b"HTTP/1.1 " + responses[1] == HELLO_BYTES
    assert not c.transport.closed
    assert "kaboom" in caplog.text
    assert any(r.exc_info for r in caplog.records)


async def test_async_handler_exception_after_suspend_500(conn, caplog):
    async def app(request):
        await asyncio.sleep(0)
        raise ValueError("late")

    c = conn(app)
    with caplog.at_level(logging.ERROR, logger="cyhttp.error"):
        c.feed(GET + GET)
        await c.settle()
    assert norm(c.data).count(b"HTTP/1.1 500 Internal Server Error") == 2
    assert "late" in caplog.text


def test_wrong_return_type_500(conn, caplog):
    c = conn(lambda r: "not a response")
    with caplog.at_level(logging.ERROR, logger="cyhttp.error"):
        c.feed(GET)
    assert c.data.startswith(b"HTTP/1.1 500 ")
    assert "expected Response" in caplog.text


async def _chunks():
    yield b"ab"
    yield ""
    yield "cd"


async def test_streaming_response_chunked(conn):
    c = conn(lambda r: cyhttp.StreamingResponse(_chunks(), content_type="text/plain"))
    c.feed(GET + GET)
    await c.settle()
    one = (
        b"HTTP/1.1 200 OK\r\nServer: cyhttp\r\nDate: D\r\nContent-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"
    )
    assert norm(c.data) == one * 2
    assert not c.transport.closed


class TaggedResponse(cyhttp.Response):
    __slots__ = ("tag",)


class TaggedStream(cyhttp.StreamingResponse):
    pass


async def test_response_subclasses_are_served(conn):
    answers = iter([TaggedResponse(b"Hello, world!", content_type="text/plain"), None])

    def app(request: cyhttp.Request) -> cyhttp.Response | cyhttp.StreamingResponse:
        return next(answers) or TaggedStream(_chunks(), content_type="text/plain")

    c = conn(app)
    c.feed(GET + GET)
    await c.settle()
    assert norm(c.data) == HELLO_BYTES + (
        b"HTTP/1.1 200 OK\r\nServer: cyhttp\r\nDate: D\r\nContent-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"
    )


async def test_streaming_response_http10_close_delimited(conn):
    c = conn(lambda r: cyhttp.StreamingResponse(_chunks()))
    c.feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    await c.settle()
    assert norm(c.data) == (
        b"HTTP/1.1 200 OK\r\nServer: cyhttp\r\nDate: D\r\nConnection: close\r\n\r\nabcd"
    )
    assert c.transport.ended


async def test_streaming_head_sends_no_body(conn):
    closed = []

    async def gen():
        try:
            yield b"never"
        finally:
            closed.append(True)

    c = conn(lambda r: cyhttp.StreamingResponse(gen()))
    c.feed(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + GET)
    await c.settle()
    first, second = norm(c.data).split(b"HTTP/1.1 200 OK")[1:]
    assert first.endswith(b"Transfer-Encoding: chunked\r\n\r\n")
    assert second.endswith(b"\r\n\r\n5\r\nnever\r\n0\r\n\r\n")


async def test_streaming_failure_closes_connection(conn, caplog):
    async def gen():
        yield b"part"
        raise RuntimeError("stream broke")

    c = conn(lambda r: cyhttp.StreamingResponse(gen()))
    with caplog.at_level(logging.ERROR, logger="cyhttp.error"):
        c.feed(GET + GET)
        await c.settle()
    assert c.data.endswith(b"4\r\npart\r\n")  # no terminating chunk: the client sees truncation
    assert c.transport.ended
    assert "stream broke" in caplog.text


async def test_streaming_waits_for_drain(conn):
    produced = []

    async def gen():
        for i in range(3):
            produced.append(i)
            yield b"x"

    c = conn(lambda r: cyhttp.StreamingResponse(gen()))
    c.transport.pause_on_write = True
    c.feed(GET)
    await c.settle()
    assert produced == [0]  # the head and first chunk filled the transport: wait
    assert not c.transport.reading  # writing paused: stop reading too
    c.transport.drain()
    await c.settle()
    assert produced == [0, 1, 2]
    assert c.data.endswith(b"0\r\n\r\n")
    assert c.transport.reading


async def test_requests_while_write_paused_are_deferred(conn):
    calls = []
    c = conn(lambda r: calls.append(r.raw_path) or HELLO)
    c.transport.pause_on_write = True
    c.feed(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
    c.feed(b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert calls == [b"/1"]  # /2 waits: the client is not reading what we write
    c.transport.drain()
    await c.settle()
    assert calls == [b"/1", b"/2"]
    assert norm(c.data) == HELLO_BYTES * 2


async def test_upgrade_request_answered_then_closed(conn):
    c = conn(lambda r: cyhttp.Response(b"no upgrade", headers={"X-Up": r.headers["upgrade"]}))
    c.feed(
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00"
    )
    await c.settle()
    assert b"X-Up: websocket\r\n" in c.data
    assert c.data.endswith(b"no upgrade")
    assert c.transport.ended


def test_request_attributes(conn, impl):
    seen = {}

    def app(request):
        seen.update(
            is_public_type=isinstance(request, cyhttp.Request),
            method=request.method,
            path=request.path,
            raw_path=request.raw_path,
            query=request.query_string,
            version=request.http_version,
            keep=request.keep_alive,
            client=request.client,
            host=request.headers["HOST"],
            multi=request.headers.getall("x-m"),
            has=("x-m" in request.headers, "nope" in request.headers),
            raw=request.headers.raw,
        )
        return HELLO

    c = conn(app)
    c.feed(b"PATCH /a%20b/c?x=1&y=%20 HTTP/1.1\r\nHost: h\r\nX-M: 1\r\nx-m: 2\r\n\r\n")
    assert seen == {
        "is_public_type": True,
        "method": "PATCH",
        "path": "/a b/c",
        "raw_path": b"/a%20b/c?x=1&y=%20",
        "query": b"x=1&y=%20",
        "version": "1.1",
        "keep": True,
        "client": ("127.0.0.1", 50000),
        "host": "h",
        "multi": ["1", "2"],
        "has": (True, False),
        "raw": [(b"Host", b"h"), (b"X-M", b"1"), (b"x-m", b"2")],
    }


def test_url_split_across_reads(conn):
    paths = []
    c = conn(lambda r: paths.append(r.raw_path) or HELLO)
    for piece in (b"GET /abc", b"def?q", b"=1 HTTP/1.1\r\nHo", b"st: x\r\n\r\n"):
        c.feed(piece)
    assert paths == [b"/abcdef?q=1"]


async def test_disconnect_cancels_suspended_handler(conn):
    started = asyncio.Event()
    cancelled = []

    async def app(request):
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return HELLO

    c = conn(app)
    c.feed(GET)
    await started.wait()
    c.protocol.connection_lost(None)
    await c.settle()
    assert cancelled == [True]
    assert c.server.connections == set()


async def _lose_client_mid_body(c: Conn) -> None:
    """Start a POST whose body never comes whole, then lose the client."""
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
    await c.settle()
    c.protocol.connection_lost(None)
    await c.settle()


async def test_disconnect_raises_client_disconnected_in_body_reader_quietly(conn, caplog):
    outcome = []

    async def app(request):
        try:
            await request.body()
        except BaseException as exc:
            outcome.append(type(exc).__name__)
            raise
        return HELLO

    # The documented promise (docs/api.md): the body reader raises ClientDisconnected (not the
    # cancellation that follows it), and nothing is logged for a client that left.
    await _lose_client_mid_body(conn(app))
    assert outcome == ["ClientDisconnected"]
    assert caplog.records == []


async def test_disconnect_still_cancels_a_handler_that_ignores_it(conn):
    outcome = []

    async def app(request):
        try:
            await request.body()
        except cyhttp.ClientDisconnected:
            outcome.append("ClientDisconnected")
        try:
            await asyncio.Event().wait()  # would wait forever
        except asyncio.CancelledError:
            outcome.append("CancelledError")
            raise
        return HELLO

    await _lose_client_mid_body(conn(app))
    assert outcome == ["ClientDisconnected", "CancelledError"]


async def test_cancellation_racing_a_finished_future_reaches_handler():
    from cyhttp import _stepping

    seen = []
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    async def handler():
        try:
            await fut
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        seen.append("resumed")

    it = handler().__await__()
    yielded = it.send(None)
    task = _stepping.start_task(it, yielded, contextvars.copy_context())
    await asyncio.sleep(0)
    fut.set_result(None)  # the future completes ...
    task.cancel()  # ... and the Task is cancelled before it wakes
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]


async def test_cancel_before_first_step_reaches_handler():
    from cyhttp import _stepping

    seen = []

    async def handler():
        try:
            await asyncio.sleep(10)
        finally:
            seen.append("cleanup")

    it = handler().__await__()
    task = _stepping.start_task(it, it.send(None), contextvars.copy_context())
    task.cancel()  # before the Task ever ran
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cleanup"]


async def test_shutdown_idle_closes_now(conn):
    c = conn(hello)
    c.feed(GET)
    c.protocol.tick()  # a sweep has seen it since its last request: quiet
    c.protocol.shutdown()
    await c.settle()
    assert c.transport.ended


async def test_shutdown_answers_the_next_request_of_a_busy_connection_as_its_last(conn):
    """A client that was busy a moment ago has its next request on the wire: it is
    answered, with Connection: close, instead of being reset by the close."""
    c = conn(hello)
    c.feed(GET)
    c.protocol.shutdown()
    await c.settle()
    assert not c.transport.ended
    c.feed(GET + GET)  # the second is after the last: not answered
    await c.settle()
    answers = split_responses(c.transport.data)
    assert len(answers) == 2
    assert b"Connection: close" not in answers[0] and b"Connection: close" in answers[1]
    assert c.transport.ended


async def test_shutdown_closes_a_busy_connection_after_the_grace(conn):
    c = conn(hello)
    c.feed(GET)
    c.protocol.shutdown()
    await c.settle()
    assert not c.transport.ended
    await asyncio.sleep(0.6)  # DRAIN_GRACE, 0.5 s: no request came
    assert c.transport.ended


async def test_shutdown_lets_in_flight_finish_with_close(conn):
    gate = asyncio.Event()

    async def app(request):
        await gate.wait()
        return HELLO

    c = conn(app)
    c.feed(GET)
    await c.settle()
    c.protocol.shutdown()
    c.feed(GET)  # a new request after shutdown is not answered
    await c.settle()
    assert not c.transport.closed
    gate.set()
    await c.settle()
    assert norm(c.data) == HELLO_BYTES.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    assert c.transport.ended


async def test_idle_sweep_closes_keepalive_connection(conn):
    c = conn(hello, keepalive_timeout=2)
    limit = c.server.sweeps.idle
    c.feed(GET)
    c.protocol.tick()  # the first sweep notices the request
    for _ in range(limit - 1):
        c.protocol.tick()
    assert not c.transport.closed
    c.protocol.tick()
    await c.settle()
    assert c.transport.ended


async def test_pipeline_limit_pauses_reading(conn):
    gate = asyncio.Event()

    async def app(request):
        await gate.wait()
        return HELLO

    c = conn(app, max_pipelined=4)
    c.feed(GET * 6)
    await c.settle()
    assert not c.transport.reading
    gate.set()
    await c.settle()
    assert c.transport.reading
    assert norm(c.data) == HELLO_BYTES * 6


def test_large_body_keeps_pipelined_order(conn):
    big = cyhttp.Response(b"B" * 40_000)

    def app(request):
        return big if request.path == "/big" else cyhttp.Response(request.path.encode())

    c = conn(app)
    paths = (b"/a", b"/big", b"/c")
    c.feed(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p for p in paths))
    bodies = [r.partition(b"\r\n\r\n")[2] for r in split_responses(c.data)]
    assert bodies == [b"/a", b"B" * 40_000, b"/c"]
    assert b"B" * 40_000 in c.transport.writes  # handed over as is, not copied into the buffer
    assert norm(c.protocol.serialize(big)).endswith(
        b"Content-Length: 40000\r\n\r\n" + b"B" * 40_000
    )
    assert len(c.transport.writes) == 3  # serialize did no I/O


def test_write_buffer_limits_set(conn):
    c = conn(hello)
    assert c.transport.limits is not None
    high, low = c.transport.limits
    assert high > low >= 16 * 1024


async def test_protocol_entry_points_refuse_bad_arguments(impl):
    """What the event loop and httptools never pass is refused, not read as memory."""
    c = Conn(lambda r: cyhttp.Response(), impl)
    with pytest.raises((ValueError, IndexError, TypeError)):
        c.protocol.buffer_updated(len(c.protocol.get_buffer(-1)) + 1)
    with pytest.raises(TypeError):
        c.protocol._reader.on_header(None, None)  # httptools' callback target
    c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")  # the connection still serves
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 200 OK")
