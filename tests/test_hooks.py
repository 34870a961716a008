"""Startup and shutdown hooks of ``Server`` and ``run``: when they run, and what a failing
one does. Over real sockets on 127.0.0.1, both cores."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import textwrap

import pytest

import cyhttp

from .support import read_until_closed


def app(request: cyhttp.Request) -> cyhttp.Response:
    return cyhttp.Response(b"up")


def _get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return read_until_closed(sock)


async def test_hooks_run_in_order_around_serving(impl):
    events: list[str] = []
    server: cyhttp.Server

    def sync_start() -> None:
        events.append(f"start 1, listening: {bool(server.sockets)}")

    async def async_start() -> None:
        await asyncio.sleep(0)
        events.append(f"start 2, listening: {bool(server.sockets)}")

    async def async_stop() -> None:
        await asyncio.sleep(0)
        events.append(f"stop 1, open connections: {len(server.connections)}")

    def sync_stop() -> None:
        events.append("stop 2")

    server = cyhttp.Server(
        app,
        port=0,
        implementation=impl,
        on_startup=[sync_start, async_start],
        on_shutdown=[async_stop, sync_stop],
    )
    async with server:
        events.append("serving")
        sock = socket.create_connection(("127.0.0.1", server.port))  # stays open, idle
        reply = await asyncio.to_thread(_get, server.port)
        assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(b"up")
    sock.close()
    assert events == [
        "start 1, listening: False",
        "start 2, listening: False",
        "serving",
        "stop 1, open connections: 0",
        "stop 2",
    ]


async def test_a_failing_startup_hook_means_nothing_listens(impl):
    later: list[str] = []

    async def broken() -> None:
        raise OSError("database unreachable")

    server = cyhttp.Server(
        app,
        port=0,
        implementation=impl,
        on_startup=[broken, lambda: later.append("ran")],
        on_shutdown=[lambda: later.append("stopped")],
    )
    with pytest.raises(cyhttp.StartupFailed, match="broken failed: OSError") as failed:
        await server.start()
    assert isinstance(failed.value.__cause__, OSError)
    assert server.sockets == [] and later == []


async def test_a_failing_shutdown_hook_is_logged_and_the_rest_run(impl, caplog):
    ran: list[str] = []

    def broken() -> None:
        raise ValueError("flush failed")

    server = cyhttp.Server(
        app, port=0, implementation=impl, on_shutdown=[broken, lambda: ran.append("next")]
    )
    await server.start()
    with caplog.at_level(logging.ERROR, logger="cyhttp"):
        await server.shutdown()
    assert ran == ["next"]
    assert "shutdown hook" in caplog.text and "broken" in caplog.text
    assert "ValueError: flush failed" in caplog.text


@pytest.mark.parametrize("hooks", [3, [3], "text"])
def test_hooks_must_be_callables(hooks):
    with pytest.raises(TypeError, match="on_startup must"):
        cyhttp.Server(app, on_startup=hooks)


def test_run_exits_with_one_line_when_startup_fails():
    code = textwrap.dedent(
        """
        import cyhttp

        def connect_db():
            raise ConnectionError("no database at db:5432")

        cyhttp.run(lambda r: cyhttp.Response(), port=0, on_startup=[connect_db])
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        "cyhttp: error: startup hook connect_db failed: ConnectionError('no database at db:5432')"
    )
