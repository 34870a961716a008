"""Real sockets on 127.0.0.1 and real clients, against both cores."""

from __future__ import annotations

import asyncio
import http.client
import shutil
import socket
import subprocess
import threading
import time

import pytest
import requests

import cyhttp

from .support import read_until_closed, split_responses

SLOW_STARTED = threading.Event()  # set when a /slow handler begins: tests wait on it


async def app(request: cyhttp.Request) -> cyhttp.Response | cyhttp.StreamingResponse:
    if request.path == "/":
        return cyhttp.Response(b"Hello, world!", content_type="text/plain")
    if request.path == "/echo":
        body = await request.body()
        return cyhttp.Response(body, headers={"X-Method": request.method})
    if request.path == "/stream":
        return cyhttp.StreamingResponse(_numbers(), content_type="text/plain")
    if request.path == "/slow":
        SLOW_STARTED.set()
        await asyncio.sleep(float(request.query_string or b"0.2"))
        return cyhttp.Response(b"slow done")
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    if request.path == "/big":
        return cyhttp.Response(b"x" * (1 << 20))
    return cyhttp.Response(b"Not Found", status=404)


async def _numbers():
    for i in range(5):
        yield f"{i}\n"
        await asyncio.sleep(0)


def test_raw_socket_keep_alive_and_pipelining(live):
    with live(app) as srv, srv.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        assert first.endswith(b"\r\n\r\nHello, world!")
        # Same connection, ten pipelined requests in one write, answered in order.
        paths = [b"/", b"/nope"] * 5
        sock.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % p for p in paths))
        data = b""
        while len(split_responses(data)) < 10 or not data.endswith((b"world!", b"Found")):
            data += sock.recv(65536)
        statuses = [r.split(b" ", 2)[1] for r in split_responses(data)]
        assert statuses == [b"200", b"404"] * 5


def test_raw_socket_connection_close(live):
    with live(app) as srv, srv.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data = read_until_closed(sock)
        assert b"\r\nConnection: close\r\n" in data
        assert data.endswith(b"Hello, world!")


def test_raw_socket_http10(live):
    with live(app) as srv, srv.connect() as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert read_until_closed(sock).endswith(b"Hello, world!")


def test_raw_socket_bad_request(live):
    with live(app) as srv, srv.connect() as sock:
        sock.sendall(b"BROKEN\x01 / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_closed(sock)
        assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert b"Connection: close\r\n" in data
    with live(app) as srv, srv.connect() as sock:  # the server keeps serving others
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).endswith(b"Hello, world!")


def test_raw_socket_streaming_response(live):
    with live(app) as srv, srv.connect() as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_until_closed(sock)
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked" in head
        assert body == b"".join(b"2\r\n%d\n\r\n" % i for i in range(5)) + b"0\r\n\r\n"


def test_http_client_methods_and_bodies(live):
    with live(app) as srv:
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        c.request("GET", "/")
        r = c.getresponse()
        assert (r.status, r.read(), r.getheader("Content-Type")) == (
            200,
            b"Hello, world!",
            "text/plain",
        )
        assert r.getheader("Server") == "cyhttp" and r.getheader("Date")
        c.request("HEAD", "/")
        r = c.getresponse()
        assert (r.status, r.getheader("Content-Length"), r.read()) == (200, "13", b"")
        c.request("POST", "/echo", body=b"payload" * 1000)
        r = c.getresponse()
        assert r.read() == b"payload" * 1000 and r.getheader("X-Method") == "POST"
        c.request("PUT", "/echo", body=iter([b"chunk1", b"chunk2"]), encode_chunked=True)
        r = c.getresponse()
        assert r.read() == b"chunk1chunk2" and r.getheader("X-Method") == "PUT"
        c.request("GET", "/stream")
        r = c.getresponse()
        assert r.read() == b"0\n1\n2\n3\n4\n"
        c.request("GET", "/big")
        assert len(c.getresponse().read()) == 1 << 20
        c.close()


def test_http_client_500_then_keeps_serving(live, caplog):
    with live(app) as srv:
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        c.request("GET", "/boom")
        r = c.getresponse()
        assert (r.status, r.read()) == (500, b"Internal Server Error\n")
        c.request("GET", "/")
        assert c.getresponse().read() == b"Hello, world!"
        c.close()
    assert "handler bug" in caplog.text


def test_requests_library(live):
    with live(app) as srv, requests.Session() as s:
        r = s.get(srv.url + "/")
        assert (r.status_code, r.text, r.headers["content-length"]) == (200, "Hello, world!", "13")
        r = s.post(srv.url + "/echo", data=b"x" * 100_000)
        assert r.content == b"x" * 100_000
        r = s.post(srv.url + "/echo", data=iter([b"a", b"b", b"c"]))  # chunked upload
        assert r.content == b"abc"
        r = s.get(srv.url + "/stream", stream=True)
        assert b"".join(r.iter_content(None)) == b"0\n1\n2\n3\n4\n"
        assert s.get(srv.url + "/missing").status_code == 404


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl(live, tmp_path):
    upload = tmp_path / "up.bin"
    upload.write_bytes(b"u" * 200_000)
    with live(app) as srv:
        out = subprocess.run(
            ["curl", "-sS", "-i", srv.url + "/"], capture_output=True, check=True, timeout=30
        ).stdout
        assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"Hello, world!")
        # curl sends Expect: 100-continue for large uploads: it must get 100 then the echo.
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "-i",
                "-H",
                "Expect: 100-continue",
                "--data-binary",
                f"@{upload}",
                srv.url + "/echo",
            ],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        assert out.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
        assert out.endswith(b"u" * 200_000)
        out = subprocess.run(
            ["curl", "-sS", srv.url + "/stream"], capture_output=True, check=True, timeout=30
        ).stdout
        assert out == b"0\n1\n2\n3\n4\n"


def test_plain_asyncio_loop(impl):
    from .support import LiveServer

    with LiveServer(app, impl, loop="asyncio") as srv, requests.Session() as s:
        assert s.get(srv.url + "/").text == "Hello, world!"
        assert s.post(srv.url + "/echo", data=b"abc").content == b"abc"
        assert s.get(srv.url + "/stream").content == b"0\n1\n2\n3\n4\n"


def test_keepalive_timeout_closes_idle_connection(live):
    with live(app, keepalive_timeout=0.4) as srv, srv.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).endswith(b"Hello, world!")
        start = time.monotonic()
        assert sock.recv(100) == b""  # the server closed the idle connection
        assert 0.2 < time.monotonic() - start < 5


def test_client_disconnect_mid_request_is_harmless(live):
    with live(app) as srv:
        for _ in range(20):
            with srv.connect() as sock:
                sock.sendall(
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial"
                )
            with srv.connect() as sock:
                sock.sendall(b"GET /slow?0.05 HTTP/1.1\r\nHost: x\r\n\r\n")
        with srv.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).endswith(b"Hello, world!")
        deadline = time.monotonic() + 5
        while srv.server.connections and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(srv.server.connections) == 0


@pytest.mark.parametrize("reader", ["body", "stream"])
def test_vanished_client_raises_client_disconnected_in_the_body_reader(live, reader):
    # docs/api.md's promise: an `except cyhttp.ClientDisconnected:` around the body read runs.
    seen: list[str] = []
    waiting, done = threading.Event(), threading.Event()

    async def reading(request: cyhttp.Request) -> cyhttp.Response:
        waiting.set()  # the loop runs this step to its first await before anything else
        try:
            if reader == "body":
                await request.body()
            else:
                async for _ in request.stream():
                    pass
        except cyhttp.ClientDisconnected:
            seen.append("ClientDisconnected")
        except asyncio.CancelledError:
            seen.append("CancelledError")
            raise
        finally:
            done.set()
        return cyhttp.Response(b"unreachable")

    with live(reading) as srv:
        with srv.connect() as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial")
            assert waiting.wait(5)
        assert done.wait(5)
    assert seen == ["ClientDisconnected"]


def test_graceful_shutdown_finishes_in_flight(live):
    srv = live(app).__enter__()
    port = srv.port
    with srv.connect() as busy, srv.connect() as idle:
        idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(65536).endswith(b"Hello, world!")
        SLOW_STARTED.clear()
        busy.sendall(b"GET /slow?0.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert SLOW_STARTED.wait(10)
        srv.shutdown(timeout=5)
        # It waited for /slow: the whole answer came before the close.
        data = read_until_closed(busy)
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Connection: close\r\n" in data and data.endswith(b"slow done")
        assert read_until_closed(idle) == b""
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_shutdown_timeout_drops_stragglers(live):
    srv = live(app).__enter__()
    with srv.connect() as busy:
        SLOW_STARTED.clear()
        busy.sendall(b"GET /slow?30 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert SLOW_STARTED.wait(10)
        started = time.monotonic()
        srv.shutdown(timeout=0.3)
        assert time.monotonic() - started < 5
        try:
            assert read_until_closed(busy) == b""
        except ConnectionResetError:
            pass  # an abort may reset instead of closing cleanly


async def test_embedding_in_running_loop(impl):
    async with cyhttp.Server(app, port=0, implementation=impl) as server:
        assert server.implementation == impl
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert await reader.readexactly(13) == b"Hello, world!"
        writer.close()
        await writer.wait_closed()
    assert server.sockets == []


async def test_two_servers_in_one_loop_share_nothing(impl):
    def a(req):
        return cyhttp.Response(b"A")

    def b(req):
        return cyhttp.Response(b"B")

    async with (
        cyhttp.Server(a, port=0, implementation=impl) as sa,
        cyhttp.Server(b, port=0, implementation=impl) as sb,
    ):
        for server, expected in ((sa, b"A"), (sb, b"B")):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            assert (await reader.read()).endswith(b"\r\n\r\n" + expected)
            writer.close()
            await writer.wait_closed()


async def test_port_zero_and_errors(impl):
    server = cyhttp.Server(app, port=0, implementation=impl)
    with pytest.raises(RuntimeError):
        _ = server.port
    await server.start()
    try:
        assert server.port > 0
        with pytest.raises(RuntimeError):
            await server.start()
        clash = cyhttp.Server(app, port=server.port, implementation=impl)
        with pytest.raises(OSError):
            await clash.start()
    finally:
        await server.shutdown()


def test_the_server_field_can_be_left_out(live):
    async def named(request: cyhttp.Request) -> cyhttp.Response:
        if request.path == "/own":
            return cyhttp.Response(b"mine", headers={"Server": "edge/1"})
        return cyhttp.Response(b"plain")

    def heads(**options: object) -> list[bytes]:
        with live(named, **options) as srv, srv.connect() as sock:
            sock.sendall(
                b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
                b"GET /own HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            )
            return [r.partition(b"\r\n\r\n")[0] for r in split_responses(read_until_closed(sock))]

    plain, own = heads()
    assert b"\r\nServer: cyhttp\r\n" in plain and b"\r\nDate: " in plain
    plain, own = heads(server_header=False)
    assert b"Server:" not in plain and b"\r\nDate: " in plain  # Date stays (RFC 9110 §6.6.1)
    assert b"\r\nServer: edge/1" in own and own.count(b"Server:") == 1
