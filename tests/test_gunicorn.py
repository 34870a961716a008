"""cyhttp as a gunicorn worker class: ``gunicorn -k cyhttp.workers.CyhttpWorker``.

gunicorn's own arbiter runs two workers on a free port of 127.0.0.1; the tests talk to
them over sockets, signal the arbiter by PID, and end every process they started.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .support import children, free_port, get_closing

pytest.importorskip("gunicorn")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="gunicorn runs on POSIX only"),
]

ROOT = Path(__file__).parent.parent
FORMAT = 'gunicorn-format "%(r)s" %(s)s %(b)s'


def _gunicorn(app: str, port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-k",
            "cyhttp.workers.CyhttpWorker",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "5",
            *extra,
            app,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _until_served(port: int, proc: subprocess.Popen[str]) -> bytes:
    for _ in range(200):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            answer = get_closing(port)
        except OSError:
            time.sleep(0.05)
            continue
        if answer:
            return answer
    raise AssertionError("gunicorn never served")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    out, err = proc.communicate()
    return code, out, err


@pytest.mark.parametrize(
    "app, expected",
    [
        ("tests.workers_app:app", None),  # a native handler: its worker's PID
        ("tests.workers_app:fastapi_app", b'"ok"'),
    ],
    ids=["native", "fastapi"],
)
def test_gunicorn_serves_with_two_cyhttp_workers(app, expected):
    port = free_port()
    proc = _gunicorn(app, port, "--access-logfile", "-", "--access-logformat", FORMAT)
    try:
        answer = _until_served(port, proc)
        path = "/" if expected is None else "/health"
        answer = get_closing(port, path)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert b"\r\nserver: cyhttp\r\n" in answer.lower()
        body = answer.partition(b"\r\n\r\n")[2]
        if expected is None:
            assert int(body) in children(proc.pid)
        else:
            assert body == expected
        workers = children(proc.pid)
        assert len(workers) == 2
        proc.send_signal(signal.SIGHUP)  # gunicorn's reload: new workers, then the old go
        deadline = time.monotonic() + 30
        while children(proc.pid) & workers or len(children(proc.pid)) != 2:
            assert time.monotonic() < deadline, "the workers were not replaced"
            assert get_closing(port, path).startswith(b"HTTP/1.1 200 ")
            time.sleep(0.05)
    finally:
        code, out, err = _stop(proc)
    assert code == 0, err
    assert "Booting worker" in err
    # gunicorn's --access-logfile and --access-logformat: cyhttp's access lines go where
    # gunicorn sends its own, in its format.
    assert f'gunicorn-format "GET {path} HTTP/1.1" 200 ' in out


def test_gunicorn_max_requests_recycles_the_workers():
    port = free_port()
    proc = _gunicorn("tests.workers_app:app", port, "--max-requests", "5")
    try:
        _until_served(port, proc)
        first = children(proc.pid)
        pids = {int(get_closing(port).partition(b"\r\n\r\n")[2]) for _ in range(40)}
        # Two workers of at most 5 requests each cannot answer 40 requests alone.
        assert len(pids) > 2 and pids - first
    finally:
        code, _, err = _stop(proc)
    assert code == 0, err
    assert "served 5 requests (limit_max_requests)" in err
