"""Real WSGI frameworks served by cyhttp (``--interface wsgi``, each core) and by gunicorn
gthread, driven over TCP by httpx and curl.

The same application is written with Flask, Falcon, Bottle and as a small Django project
(``tests/frameworks/wsgi_*``); each test asks every one of them the same question, on
each server: what a user moving from gunicorn would find different shows as a failure
beside gunicorn's pass.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from .frameworks import wsgi_shared
from .support import WSGI_SERVERS, cli_env, free_port, serving_process, wsgi_argv

FRAMEWORKS = {
    "flask": "tests.frameworks.wsgi_flask:app",
    "django": "tests.frameworks.wsgi_django.wsgi:application",
    "falcon": "tests.frameworks.wsgi_falcon:app",
    "bottle": "tests.frameworks.wsgi_bottle:app",
}
FILE_BODY = Path(wsgi_shared.FILE).read_bytes()


@pytest.fixture(scope="module", params=sorted(FRAMEWORKS))
def framework(request: pytest.FixtureRequest) -> str:
    pytest.importorskip(str(request.param))
    return str(request.param)


@pytest.fixture(scope="module", params=WSGI_SERVERS)
def url(
    request: pytest.FixtureRequest, framework: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The base URL of *framework*'s application, served for this module."""
    port = free_port()
    log = tmp_path_factory.mktemp("wsgi") / "log"
    with serving_process(
        wsgi_argv(request.param, port, FRAMEWORKS[framework]), port, cli_env(), log
    ):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def client(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=10) as made:
        yield made


def test_path_and_query_parameters(client):
    reply = client.get("/items/42", params={"q": "a b"})
    assert reply.status_code == 200
    assert reply.json() == {"id": 42, "q": "a b"}
    assert client.get("/items/forty-two").status_code == 404
    assert client.get("/nowhere").status_code == 404


def test_json_in_and_out(client):
    reply = client.post("/json", json={"a": 1})
    assert reply.status_code == 201
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json() == {"a": 1, "seen": True}


def test_urlencoded_form(client):
    reply = client.post("/form", data={"a": "1", "b": "two words"})
    assert reply.status_code == 200
    assert reply.json() == {"a": "1", "b": "two words"}


def test_multipart_upload(client):
    data = bytes(range(256)) * 1024  # 256 KiB: many reads, and spooled by Django
    reply = client.post("/upload", files={"file": ("up.bin", data)})
    assert reply.status_code == 200
    assert reply.json() == {"name": "up.bin", "size": len(data)}


def test_chunked_upload(client, framework):
    # A body of unknown length (httpx sends a generator chunked): Werkzeug reads it to its
    # end (wsgi.input_terminated); the others read CONTENT_LENGTH bytes, so none.
    if framework != "flask":
        pytest.skip(f"{framework} reads no body without a Content-Length")
    data = b"--x\r\nContent-Disposition: form-data; name=file; filename=c.bin\r\n\r\n"
    data += b"z" * 5000 + b"\r\n--x--\r\n"
    reply = client.post(
        "/upload",
        content=iter([data[:100], data[100:]]),
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert reply.request.headers["transfer-encoding"] == "chunked"
    assert reply.status_code == 200
    assert reply.json() == {"name": "c.bin", "size": 5000}


def test_streamed_response(client, url):
    with client.stream("GET", "/stream") as reply:
        assert reply.status_code == 200
        assert "content-length" not in reply.headers
        lines = reply.iter_lines()
        first = next(lines)
        # Asked for once the first line is here: the view goes on only then (10 s).
        assert httpx.get(url + "/next").text == "ok"
        rest = list(lines)
    assert [first, *rest] == ["0", "1", "2"]


def test_file_response(client):
    reply = client.get("/file")
    assert reply.status_code == 200
    assert reply.content == FILE_BODY
    assert reply.headers["content-length"] == str(len(FILE_BODY))


def test_redirect(client):
    reply = client.get("/go")
    assert reply.status_code in (302, 303)
    assert reply.headers["location"].endswith("/items/1")
    assert client.get("/go", follow_redirects=True).json() == {"id": 1, "q": None}


def test_head(client):
    reply = client.head("/file")
    assert reply.status_code == 200
    assert reply.content == b""
    assert client.get("/items/3").json() == {"id": 3, "q": None}  # the connection goes on


def test_error_answers_and_serving_goes_on(client):
    assert client.get("/forbidden").status_code == 403
    assert client.get("/boom").status_code == 500
    assert client.get("/items/7").json() == {"id": 7, "q": None}


def test_django_csrf_protected_form(client, framework):
    if framework != "django":
        pytest.skip("Django's CSRF middleware")
    assert client.post("/protected", data={"note": "no token"}).status_code == 403
    token = client.get("/protected").text  # and the cookie, which the client keeps
    reply = client.post("/protected", data={"note": "hi"}, headers={"X-CSRFToken": token})
    assert reply.status_code == 200
    assert reply.json() == {"note": "hi"}


def _curl(*args: str) -> bytes:
    return subprocess.run(
        ["curl", "--silent", "--show-error", "--max-time", "10", *args],
        capture_output=True,
        check=True,
    ).stdout


def test_curl(url, tmp_path):
    out = _curl("--include", f"{url}/items/5?q=curl")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body) == {"id": 5, "q": "curl"}
    upload = tmp_path / "up.bin"
    upload.write_bytes(b"u" * 100_000)
    # A multipart upload (curl sends Expect: 100-continue for it), then a file, on one
    # connection.
    out = _curl("-F", f"file=@{upload}", f"{url}/upload", "--next", f"{url}/file")
    assert out.endswith(FILE_BODY)
    assert json.loads(out[: -len(FILE_BODY)]) == {"name": "up.bin", "size": 100_000}
