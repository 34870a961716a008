"""Soak: a million requests and twenty thousand connections, nothing left behind.

The server runs in its own process so that its RSS and open descriptors are
measured alone. Clients disconnect mid-request and mid-response along the way.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REQUESTS = int(os.environ.get("CYHTTP_SOAK_REQUESTS", "1000000"))
CONNECTIONS = int(os.environ.get("CYHTTP_SOAK_CONNECTIONS", "20000"))
DEPTH = 100
LATE_BODIES = 200
GET = b"GET / HTTP/1.1\r\nHost: s\r\n\r\n"
SERVER = Path(__file__).with_name("soak_server.py")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _stats(port: int) -> dict[str, int]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /stats HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data.partition(b"\r\n\r\n")[2])


def _response_size(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(GET)
        data = b""
        while not data.endswith(b"Hello, world!"):
            data += sock.recv(65536)
    return len(data)


def _pipelined(port: int, total: int, size: int) -> None:
    """*total* GETs over 8 connections, DEPTH per write, reading every byte back."""
    conns = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(8)]
    batch = GET * DEPTH
    expect = size * DEPTH
    try:
        sent = 0
        while sent < total:
            for sock in conns:
                sock.sendall(batch)
            for sock in conns:
                got = 0
                while got < expect:
                    chunk = sock.recv(1 << 20)
                    assert chunk, "server closed a loaded connection"
                    got += len(chunk)
                assert got == expect
            sent += DEPTH * len(conns)
    finally:
        for sock in conns:
            sock.close()


def _churn(port: int, count: int) -> None:
    """Open and close *count* connections, misbehaving in four different ways."""
    for i in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        try:
            kind = i % 4
            if kind == 0:  # a whole exchange
                sock.sendall(GET)
                assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            elif kind == 1:  # gone mid-request (head, then body)
                sock.sendall(
                    GET[:10]
                    if i % 8 == 1
                    else b"POST /echo HTTP/1.1\r\nHost: s\r\nContent-Length: 99\r\n\r\nabc"
                )
            elif kind == 2:  # gone mid-response
                sock.sendall(b"GET /big HTTP/1.1\r\nHost: s\r\n\r\n")
                assert sock.recv(4096)
            # kind 3: connects and leaves without a word
        finally:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            sock.close()  # RST, as a vanished client


def _late_bodies(port: int, count: int) -> None:
    """*count* connections that each send a body past the high-water mark, read late by
    the handler, then a GET on the same connection: each answered at once, none stalls."""
    post = b"POST /late HTTP/1.1\r\nHost: s\r\nContent-Length: 300000\r\n\r\n" + b"z" * 300_000
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.settimeout(1.5)  # the server's idle timeout is 2 s: a stall ends in it
            sock.sendall(post)
            data = b""
            while not data.endswith(b"\r\n\r\n300000"):
                data += sock.recv(65536)
            sock.sendall(GET)
            data = b""
            while not data.endswith(b"Hello, world!"):
                chunk = sock.recv(65536)
                assert chunk, "the connection closed instead of answering after a late body"
                data += chunk


def _settle(port: int, proc: subprocess.Popen[bytes]) -> dict[str, int]:
    deadline = time.monotonic() + 30
    while True:
        stats = _stats(port)
        if stats["connections"] <= 1 or time.monotonic() > deadline:
            time.sleep(0.2)  # let the stats connection itself go
            return _stats(port)
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
@pytest.mark.parametrize("interface", ["native", "asgi"])
def test_soak(impl, interface):
    proc = subprocess.Popen([sys.executable, str(SERVER), impl, interface], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        size = _response_size(port)
        # Warm up every path once so caches and free lists reach their steady state.
        _pipelined(port, 20_000, size)
        _churn(port, 400)
        _late_bodies(port, 20)
        base = _settle(port, proc)
        base_rss, base_fds = _rss_kib(proc.pid), _fds(proc.pid)

        start = time.monotonic()
        _pipelined(port, REQUESTS, size)
        load_s = time.monotonic() - start
        peak_rss = _rss_kib(proc.pid)
        _churn(port, CONNECTIONS)
        _late_bodies(port, LATE_BODIES)
        after = _settle(port, proc)
        rss, fds = _rss_kib(proc.pid), _fds(proc.pid)

        report = (
            f"{impl}, {interface}: {REQUESTS} requests in {load_s:.1f}s "
            f"({REQUESTS / load_s:,.0f}/s), {CONNECTIONS} connections, {LATE_BODIES} late bodies; "
            f"RSS {base_rss} -> peak {peak_rss} -> {rss} KiB, fds {base_fds} -> {fds}, "
            f"tasks {base['tasks']} -> {after['tasks']}"
        )
        print(report)
        assert after["served"] - base["served"] >= REQUESTS
        assert after["connections"] <= 1  # only the stats request's own
        assert after["tasks"] == base["tasks"], report
        assert fds == base_fds, report
        assert rss - base_rss < 8 * 1024, report  # a per-request leak would be ~100 MiB
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
            assert proc.stdout is not None
            proc.stdout.close()
