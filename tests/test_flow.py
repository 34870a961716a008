"""Reading flow control: whatever a handler does with a request body, the connection
reads again once that request is answered, so the next request on it is served.

The defect these guard against: a body larger than the body high-water mark (256 KiB)
paused reading, and when the handler took the already complete body (or answered
without reading it) nothing resumed it; the next request sat in the socket until the
idle timeout closed the connection. Socket tests on both cores, native and ASGI; a
property test on a fake transport over sizes, read splits and handler delays.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cyhttp

from .support import Conn, split_responses

KIB = 1024
# Around and far above every threshold: the body high-water mark (256 KiB), the read
# buffer, the large-body write path (16 KiB), and the 1 MiB default body limit.
SIZES = [1 * KIB, 256 * KIB + 1, 300_000, 8 * 1024 * KIB]
MODES = ["now", "late", "partial", "never"]
# Far below the idle timeout the servers get here (20 s): a stall cannot pass for slowness.
BOUND = 3.0


async def native_app(request: cyhttp.Request) -> cyhttp.Response:
    mode = request.path[1:]
    size = 0
    if mode == "late":
        await asyncio.sleep(0.1)
    if mode in ("now", "late"):
        size = len(await request.body())
    elif mode == "partial":
        async for chunk in request.stream():
            size = len(chunk)
            break
    return cyhttp.Response(str(size).encode())


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    mode = scope["path"][1:]
    size = 0
    if mode == "late":
        await asyncio.sleep(0.1)
    if mode in ("now", "late", "partial"):
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body") or mode == "partial":
                break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def _post(mode: str, size: int, chunked: bool) -> bytes:
    body = b"x" * size
    if not chunked:
        head = b"POST /%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (mode.encode(), size)
        return head + body
    head = b"POST /%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % mode.encode()
    piece = 100_000
    chunks = [body[i : i + piece] for i in range(0, size, piece)]
    return head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


def _read_answer(sock: socket.socket) -> bytes:
    """One Content-Length framed answer, or everything until the server closes."""
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(rest) >= length:
                return data
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


@pytest.mark.parametrize("interface", ["native", "asgi"])
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", SIZES)
def test_next_request_is_served_after_a_body(live, interface, chunked, mode, size):
    app = native_app if interface == "native" else asgi_app
    options = {"keepalive_timeout": 20.0, "max_body_size": 16 * 1024 * KIB}
    with live(app, **options) as srv, srv.connect() as sock:
        sock.settimeout(BOUND + 5)
        sock.sendall(_post(mode, size, chunked))
        answer = _read_answer(sock)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        if mode in ("now", "late"):
            assert answer.endswith(b"\r\n\r\n%d" % size)
        start = time.monotonic()
        if b"connection: close" in answer.lower():
            # Answered before the body was all in: the server says so and closes at
            # once, after draining what the client still sends.
            assert mode in ("partial", "never"), answer[:200]
            assert sock.recv(65536) == b""
        else:
            sock.sendall(b"GET /now HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_answer(sock).startswith(b"HTTP/1.1 200 ")
        assert time.monotonic() - start < BOUND


def test_late_large_body_soak_of_tries(live):
    """The issue's scenario, many times over on one server: 0 stalls."""
    with live(native_app, keepalive_timeout=20.0) as srv:
        for _ in range(50):
            with srv.connect() as sock:
                sock.sendall(_post("late", 300_000, False))
                assert _read_answer(sock).endswith(b"300000")
                start = time.monotonic()
                sock.sendall(b"GET /now HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _read_answer(sock).startswith(b"HTTP/1.1 200 ")
                assert time.monotonic() - start < BOUND


def test_expect_continue_then_large_body(live):
    """100 Continue, then a body past the high-water mark read late: the next request runs."""
    with live(native_app, keepalive_timeout=20.0) as srv, srv.connect() as sock:
        sock.sendall(
            b"POST /late HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"x" * 300_000)
        assert _read_answer(sock).endswith(b"300000")
        sock.sendall(b"GET /now HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_answer(sock).startswith(b"HTTP/1.1 200 ")


# -- the property, on a fake transport -----------------------------------------


def _delayed_app(delay: int, mode: str) -> Any:
    async def app(request: cyhttp.Request) -> cyhttp.Response:
        for _ in range(delay):
            await asyncio.sleep(0)
        if mode == "read":
            return cyhttp.Response(b"%d" % len(await request.body()))
        if mode == "stream":
            async for _ in request.stream():
                pass
        return cyhttp.Response(b"-")

    return app


async def _idle_after_answer(impl: str, size: int, cuts: list[int], delay: int, mode: str):
    c = Conn(_delayed_app(delay, mode), impl, max_body_size=1 << 24)
    data = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size + b"y" * size
    data += b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    last = 0
    for cut in [*sorted(cuts), len(data)]:
        cut = min(cut, len(data))
        if cut > last:
            # Like the event loop: nothing is delivered while reading is paused.
            for _ in range(200):
                if c.transport.reading or c.transport.ended:
                    break
                await asyncio.sleep(0)
            if c.transport.ended:
                break
            assert c.transport.reading, "reading never resumed before more input came"
            c.feed(data[last:cut])
            last = cut
        await c.settle(delay + 5)
    await c.settle(delay + 20)
    return c


@settings(max_examples=60, deadline=None, database=None)
@given(
    size=st.sampled_from([0, 1, 4096, 256 * KIB, 256 * KIB + 1, 300_000, 700_000]),
    cuts=st.lists(st.integers(0, 800_000), max_size=6),
    delay=st.integers(0, 4),
    mode=st.sampled_from(["read", "stream", "ignore"]),
)
def test_reading_resumes_whenever_idle_after_an_answer(size, cuts, delay, mode):
    for impl in _impls():
        with asyncio.Runner() as runner:
            c = runner.run(_idle_after_answer(impl, size, cuts, delay, mode))
        answers = split_responses(c.data)
        if c.transport.ended:
            # Answered before its body was all in: closed, never stalled.
            assert answers and b"Connection: close" in answers[-1]
            continue
        assert len(answers) == 2, c.data[:300]
        assert c.transport.reading, (impl, size, cuts, delay, mode)


def _impls() -> list[str]:
    from cyhttp import _impl

    return ["python"] if _impl.HttpProtocolC is None else ["cython", "python"]


class _SocketTransport:
    """Only what the idle sweep's log asks of a transport, over a real socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"socket": self.sock, "peername": ("127.0.0.1", 4242)}.get(name, default)


def test_idle_close_with_unread_input_is_logged(caplog):
    """A connection closed as idle while bytes wait unread says so at DEBUG: a stall of
    reading looks idle to the sweep, and this line is what tells the two apart."""
    from cyhttp import _connection_log

    left, right = socket.socketpair()
    with left, right:
        right.sendall(b"GET / HTTP/1.1\r\n\r\n")
        time.sleep(0.05)
        with caplog.at_level("DEBUG", logger="cyhttp.error"):
            _connection_log.idle_expired(_SocketTransport(left), 2)
            left.recv(100)
            _connection_log.idle_expired(_SocketTransport(left), 0)  # nothing unread: no line
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "closing idle connection from ('127.0.0.1', 4242) with 18 bytes unread in the socket"
        " (reading paused for reasons 0x2)"
    ]
