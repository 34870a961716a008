"""``--fd N``: serving a listening socket a parent process passed (systemd socket
activation), alone and with worker processes; what is not one is refused in a line."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .support import start_cli, stop_cli

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="descriptors are POSIX's")
ROOT = Path(__file__).parent.parent


def _answer(port: int) -> bytes:
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                return data
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing answered")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serves_the_inherited_socket(workers):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    fd = listener.fileno()
    proc = start_cli("examples.hello:app", "--fd", str(fd), "--workers", workers, pass_fds=[fd])
    listener.close()  # the server's copy is the only one now
    try:
        assert _answer(port).endswith(b"\r\n\r\nHello, world!")
    finally:
        code, err = stop_cli(proc)
    assert code == 0, err
    assert f"serving on http://127.0.0.1:{port}" in err


def _refused(fd: int) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "cyhttp", "examples.hello:app", "--fd", str(fd)],
        cwd=ROOT,
        pass_fds=[fd],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_what_is_not_a_listening_socket_is_refused():
    unbound = socket.socket()
    with unbound, tempfile.TemporaryFile() as file:
        assert _refused(unbound.fileno()) == (
            f"cyhttp: error: fd {unbound.fileno()} is not a listening stream socket"
        )
        assert _refused(file.fileno()).startswith(f"cyhttp: error: fd {file.fileno()} is not")
