"""The access log (``access_log=True``, ``--access-log``): one line per answer, as
uvicorn writes it, for native handlers and ASGI applications alike; nothing when off;
gunicorn's atoms through ``access_log_format``; the request's fields on every record."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import socket
from typing import Any

import pytest

import cyhttp

from .support import read_until_closed

REQUESTS = (
    b"GET /items/1?q=a%20b HTTP/1.1\r\nHost: a\r\n\r\n"
    b"POST /missing HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
    b"GET /boom HTTP/1.0\r\n\r\n"
)


async def native(request: cyhttp.Request) -> cyhttp.Response:
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    return cyhttp.Response(b"", status=200 if request.path.startswith("/items/") else 404)


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/boom":
        raise RuntimeError("application bug")
    status = 200 if path.startswith("/items/") else 404
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body"})


def _lines(live: Any, app: Any, caplog: Any, **options: Any) -> tuple[list[str], int]:
    with caplog.at_level(logging.INFO, logger="cyhttp.access"):
        with live(app, lifespan="off", **options) as srv, srv.connect() as sock:
            sock.sendall(REQUESTS)
            data = read_until_closed(sock)
            port = sock.getsockname()[1]
    assert data.count(b"HTTP/1.1 ") == 3, data
    return [r.getMessage() for r in caplog.records if r.name == "cyhttp.access"], port


def test_each_answer_is_logged_once(live, caplog):
    for app in (native, asgi):
        caplog.clear()
        lines, port = _lines(live, app, caplog, access_log=True)
        assert lines == [
            f'127.0.0.1:{port} - "GET /items/1?q=a%20b HTTP/1.1" 200',
            f'127.0.0.1:{port} - "POST /missing HTTP/1.1" 404',
            f'127.0.0.1:{port} - "GET /boom HTTP/1.0" 500',
        ], app


def test_no_access_log_by_default(live, caplog):
    lines, _ = _lines(live, native, caplog)
    assert lines == []


def test_the_cli_logs_answers_with_access_log(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyhttp", "examples.hello:app", "--port", "0", "--access-log"],
        cwd=root,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        port = int(re.search(r":(\d+)$", proc.stderr.readline().strip()).group(1))  # type: ignore[union-attr]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /?x=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            read_until_closed(sock)
        line = proc.stderr.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        assert proc.stderr is not None
        proc.stderr.close()
    assert re.search(
        r'cyhttp\.access: 127\.0\.0\.1:\d+ - "GET /\?x=1 HTTP/1\.1" 200$', line.strip()
    )


# The server's own answers, each on a connection of its own: the request line as far
# as it came (bytes outside printable ASCII escaped), or the request's when it has one.
OWN_ANSWERS = {
    "target form": (b"GET http://]x/ HTTP/1.1\r\nHost: a\r\n\r\n", "GET http://]x/ HTTP/1.1", 400),
    "control byte": (b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", "GET /\\x01 HTTP/1.1", 400),
    "bare CR first": (b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", "\\rGET / HTTP/1.1", 400),
    "413": (
        b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 99\r\n\r\n",
        "POST /up HTTP/1.1",
        413,
    ),
    "chunked 413": (
        b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + b"x" * 64,
        "POST /up HTTP/1.1",
        413,
    ),
    "414": (
        b"GET /" + b"a" * 80 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /" + "a" * 80 + " HTTP/1.1",
        414,
    ),
    "431": (
        b"GET /h HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 300 + b"\r\n\r\n",
        "GET /h HTTP/1.1",
        431,
    ),
    "501": (b"FOO /m HTTP/1.1\r\nHost: a\r\n\r\n", "FOO /m HTTP/1.1", 501),
}


def test_the_servers_own_answers_are_logged(live, caplog):
    """nginx logs every answer, the 400s an operator greps for first included."""
    for app in (native, asgi):
        caplog.clear()
        ports = []
        with caplog.at_level(logging.INFO, logger="cyhttp.access"):
            with live(
                app, lifespan="off", access_log=True, max_url_size=64, max_header_size=256,
                max_body_size=32,
            ) as srv:  # fmt: skip
                for data, _, status in OWN_ANSWERS.values():
                    with srv.connect() as sock:
                        sock.sendall(data)
                        answer = read_until_closed(sock)
                        ports.append(sock.getsockname()[1])
                    assert answer.startswith(b"HTTP/1.1 %d " % status), answer
        lines = [r.getMessage() for r in caplog.records if r.name == "cyhttp.access"]
        assert lines == [
            f'127.0.0.1:{port} - "{line}" {status}'
            for port, (_, line, status) in zip(ports, OWN_ANSWERS.values(), strict=True)
        ], app


GUNICORN = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s %(B)s "%(f)s" "%(a)s" %(m)s %(U)s %(q)s '
    "%(H)s %({x-trace}i)s %({x-item}o)s %({CYHTTP_TEST_ATOM}e)s %(p)s %(nonsense)s"
)


async def shaped(request: cyhttp.Request) -> Any:
    if request.path == "/stream":

        async def pieces() -> Any:
            yield b"abc"

        return cyhttp.StreamingResponse(pieces())
    return cyhttp.Response(b"hello", headers={"X-Item": "42"})


def test_gunicorn_atoms_shape_the_line(live, caplog, monkeypatch):
    monkeypatch.setenv("CYHTTP_TEST_ATOM", "from-env")
    with caplog.at_level(logging.INFO, logger="cyhttp.access"):
        with live(shaped, access_log=True, access_log_format=GUNICORN) as srv:
            with srv.connect() as sock:
                sock.sendall(
                    b"GET /a%20b?x=1 HTTP/1.1\r\nHost: a\r\nReferer: http://r/\r\n"
                    b"User-Agent: ua/1\r\nX-Trace: t-9\r\n"
                    b"Authorization: Basic " + base64.b64encode(b"ann:secret") + b"\r\n\r\n"
                    b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"
                    b"GET /stream HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                )
                read_until_closed(sock)
    lines = [r.getMessage() for r in caplog.records if r.name == "cyhttp.access"]
    pid = os.getpid()
    stamp = r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"
    assert re.fullmatch(
        rf'127\.0\.0\.1 - ann {stamp} "GET /a%20b\?x=1 HTTP/1\.1" 200 5 5 "http://r/" "ua/1" '
        rf"GET /a%20b x=1 HTTP/1\.1 t-9 42 from-env <{pid}> -",
        lines[0],
    ), lines[0]
    assert re.fullmatch(rf'127\.0\.0\.1 - - {stamp} "HEAD / HTTP/1\.1" 200 0 0 "-" "-" HEAD / +'
                        rf"HTTP/1\.1 - 42 from-env <{pid}> -", lines[1]), lines[1]  # fmt: skip
    assert ' "GET /stream HTTP/1.1" 200 - 0 ' in lines[2]  # a length not known yet


def test_durations_in_every_unit(live, caplog):
    async def slow(request: cyhttp.Request) -> cyhttp.Response:
        await asyncio.sleep(0.07)  # a loop's timer may fire a millisecond early
        return cyhttp.Response(b"")

    fmt = "%(T)s %(M)s %(D)s %(L)s"
    with caplog.at_level(logging.INFO, logger="cyhttp.access"):
        with live(slow, access_log=True, access_log_format=fmt) as srv, srv.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            read_until_closed(sock)
    (record,) = [r for r in caplog.records if r.name == "cyhttp.access"]
    seconds, millis, micros, decimal = record.getMessage().split()
    assert seconds == "0" and 50 <= int(millis) < 2000 and 50_000 <= int(micros) < 2_000_000
    assert re.fullmatch(r"0\.\d{6}", decimal) and abs(float(decimal) - int(micros) / 1e6) < 1e-5
    assert abs(record.duration - int(micros) / 1e6) < 1e-5  # type: ignore[attr-defined]


def test_each_record_carries_the_requests_fields(live, caplog):
    for app in (native, asgi):
        caplog.clear()
        _, port = _lines(live, app, caplog, access_log=True)
        records = [r for r in caplog.records if r.name == "cyhttp.access"]
        fields = [
            {
                key: getattr(r, key)
                for key in ("client", "method", "path", "query", "http_version", "status", "bytes")
            }
            for r in records
        ]
        client = f"127.0.0.1:{port}"
        assert fields == [
            dict(client=client, method="GET", path="/items/1", query="q=a%20b",
                 http_version="1.1", status=200, bytes=0),
            dict(client=client, method="POST", path="/missing", query="",
                 http_version="1.1", status=404, bytes=0),
            dict(client=client, method="GET", path="/boom", query="",
                 http_version="1.0", status=500, bytes=22),
        ], app  # fmt: skip
        assert all(0 <= r.duration < 5 for r in records)  # type: ignore[attr-defined]


def test_a_bad_format_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"access_log_format '%\(h\)d' cannot be used"):
        cyhttp.Config(access_log_format="%(h)d")
    with pytest.raises(ValueError, match="cannot be used"):
        cyhttp.Config(access_log_format="%(h)s %")
