"""What the tests share: the two cores, a fake transport, a live server, wire helpers.

Tests import from here, never from one another; ``conftest.py`` holds only the
fixtures built on these.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import cyhttp
from cyhttp import _impl

ROOT = Path(__file__).resolve().parent.parent  # the project: where `python -m cyhttp` runs

IMPLS = [
    pytest.param(
        "cython",
        marks=pytest.mark.skipif(_impl.NO_EXTENSIONS, reason="CYHTTP_NO_EXTENSIONS is set"),
    ),
    "python",
]


try:
    import uvloop

    # The loop tests run on: uvloop where it exists (not on Windows), else asyncio's own.
    new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
except ImportError:
    new_loop = asyncio.new_event_loop

compiled = pytest.mark.skipif(_impl.HttpProtocolC is None, reason="needs the compiled core")


class FakeTransport:
    """Records what a protocol writes; behaves like a transport for the core."""

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.writes: list[bytes] = []
        self.closed = False
        self.eof = False
        self.pause_on_write = False
        self.write_paused = False
        self.reading = True
        self.pause_calls = 0
        self.limits: tuple[int, int] | None = None

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)

    def write(self, data: bytes) -> None:
        assert not self.closed and not self.eof, "write after close"
        self.writes.append(bytes(data))
        if self.pause_on_write and not self.write_paused:
            self.write_paused = True  # as a real transport over its high-water mark
            self.protocol.pause_writing()

    def drain(self) -> None:
        """The peer read everything: resume writing as a real transport would."""
        self.pause_on_write = False
        if self.write_paused:
            self.write_paused = False
            self.protocol.resume_writing()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    abort = close

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        assert not self.eof, "write_eof twice"
        self.eof = True

    @property
    def ended(self) -> bool:
        """The server is done with this connection: closed, or half-closed to linger."""
        return self.closed or self.eof

    def is_closing(self) -> bool:
        return self.closed

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000)}.get(name, default)

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        self.limits = (high, low)

    def pause_reading(self) -> None:
        assert self.reading, "paused twice"
        self.reading = False
        self.pause_calls += 1

    def resume_reading(self) -> None:
        assert not self.reading, "resumed while reading"
        self.reading = True


class Conn:
    """One protocol instance of core *impl* on a fake transport."""

    def __init__(self, app: Callable[..., Any], impl: str, **options: Any) -> None:
        self.server = cyhttp.Server(app, implementation=impl, **options)
        self.protocol = _impl.protocol_class(impl)(self.server)
        self.transport = FakeTransport(self.protocol)
        self.protocol.connection_made(self.transport)

    def feed(self, data: bytes) -> None:
        """Deliver *data* as the event loop would: into the protocol's buffer."""
        while data:
            buf = self.protocol.get_buffer(len(data))
            n = min(len(buf), len(data))
            buf[:n] = data[:n]
            self.protocol.buffer_updated(n)
            data = data[n:]

    @property
    def data(self) -> bytes:
        return self.transport.data

    async def settle(self, rounds: int = 20) -> None:
        """Let scheduled callbacks and tasks run."""
        for _ in range(rounds):
            await asyncio.sleep(0)


class LiveServer:
    """A real cyhttp server on 127.0.0.1 in a thread with its own event loop."""

    def __init__(self, app: Callable[..., Any], impl: str, loop: str = "uvloop", **options: Any):
        self.server = cyhttp.Server(app, "127.0.0.1", 0, implementation=impl, **options)
        self._factory = new_loop if loop == "uvloop" else asyncio.new_event_loop
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None

    def _run(self) -> None:
        loop = self.loop = self._factory()
        try:
            loop.run_until_complete(self.server.start())
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_until_complete(self.server.serve_forever())
        loop.close()

    def __enter__(self) -> LiveServer:
        self._thread.start()
        self._ready.wait(10)
        if self.error is not None:
            raise self.error
        return self

    def shutdown(self, timeout: float | None = None) -> None:
        assert self.loop is not None
        fut = asyncio.run_coroutine_threadsafe(self.server.shutdown(timeout), self.loop)
        fut.result(30)
        self._thread.join(10)

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self.shutdown()

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def get_closing(port: int, path: str = "/", fields: bytes = b"", timeout: float = 10) -> bytes:
    """The whole response of 127.0.0.1:*port* to one ``GET`` that asks to close (*fields*:
    more field lines, each ending in CRLF)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n%s\r\n" % (
            path.encode(), fields))  # fmt: skip
        return read_until_closed(sock)


def eventually(condition: Callable[[], object], seconds: float = 5.0) -> bool:
    """Whether *condition()* holds within *seconds* (a live server runs in its own thread)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
"""Debian's headless-capable Chromium (the browser tests skip without it; CI installs it)."""


@contextmanager
def chromium(url: str, *flags: str) -> Iterator[Path]:
    """Headless Chromium opening *url* with a profile of its own, which this yields; the
    browser is ended on leaving."""
    assert CHROMIUM is not None
    # Chromium's helpers may still write in the profile while it is removed.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen(
            [
                CHROMIUM,
                "--headless=new",
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={profile}",
                *flags,
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield Path(profile)
        finally:
            browser.terminate()
            try:
                browser.wait(10)
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait(10)


def split_responses(data: bytes) -> list[bytes]:
    """Split concatenated Content-Length framed responses (test helper)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, data
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        out.append(head + sep + rest[:length])
        data = rest[length:]
    return out


DATE = re.compile(rb"Date: [^\r\n]*\r\n")
"""Any Date field line, for comparing answers made at different seconds."""


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a ``python -m cyhttp`` under test: this one, less what would
    configure the server from outside (``UVICORN_*``, ``CYHTTP_*`` but the core switch,
    ``WEB_CONCURRENCY``), plus *extra*."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name == "CYHTTP_NO_EXTENSIONS"
        or not (
            name.startswith(("UVICORN_", "CYHTTP_"))
            or name in ("WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS")
        )
    }
    env.update(extra)
    return env


def children(pid: int) -> set[int]:
    """The processes whose parent is *pid*, zombies left out.

    Read from each process's own ``/proc/N/stat``: ``/proc/PID/task/PID/children``
    is reliable only while the children are stopped (proc(5)), and one exiting as
    it is read can hide the others (a worker retired by SIGTTOU made it read empty)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone since the listing
            continue
        # After the command name (in parentheses, which may hold anything): state, ppid.
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry))
    return found


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on now (for servers that cannot pick one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_cli(*args: str, **popen: Any) -> subprocess.Popen[str]:
    """``python -m cyhttp ARGS`` started from the project, its standard error a pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "cyhttp", *args],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def stop_cli(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM to a process :func:`start_cli` started: its exit status and standard error."""
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(30)
    assert proc.stderr is not None
    with proc.stderr:
        return code, proc.stderr.read()


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m cyhttp ARGS`` run to its end from the project, *env* added to
    :func:`cli_env`."""
    return subprocess.run(
        [sys.executable, "-m", "cyhttp", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(**env),
    )


# nginx in front of cyhttp on a Unix socket, as deployed (format with prefix, port, uds).
NGINX_CONF = """
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://unix:{uds};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
}}
"""


try:
    import gunicorn
except ImportError:  # outside CI the reference may be missing: its cases skip
    gunicorn = None

# The WSGI suites' servers: cyhttp on each core, and gunicorn's gthread worker, the
# reference a difference shows against.
WSGI_SERVERS = [
    *IMPLS,
    pytest.param(
        "gunicorn", marks=pytest.mark.skipif(gunicorn is None, reason="gunicorn not installed")
    ),
]


def wsgi_argv(server: str, port: int, app: str, *cyhttp_options: str) -> list[str]:
    """The command serving WSGI *app* (MODULE:ATTR) on 127.0.0.1:*port* with four threads:
    cyhttp's CLI on core *server* (with *cyhttp_options*), or gunicorn gthread."""
    if server == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "4",
            "-b", f"127.0.0.1:{port}", "--log-level", "warning", app,
        ]  # fmt: skip
    return [
        sys.executable, "-m", "cyhttp", "--interface", "wsgi", "--threads", "4",
        "--implementation", server, "--port", str(port), "--log-level", "warning",
        *cyhttp_options, app,
    ]  # fmt: skip


@contextmanager
def serving_process(argv: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[None]:
    """Run *argv* from the project, its output to *log*, until the block ends (SIGTERM
    to the PID it started); the block begins once *port* accepts connections."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"{argv} exited:\n{log.read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"no answer:\n{log.read_text()}"
                time.sleep(0.1)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
