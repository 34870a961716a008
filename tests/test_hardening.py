"""Limits, timeouts and abusive clients, through real sockets, against both cores."""

from __future__ import annotations

import socket
import time

import pytest

import cyhttp

from .support import read_until_closed

calls: list[bytes] = []


async def app(request: cyhttp.Request) -> cyhttp.Response:
    calls.append(request.raw_path)
    if request.path == "/echo":
        return cyhttp.Response(await request.body())
    if request.path == "/big":
        return cyhttp.Response(b"b" * (256 * 1024))
    return cyhttp.Response(b"ok")


@pytest.fixture(autouse=True)
def _reset_calls():
    calls.clear()


def _status(data: bytes) -> int:
    assert data.startswith(b"HTTP/1.1 "), data[:100]
    return int(data[9:12])


def _send_tolerant(sock: socket.socket, data: bytes) -> None:
    """Send, accepting that a server which already refused may close first."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def _answer(sock: socket.socket) -> bytes:
    try:
        return read_until_closed(sock)
    except ConnectionResetError:
        pytest.fail("connection reset before the error answer was read")


def test_414_long_url(live):
    with live(app, max_url_size=1024) as srv, srv.connect() as sock:
        sock.sendall(b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        data = _answer(sock)
        assert _status(data) == 414 and b"Connection: close" in data
    with live(app, max_url_size=1024) as srv, srv.connect() as sock:
        sock.sendall(b"GET /" + b"a" * 1000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(sock.recv(65536)) == 200  # just under the limit is fine


def test_431_header_bytes(live):
    with live(app, max_header_size=4096) as srv, srv.connect() as sock:
        headers = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(50))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert _status(_answer(sock)) == 431
    assert calls == []


def test_431_header_count(live):
    with live(app, max_headers=20) as srv, srv.connect() as sock:
        headers = b"".join(b"X-%d: v\r\n" % i for i in range(30))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert _status(_answer(sock)) == 431


def test_431_single_endless_header_is_cut_off_early(live):
    """One header value that never ends: refused long before it is all sent."""
    with live(app, max_header_size=8192) as srv, srv.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        sock.settimeout(0.05)
        data = b""
        while sent < 64 * 1024 * 1024 and not data:
            _send_tolerant(sock, b"v" * 65536)
            sent += 65536
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
        assert data and _status(data) == 431
        assert sent <= 1024 * 1024  # the server did not wait for (or buffer) the rest


def test_413_content_length_refused_before_body(live):
    with live(app, max_body_size=1000) as srv, srv.connect() as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        data = _answer(sock)  # no body was sent at all
        assert _status(data) == 413 and b"100 Continue" not in data
    assert calls == []


def test_413_chunked_body_over_limit_while_reading(live):
    with live(app, max_body_size=64 * 1024) as srv, srv.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (16384, b"c" * 16384)
        for _ in range(64):  # 1 MiB offered
            _send_tolerant(sock, chunk)
        data = _answer(sock)
        assert _status(data) == 413
        assert data.count(b"HTTP/1.1 ") == 1


def test_body_at_limit_accepted(live):
    with live(app, max_body_size=1000) as srv, srv.connect() as sock:
        head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
        sock.sendall(head + b"z" * 1000)
        data = b""
        while not data.endswith(b"z" * 1000):
            data += sock.recv(65536)
        assert _status(data) == 200


def test_max_connections(live):
    with live(app, max_connections=4) as srv:
        held = [srv.connect() for _ in range(4)]
        try:
            for sock in held:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _status(sock.recv(65536)) == 200
            with srv.connect() as extra:
                try:
                    extra.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert extra.recv(65536) == b""  # closed at once, never answered
                except ConnectionResetError:
                    pass
            for sock in held:  # the others keep working
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _status(sock.recv(65536)) == 200
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 5
        while srv.server.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        with srv.connect() as sock:  # room again
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _status(sock.recv(65536)) == 200


def test_slowloris_cut_off(live):
    request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100
    with live(app, header_timeout=0.5) as srv, srv.connect() as sock:
        start = time.monotonic()
        sock.settimeout(0.1)
        data = b""
        for byte in request:  # one byte per 0.1 s, never finishing the head
            _send_tolerant(sock, bytes([byte]))
            try:
                data += sock.recv(65536)
            except TimeoutError:
                continue
            if data:
                break
        elapsed = time.monotonic() - start
        assert _status(data) == 408
        assert 0.4 < elapsed < 3
    assert calls == []


def test_stalled_body_times_out(live):
    with live(app, body_timeout=0.5) as srv, srv.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        start = time.monotonic()
        data = _answer(sock)
        assert _status(data) == 408
        assert 0.4 < time.monotonic() - start < 3


def test_never_reading_client_is_dropped(live):
    """A client that pipelines and never reads: reading stops, then it is dropped."""
    with live(app, write_timeout=0.5) as srv, srv.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(0.2)
        request = b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n"
        sent = 0
        start = time.monotonic()
        while time.monotonic() - start < 10:
            try:
                sock.send(request * 100)
                sent += 100
            except TimeoutError:
                pass  # our send buffer is full: the server stopped reading
            except (BrokenPipeError, ConnectionResetError):
                break  # dropped
        deadline = time.monotonic() + 5
        while srv.server.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not srv.server.connections  # dropped by the write timeout
        assert sent > 1000  # the client did pipeline far more than it read
        # The kernel buffers what the client sent; the server ran only a few handlers.
        assert len(calls) < 200, len(calls)
        assert time.monotonic() - start < 10
    with live(app) as srv, srv.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(sock.recv(65536)) == 200


@pytest.mark.slow
def test_connection_flood_stays_responsive(live):
    with live(app, keepalive_timeout=0.5) as srv:
        flood = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(300)]
        try:
            with srv.connect() as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _status(sock.recv(65536)) == 200
            deadline = time.monotonic() + 10
            while srv.server.connections and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not srv.server.connections  # silent connections were closed
            assert all(s.recv(1) == b"" for s in flood[:10])
        finally:
            for s in flood:
                s.close()


def test_handler_error_mid_pipeline_keeps_order(live):
    async def flaky(request):
        if request.path == "/bad":
            raise RuntimeError("flaky")
        return cyhttp.Response(request.path.encode())

    with live(flaky) as srv, srv.connect() as sock:
        paths = (b"/a", b"/bad", b"/c")
        sock.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % p for p in paths))
        data = b""
        while not data.endswith(b"/c"):
            data += sock.recv(65536)
        assert [int(part[:3]) for part in data.split(b"HTTP/1.1 ")[1:]] == [200, 500, 200]
