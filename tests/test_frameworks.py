"""Real ASGI frameworks served by cyhttp, on both cores, driven over TCP by httpx and curl.

The same application is written with Starlette, FastAPI, Django, Litestar, Quart and
BlackSheep (``tests/frameworks/``); each test asks every one of them the same question.
Where a framework lacks a feature (Django: lifespan, background tasks; BlackSheep:
background tasks) the test says so. A Django Channels consumer answers a test of its own.

Every test also runs with the application wrapped in asgion's ``Inspector``
(https://pypi.org/project/asgion/: it checks the scope and every message a server
exchanges with the application against the ASGI spec) and fails on any violation
of its rules about what the server provides (``SERVER_RULES``). asgion needs
Python 3.12; CI runs this module under 3.12 and 3.13 as well (the wheels' runs).
"""

from __future__ import annotations

import gzip
import importlib
import json
import re
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

try:
    import asgion
except ImportError:  # Python 3.11 (asgion needs 3.12)
    asgion = None

from .frameworks import BIG, ORIGIN
from .support import LiveServer, eventually

FRAMEWORKS = ["starlette", "fastapi", "django", "litestar", "quart", "blacksheep"]
# asgion's rules about what a server provides: the scope and messages' shape (G), the
# HTTP scope (HS), the receive events (HE-001 to HE-004), no http.request after the
# whole body (HF-007), and what lifespan sends the application (LF-001, LF-005). Its
# other rules judge what the application sends (Django and Quart send capitalised
# header names, HE-009; Starlette declares a Content-Length and answers with pathsend,
# SEM-003): the frameworks' business, not the server's.
SERVER_RULES = re.compile(r"(G-\d+|HS-\d+|HE-00[1-4]|HF-007|LF-00[15]):")
NO_LIFESPAN = {"django"}  # Django's ASGI handler refuses the lifespan scope
NO_BACKGROUND = {"django", "blacksheep"}
FILE_BODY = b"a file, served whole\n" * 2000


class Served:
    def __init__(self, srv: LiveServer, events: list[str], file: Path) -> None:
        self.srv, self.events, self.file = srv, events, file
        # identity unless a test asks for gzip: the GZip middlewares compress more than
        # /big (Litestar a file, Django each streamed piece as a gzip member of its own,
        # of which httpx decodes only the first).
        self.client = httpx.Client(
            base_url=srv.url, timeout=10, headers={"Accept-Encoding": "identity"}
        )


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["plain", "asgion"])
def inspected(request: pytest.FixtureRequest) -> bool:
    """Whether the application runs wrapped in asgion's spec checker."""
    if request.param == "asgion" and asgion is None:
        pytest.skip("asgion needs Python 3.12+")
    return request.param == "asgion"


@contextmanager
def serving(app: Any, impl: str, inspected: bool, lifespan: str) -> Iterator[LiveServer]:
    """*app* served on a live server, in asgion's checker if *inspected*: what it found
    against the server fails the test."""
    inspector = asgion.Inspector(app) if inspected else None
    with LiveServer(inspector or app, impl, lifespan=lifespan) as srv:
        yield srv
    if inspector is not None:
        found = [f"{v.rule_id}: {v.message}" for v in inspector.violations]
        assert [v for v in found if SERVER_RULES.match(v)] == []


@pytest.fixture
def served(impl: str, framework: str, inspected: bool, tmp_path: Path) -> Iterator[Served]:
    module = importlib.import_module(f"tests.frameworks.{framework}_app")
    file = tmp_path / "hello.txt"
    file.write_bytes(FILE_BODY)
    events: list[str] = []
    app = module.make(str(file), events)
    # "on" where the framework has lifespan: a startup that fails must fail the test.
    mode = "auto" if framework in NO_LIFESPAN else "on"
    with serving(app, impl, inspected, mode) as srv:
        served = Served(srv, events, file)
        with served.client:
            yield served


def test_path_and_query_parameters(served):
    reply = served.client.get("/items/42", params={"q": "a b"})
    assert reply.status_code == 200
    assert reply.json() == {"id": 42, "q": "a b"}
    assert served.client.get("/items/forty-two").status_code in (404, 422)
    assert served.client.get("/nowhere").status_code == 404


def test_json_in_and_out(served, framework):
    reply = served.client.post("/json", json={"a": 1})
    assert reply.status_code == 201
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json() == {"a": 1, "seen": True}
    if framework == "fastapi":  # pydantic validates the model
        assert served.client.post("/json", json={"a": "x"}).status_code == 422


def test_urlencoded_form(served, framework):
    route = "/urlencoded" if framework == "litestar" else "/form"
    reply = served.client.post(route, data={"a": "1", "b": "two words"})
    assert reply.status_code == 200
    assert reply.json() == {"a": "1", "b": "two words"}


def test_multipart_upload(served):
    data = bytes(range(256)) * 400  # 100 KiB: several reads
    reply = served.client.post("/form", files={"file": ("up.bin", data)})
    assert reply.status_code == 200
    assert reply.json() == {"name": "up.bin", "size": len(data)}


def test_streamed_response(served):
    with served.client.stream("GET", "/stream") as reply:
        assert reply.status_code == 200
        assert reply.headers.get("transfer-encoding") == "chunked"
        pieces = list(reply.iter_text())
    assert "".join(pieces) == "0\n1\n2\n"


# Django serves a file through a synchronous iterator, and says so with a warning.
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
def test_file_response(served):
    reply = served.client.get("/file")
    assert reply.status_code == 200
    assert reply.content == FILE_BODY
    assert reply.headers["content-length"] == str(len(FILE_BODY))


def test_cors_middleware(served):
    reply = served.client.get("/items/1", headers={"Origin": ORIGIN})
    assert reply.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in served.client.get("/items/1").headers


def test_gzip_middleware(served):
    reply = served.client.get("/big", headers={"Accept-Encoding": "gzip"})
    assert reply.status_code == 200
    assert reply.headers["content-encoding"] == "gzip"
    assert reply.text == BIG  # httpx decodes it
    raw = served.client.get("/big", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.text == BIG


def test_background_task_runs_after_the_response(served, framework):
    if framework in NO_BACKGROUND:
        pytest.skip(f"{framework} has no background tasks")
    reply = served.client.get("/background")
    assert reply.text == "queued"
    deadline = time.monotonic() + 5
    while "background" not in served.events and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "background" in served.events


def test_lifespan_startup_state_and_shutdown(impl, framework, tmp_path):
    module = importlib.import_module(f"tests.frameworks.{framework}_app")
    events: list[str] = []
    mode = "auto" if framework in NO_LIFESPAN else "on"
    with LiveServer(module.make(str(tmp_path / "none"), events), impl, lifespan=mode) as srv:
        if framework in NO_LIFESPAN:
            assert events == []
            assert httpx.get(srv.url + "/items/1").status_code == 200  # served anyway
            return
        assert events == ["startup"]
        assert httpx.get(srv.url + "/state").text == "connected"
    assert events == ["startup", "shutdown"]


def test_exception_in_a_view_is_a_500_and_serving_goes_on(served):
    assert served.client.get("/boom").status_code == 500
    assert served.client.get("/items/7").json() == {"id": 7, "q": None}


def test_django_sync_view_with_sqlite(impl, tmp_path):
    module = importlib.import_module("tests.frameworks.django_app")
    with LiveServer(module.make(str(tmp_path), []), impl, lifespan="auto") as srv:
        with httpx.Client(base_url=srv.url) as client:
            client.post("/notes", data={"text": "first"})
            reply = client.post("/notes", data={"text": "second"})
    assert reply.json()["notes"][-2:] == ["first", "second"]


def test_django_channels_async_http_consumer(impl, inspected):
    """Channels' consumers hand receive() to asyncio.ensure_future and wait with
    asyncio.wait: a GET, a POST, and a chunked POST whose body comes in two writes."""
    module = importlib.import_module("tests.frameworks.channels_app")

    def in_two_writes() -> Iterator[bytes]:
        yield b"in two "
        time.sleep(0.1)  # the consumer waits for the rest meanwhile
        yield b"writes"

    # Channels' router refuses the lifespan scope: served without, as Django is.
    with serving(module.make(), impl, inspected, "auto") as srv:
        with httpx.Client(base_url=srv.url, timeout=10) as client:
            replies = [
                client.get("/echo"),
                client.post("/echo", content=b"a body"),
                client.post("/echo", content=in_two_writes()),
            ]
    assert [(r.status_code, r.text) for r in replies] == [
        (200, "GET "),
        (200, "POST a body"),
        (200, "POST in two writes"),
    ]
    assert replies[2].request.headers["transfer-encoding"] == "chunked"


def _curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "10", *args],
        capture_output=True,
        check=True,
    )


def test_curl(served):
    url = served.srv.url
    out = _curl("--include", f"{url}/items/5?q=curl").stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body) == {"id": 5, "q": "curl"}
    # A JSON POST, then a gzip answer curl decompresses, on one command line.
    out = _curl(
        "-H", "Content-Type: application/json", "--data", '{"a": 2}', f"{url}/json",
        "--next", "--compressed", f"{url}/big",
    ).stdout  # fmt: skip
    assert out.endswith(BIG.encode())
    assert json.loads(out[: -len(BIG)]) == {"a": 2, "seen": True}
    assert (
        gzip.decompress(_curl("-H", "Accept-Encoding: gzip", f"{url}/big").stdout) == BIG.encode()
    )


WEBSOCKET_FRAMEWORKS = ["starlette", "fastapi", "channels"]


@pytest.mark.parametrize("name", WEBSOCKET_FRAMEWORKS)
async def test_websocket_route(impl, inspected, name, tmp_path):
    """Each framework's ``/chat`` WebSocket, driven by the ``websockets`` client: the
    subprotocol, text and binary echoes, a close the client begins (the application sees
    its code) and one the application begins (the client sees its code and reason)."""
    module = importlib.import_module(f"tests.frameworks.{name}_app")
    events: list[str] = []
    if name == "channels":
        app, mode = module.make(events), "auto"
    else:
        app, mode = module.make(str(tmp_path / "none"), events), "on"
    with serving(app, impl, inspected, mode) as srv:
        url = f"ws://127.0.0.1:{srv.port}/chat"
        async with connect(url, subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            for message in ("héllo", b"\x00\xff" * 1000, "x" * 100_000):
                await ws.send(message)
                assert await ws.recv() == message
            await ws.close(4001, "leaving")
        assert ws.close_code == 4001
        async with connect(url, subprotocols=["chat"]) as ws:
            await ws.send("bye")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert (ws.close_code, ws.close_reason) == (4000, "asked to")
        assert eventually(lambda: "closed 4001" in events), events
