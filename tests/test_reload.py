"""``--reload``: the server restarts when a watched file changes; a syntax error in the
application is survived by the watcher. Through the CLI, on a free port of 127.0.0.1."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from .support import free_port, start_cli, stop_cli

pytest.importorskip("watchfiles")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="signals are POSIX's"),
]
ROOT = Path(__file__).parent.parent

APP = """
import cyhttp

def app(request):
    return cyhttp.Response(b"{version}")
"""


def _get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.partition(b"\r\n\r\n")[2]


def _until(port: int, body: bytes, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last = b""
    while time.monotonic() < deadline:
        try:
            last = _get(port)
            if last == body:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"never served {body!r} (last {last!r})")


def test_reload_restarts_on_a_change_and_survives_a_syntax_error(tmp_path):
    (tmp_path / "reloaded.py").write_text(APP.format(version="v1"))
    port = free_port()
    proc = start_cli(
        "reloaded:app",
        "--port",
        str(port),
        "--reload",
        "--reload-dir",
        str(tmp_path),
        "--app-dir",
        str(tmp_path),
        "--reload-delay",
        "0.1",
    )
    try:
        _until(port, b"v1")
        time.sleep(0.5)  # the watcher has started watching
        (tmp_path / "reloaded.py").write_text(APP.format(version="v2"))
        _until(port, b"v2")
        (tmp_path / "reloaded.py").write_text("def app(:\n")  # broken: the child cannot start
        time.sleep(3)
        assert proc.poll() is None, "the watcher died with the application"
        (tmp_path / "reloaded.py").write_text(APP.format(version="v3"))
        _until(port, b"v3")
        (tmp_path / "notes.txt").write_text("not watched")  # no restart for this one
    finally:
        code, err = stop_cli(proc)
    assert code == 0, err
    assert "reloaded.py changed: restarting" in err
    assert "SyntaxError" in err or "invalid syntax" in err
    assert "notes.txt" not in err
