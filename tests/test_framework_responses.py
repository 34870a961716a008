"""The everyday responses real frameworks send, served by cyhttp on both cores over TCP,
read by httpx and curl, and (where uvicorn is installed) compared with what uvicorn
serves for the same requests to the same applications.

Each framework's test application (``tests/frameworks/``) answers the same routes: a
redirect, a trailing-slash route, empty 201/202 answers, a 204, a 304, Server-Sent
Events, an answer with its own Server and Date, errors. They carry what made cyhttp
answer 500 before: ``Content-Length: 0`` on empty bodies (every redirect),
``Connection: keep-alive`` (sse-starlette), ``Transfer-Encoding: chunked``
(BlackSheep), a Content-Length on 204 and 304 (Django's CommonMiddleware).
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import httpx
import pytest

import cyhttp

from .frameworks import APP_DATE, APP_SERVER, ETAG, FIRST_EVENT_READ
from .support import LiveServer

FRAMEWORKS = ["starlette", "fastapi", "django", "litestar", "quart", "blacksheep"]
# The status of the redirect each sends for /go, and for /slash (None: /slash is served).
REDIRECTS = {
    "starlette": (307, 307),
    "fastapi": (307, 307),
    "django": (302, 301),
    "litestar": (302, None),
    "quart": (302, 308),
    "blacksheep": (302, None),
}
FILE_BODY = b"a file\n" * 100


def make_app(framework: str, tmp_path: Path) -> Any:
    file = tmp_path / "hello.txt"
    file.write_bytes(FILE_BODY)
    return importlib.import_module(f"tests.frameworks.{framework}_app").make(str(file), [])


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(impl: str, framework: str, tmp_path: Path) -> Iterator[str]:
    with LiveServer(make_app(framework, tmp_path), impl, lifespan="auto") as srv:
        yield srv.url


class Answer(NamedTuple):
    status: int
    headers: list[tuple[str, str]]  # as received, names lower-cased
    body: bytes


def fetch(base: str, method: str, path: str, headers: dict[str, str] | None = None) -> Answer:
    """One request on a connection of its own (an error answer may close it); the body
    of an event stream is read event by event, letting the stream go on after the first."""
    FIRST_EVENT_READ.clear()
    # identity: Django's GZipMiddleware makes each streamed piece a gzip member of its
    # own, of which httpx decodes only the first.
    with httpx.Client(base_url=base, timeout=10, headers={"Accept-Encoding": "identity"}) as c:
        with c.stream(method, path, headers=headers) as reply:
            pieces = []
            for line in reply.iter_lines() if path == "/sse" else reply.iter_bytes():
                if isinstance(line, str):
                    FIRST_EVENT_READ.set()  # the first line arrived while the stream waits
                    line = line.encode() + b"\n"
                pieces.append(line)
            # An absolute URL the application makes names the server's own address.
            pairs = [
                (k.decode().lower(), v.decode().replace(base, "BASE")) for k, v in reply.headers.raw
            ]
            body = b"".join(pieces).replace(base.encode(), b"BASE")
            return Answer(reply.status_code, pairs, body)


def field(answer: Answer, name: str) -> str | None:
    values = [v for k, v in answer.headers if k == name]
    assert len(values) <= 1, answer.headers
    return values[0] if values else None


# -- each response, on cyhttp -----------------------------------------------------


def test_redirects(url, framework):
    go_status, slash_status = REDIRECTS[framework]
    go = fetch(url, "GET", "/go")
    assert go.status == go_status and field(go, "location").endswith("/items/1")
    assert field(go, "content-length") in (None, str(len(go.body)))  # 0 but for Quart's
    # curl follows both redirects on one connection.
    out = subprocess.run(
        ["curl", "-sS", "-i", "-L", "--max-time", "10", f"{url}/go", f"{url}/slash"],
        capture_output=True,
        check=True,
    ).stdout
    statuses = [int(s) for s in re.findall(rb"HTTP/1.1 (\d+) ", out)]
    assert statuses == [go_status, 200] + ([slash_status] if slash_status else []) + [200]
    assert out.endswith(b"slash")


@pytest.mark.parametrize(("path", "status"), [("/created", 201), ("/accepted", 202)])
def test_empty_answers(url, path, status):
    answer = fetch(url, "POST", path)
    assert answer.status == status and answer.body == b""
    assert field(answer, "content-length") in (None, "0")


def test_no_content_and_not_modified_go_out_without_a_length_and_keep_the_connection(url):
    with socket.create_connection(("127.0.0.1", int(url.rpartition(":")[2])), timeout=10) as s:
        s.sendall(
            b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /cached HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + ETAG.encode() + b"\r\n\r\n"
            b"GET /own-server HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    answers = data.split(b"HTTP/1.1 ")[1:]
    assert [a[:3] for a in answers] == [b"204", b"304", b"200"]
    for answer in answers[:2]:  # nothing after their heads: the next answer follows
        assert answer.endswith(b"\r\n\r\n") and b"\r\ncontent-length:" not in answer.lower()
    assert ETAG.encode() in answers[1] and answers[2].endswith(b"own")


def test_server_sent_events_arrive_as_they_are_sent(url):
    answer = fetch(url, "GET", "/sse")
    assert answer.status == 200
    assert field(answer, "content-type").startswith("text/event-stream")
    assert field(answer, "transfer-encoding") == "chunked" and field(answer, "connection") is None
    data = [line for line in answer.body.split(b"\n") if line.startswith(b"data:")]
    assert [d.split(b":", 1)[1].strip() for d in data] == [b"tick 1", b"tick 2", b"tick 3"]


def test_the_application_s_server_and_date_go_out_alone(url):
    answer = fetch(url, "GET", "/own-server")
    assert answer.status == 200 and answer.body == b"own"
    assert field(answer, "server") == APP_SERVER and field(answer, "date") == APP_DATE


# -- the same answers as uvicorn's -------------------------------------------------------

# Fields each server frames, or names itself by, in its own way: uvicorn chunks what
# cyhttp sends with a length, and passes on the Connection and Content-Length fields
# that cyhttp drops (docs/http-responses.md).
SERVER_SPECIFIC = {"date", "server", "content-length", "transfer-encoding", "connection"}
COMPARED = [
    ("GET", "/go", None),
    ("GET", "/slash", None),
    ("POST", "/created", None),
    ("POST", "/accepted", None),
    ("GET", "/nothing", None),
    ("GET", "/cached", None),
    ("GET", "/cached", {"If-None-Match": ETAG}),
    ("GET", "/sse", None),
    ("GET", "/own-server", None),
    ("GET", "/stream", None),
    ("GET", "/file", None),
    ("HEAD", "/file", None),
    ("HEAD", "/items/1", None),
    ("GET", "/items/1", {"Origin": "http://example.org"}),
    ("GET", "/big", {"Accept-Encoding": "gzip"}),
    ("POST", "/items/1", None),
    ("GET", "/nowhere", None),
    ("GET", "/boom", None),
]


class Uvicorn:
    """uvicorn serving *app* on 127.0.0.1 in a thread."""

    def __init__(self, app: Any) -> None:
        uvicorn = pytest.importorskip("uvicorn")
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, log_level="critical", lifespan="auto")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def comparable(answer: Answer, path: str) -> tuple[int, bytes, list[tuple[str, str]]]:
    left_out = SERVER_SPECIFIC
    if path == "/file":
        # Starlette's GZipMiddleware adds Vary to the bodies it sees; a file sent with
        # http.response.pathsend (which cyhttp offers and uvicorn does not) it never sees.
        left_out = left_out | {"vary"}
    fields = sorted((k, v) for k, v in answer.headers if k not in left_out)
    return answer.status, answer.body, fields


@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
def test_the_same_answers_as_uvicorn(url, framework, tmp_path, caplog):
    with Uvicorn(make_app(framework, tmp_path)) as reference, caplog.at_level(logging.CRITICAL):
        theirs = [fetch(reference, method, path, headers) for method, path, headers in COMPARED]
    ours = [fetch(url, method, path, headers) for method, path, headers in COMPARED]
    for request, mine, reference_answer in zip(COMPARED, ours, theirs, strict=True):
        assert comparable(mine, request[1]) == comparable(reference_answer, request[1]), request


# -- a new Django project's admin --------------------------------------------------------


def test_a_new_django_project_s_admin_logs_in(impl, tmp_path):
    django_app = importlib.import_module("tests.frameworks.django_app")
    django_app.admin_ready()
    username, password = django_app.ADMIN
    with (
        LiveServer(make_app("django", tmp_path), impl, lifespan="auto") as srv,
        httpx.Client(base_url=srv.url, timeout=10) as client,
    ):
        first = client.get("/admin/")
        assert first.status_code == 302 and first.headers["content-length"] == "0"
        assert first.headers["location"] == "/admin/login/?next=/admin/"
        page = client.get(first.headers["location"])
        assert page.status_code == 200 and "csrftoken" in client.cookies
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert found is not None
        form = {"username": username, "password": password, "next": "/admin/"}
        assert client.post("/admin/login/", data=form).status_code == 403  # no token
        done = client.post("/admin/login/", data={**form, "csrfmiddlewaretoken": found[1]})
        assert done.status_code == 302 and done.headers["location"] == "/admin/"
        home = client.get("/admin/")
        assert home.status_code == 200 and "Site administration" in home.text


# -- the request body and the client's leaving ---------------------------------------------


def test_an_asgi_application_reads_a_body_past_a_mebibyte_unless_a_limit_is_set(impl, tmp_path):
    """uvicorn sets no limit on what an ASGI application may read; an operator may."""
    body = b"x" * (2 * 1024 * 1024 + 1)
    app = make_app("starlette", tmp_path)
    with LiveServer(app, impl) as srv:
        reply = httpx.post(srv.url + "/upload-size", content=body, timeout=10)
        assert reply.status_code == 200 and reply.text == str(len(body))
    with LiveServer(app, impl, max_body_size=1024 * 1024) as srv:
        reply = httpx.post(srv.url + "/upload-size", content=body, timeout=10)
        assert reply.status_code == 413


def test_a_native_handler_keeps_a_mebibyte_bound_by_default(impl):
    """body() holds the whole body: a native handler keeps the bound uvicorn has no use for."""

    async def handler(request: cyhttp.Request) -> cyhttp.Response:
        return cyhttp.Response(b"%d" % len(await request.body()))

    with LiveServer(handler, impl) as srv:
        assert srv.server.config.max_body_size == 1024 * 1024
        fits = httpx.post(srv.url, content=b"x" * 1024 * 1024, timeout=10)
        assert fits.status_code == 200 and fits.text == str(1024 * 1024)
        assert httpx.post(srv.url, content=b"x" * (1024 * 1024 + 1), timeout=10).status_code == 413


def _memory(pid: int, key: str) -> int:
    """A process's VmRSS or VmHWM (its largest RSS so far), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_100_mb_upload_streams_through_starlette_in_bounded_memory(impl):
    """The server in a process of its own, whose memory /proc tells: a 100 MB body goes
    through Starlette's request.stream() while the server's RSS stays within 20 MiB of
    what it was before (it reads at most a few hundred KiB ahead of the application)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = (
        "import cyhttp; from tests.frameworks.starlette_app import make; "
        f"cyhttp.run(make('/dev/null', []), port={port}, implementation={impl!r})"
    )
    root = Path(__file__).parent.parent
    server = subprocess.Popen([sys.executable, "-c", serve], cwd=root, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.05)
        with sock:
            sock.sendall(b"POST /upload-size HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
            assert sock.recv(65536).endswith(b"\r\n\r\n1")  # warmed up: Starlette's first run
            before = _memory(server.pid, "VmRSS")
            size = 100 * 1024 * 1024
            sock.sendall(
                b"POST /upload-size HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size
            )
            piece = os.urandom(1024 * 1024)
            highest = before
            for n in range(100):
                sock.sendall(piece)
                if n % 10 == 9:
                    highest = max(highest, _memory(server.pid, "VmRSS"))
            answer = b""
            while not answer.endswith(b"%d" % size):
                chunk = sock.recv(65536)
                assert chunk, answer
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert highest - before < 20 * 1024, (before, highest)
        assert _memory(server.pid, "VmHWM") - before < 20 * 1024
    finally:
        server.terminate()
        server.wait(10)


def test_a_client_leaving_a_stream_is_a_debug_line(impl, caplog):
    """Starlette turns the server's ClientDisconnected into its own ClientDisconnect,
    which ends the application: the client's doing, not the application's failure."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def endless() -> Any:
        while True:
            yield b"x" * 65536

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(endless())

    app = Starlette(routes=[Route("/endless", stream)])
    with caplog.at_level(logging.DEBUG, logger="cyhttp"), LiveServer(app, impl) as srv:
        with srv.connect() as sock:
            sock.sendall(b"GET /endless HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            "its client had gone" in r.getMessage() for r in caplog.records
        ):
            time.sleep(0.01)
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("cyhttp")]
    assert [m for level, m in said if level > logging.INFO] == []
    assert any(level == logging.DEBUG and "its client had gone" in m for level, m in said), said
