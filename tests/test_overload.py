"""Overload: ``limit_concurrency`` answers the excess with ``503`` and ``Retry-After``;
``max_connections`` turns connections away with a log line. Both cores, real sockets."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

import pytest

import cyhttp

from .support import read_until_closed


def _apps(release: threading.Event) -> dict[str, Any]:
    async def wait_for_release() -> None:
        while not release.is_set():
            await asyncio.sleep(0.01)

    async def native(request: cyhttp.Request) -> cyhttp.Response:
        if request.path == "/wait":
            await wait_for_release()
        return cyhttp.Response(b"done")

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/wait":
            await wait_for_release()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    return {"native": native, "asgi": asgi}


def _send(sock: socket.socket, path: str) -> None:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())


@pytest.mark.parametrize("interface", ["native", "asgi"])
def test_requests_past_the_limit_get_503(live, interface):
    release = threading.Event()
    app = _apps(release)[interface]
    with live(app, limit_concurrency=2, lifespan="off") as srv:
        waiting = [srv.connect() for _ in range(2)]
        for sock in waiting:
            _send(sock, "/wait")
        with srv.connect() as probe:
            # The two are in flight once the server has read them: ask until it has.
            for _ in range(200):
                with srv.connect() as extra:
                    _send(extra, "/")
                    answer = read_until_closed(extra)
                if answer.startswith(b"HTTP/1.1 503 "):
                    break
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer
            assert b"\r\nRetry-After: 1\r\n" in answer
            release.set()
            for sock in waiting:
                with sock:
                    assert read_until_closed(sock).endswith(b"\r\n\r\ndone")
            _send(probe, "/")
            assert read_until_closed(probe).startswith(b"HTTP/1.1 200 ")


def test_max_connections_reached_is_logged_once(live, caplog):
    with caplog.at_level(logging.WARNING, logger="cyhttp"):
        with live(_apps(threading.Event())["native"], max_connections=2) as srv:
            kept = [srv.connect() for _ in range(2)]
            for sock in kept:  # both served, so both are counted
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            for _ in range(3):
                with srv.connect() as turned_away:
                    assert read_until_closed(turned_away) == b""
            for sock in kept:
                sock.close()
    lines = [r.getMessage() for r in caplog.records if "max_connections" in r.getMessage()]
    assert lines == ["max_connections (2) reached: new connections are closed"]
