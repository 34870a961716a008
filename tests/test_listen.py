"""Accepting connections (``_listen``): a burst waiting in the backlog is taken in one
loop turn, and running out of descriptors pauses accepting instead of failing."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
from typing import Any

import httpx
import pytest

import cyhttp

from .support import IMPLS

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
BURST = 20


def _answer(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith((b"ok", b"released")):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


@pytest.mark.skipif(sys.platform == "win32", reason="the proactor loop accepts for itself")
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_burst_of_connections_is_accepted_at_once(live, loop):
    blocking = threading.Event()
    release = threading.Event()
    open_at_answer: list[int] = []  # the server's open connections when each was answered

    def app(request: cyhttp.Request) -> cyhttp.Response:
        if request.path == "/block":
            # Holds the server's loop while the burst connects: it waits in the backlog.
            blocking.set()
            release.wait(10)
            return cyhttp.Response(b"released")
        open_at_answer.append(len(srv.server.connections))
        return cyhttp.Response(b"ok")

    with live(app, loop=loop) as srv, srv.connect() as blocker:
        blocker.sendall(b"GET /block HTTP/1.1\r\nHost: a\r\n\r\n")
        assert blocking.wait(10)
        burst = [srv.connect() for _ in range(BURST)]
        try:
            for sock in burst:
                sock.sendall(GET)
            release.set()
            assert _answer(blocker).endswith(b"released")
            for sock in burst:
                assert _answer(sock).startswith(b"HTTP/1.1 200 OK\r\n")
        finally:
            for sock in burst:
                sock.close()
    # Taken one per loop turn (libuv's own accept), the first would be answered with
    # two connections open; accepted together, every one is open before any is read.
    assert open_at_answer == [BURST + 1] * BURST


SERVER = textwrap.dedent(
    """
    import asyncio, logging, os, resource, sys
    import cyhttp

    logging.basicConfig(format="%(message)s")

    async def main():
        server = cyhttp.Server(
            lambda request: cyhttp.Response(b"ok"), "127.0.0.1", 0, implementation=sys.argv[1]
        )
        await server.start()
        # Room for two connections: the third finds no descriptor to be accepted with.
        used = len(os.listdir("/proc/self/fd")) - 1  # less the listing's own
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (used + 2, hard))
        print(server.port, flush=True)
        await asyncio.sleep(8)
        await server.shutdown()

    (asyncio.run if sys.argv[2] == "asyncio" else __import__("uvloop").run)(main())
    """
)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
@pytest.mark.parametrize("impl", IMPLS)
def test_out_of_descriptors_pauses_accepting_until_one_is_free(impl, loop):
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, impl, loop],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        first, second = (socket.create_connection(("127.0.0.1", port), timeout=5) for _ in "12")
        for sock in (first, second):
            sock.sendall(GET)
            assert _answer(sock).startswith(b"HTTP/1.1 200 OK\r\n")
        # The third waits in the backlog (the kernel completed its handshake) ...
        third = socket.create_connection(("127.0.0.1", port), timeout=5)
        third.sendall(GET)
        third.settimeout(0.5)
        with pytest.raises(socket.timeout):
            third.recv(1)
        # ... and is served once a connection has closed and accepting resumes.
        first.close()
        third.settimeout(5)
        assert _answer(third).startswith(b"HTTP/1.1 200 OK\r\n")
        second.close()
        third.close()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "accepting connections paused for 1 s: Too many open files" in err
    assert "Traceback" not in err


async def test_a_given_socket_is_served_and_closed_at_shutdown(impl):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, not listening: the server listens on it
    port = sock.getsockname()[1]
    server = cyhttp.Server(lambda request: cyhttp.Response(b"ok"), sock=sock, implementation=impl)
    await server.start()
    assert server.port == port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(GET)
    assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200 OK\r\n")
    writer.close()
    await server.shutdown()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


def test_a_connection_that_cannot_be_served_is_closed_and_logged(live, caplog):
    srv = live(lambda request: cyhttp.Response(b"ok"))
    protocol = srv.server._protocol
    made: list[int] = []

    def failing_once(server: cyhttp.Server) -> Any:
        made.append(1)
        if len(made) == 1:
            raise RuntimeError("no protocol for the first")
        return protocol(server)

    srv.server._protocol = failing_once
    with caplog.at_level(logging.ERROR, logger="cyhttp.error"), srv:
        with srv.connect() as first:
            first.sendall(GET)
            try:
                assert first.recv(1) == b""  # closed, unanswered
            except ConnectionResetError:
                pass
        with srv.connect() as second:  # the server goes on accepting
            second.sendall(GET)
            assert _answer(second).startswith(b"HTTP/1.1 200 OK\r\n")
    assert "could not serve an accepted connection" in caplog.text
    assert "no protocol for the first" in caplog.text


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_unix_socket_is_served_replaced_and_removed(live, loop, tmp_path):
    path = str(tmp_path / "cyhttp.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)  # what a server gone without cleaning up leaves
    stale.close()
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with live(app, loop=loop, uds=path, lifespan="off", forwarded_allow_ips="*") as srv:
        with pytest.raises(RuntimeError, match="Unix socket"):
            _ = srv.port
        client = httpx.Client(transport=httpx.HTTPTransport(uds=path))
        with client:
            answer = client.get("http://cyhttp/x", headers={"X-Forwarded-For": "192.0.2.9"})
        assert answer.status_code == 200 and answer.text == "ok"
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            sock.sendall(GET)
            assert _answer(sock).startswith(b"HTTP/1.1 200 OK\r\n")
    assert seen[0]["server"] == (path, None)
    # A Unix socket's peer has no address: "*" trusts it with the forwarding headers.
    assert seen[0]["client"] == ("192.0.2.9", 0) and seen[1]["client"] is None
    assert not os.path.exists(path)  # removed at shutdown
