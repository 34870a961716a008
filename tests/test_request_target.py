"""Request targets per RFC 9112 §3.2, repeated singleton fields, and ``Expect`` on
HTTP/1.0, through a real socket on both cores, for native handlers and ASGI apps.

An absolute-form target is served as its path and query, with its authority in
place of the Host value (RFC 9112 §3.2.2), the same for ``request.headers`` and the
ASGI scope; any other form the method does not allow is refused and the handler is
never called.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

import cyhttp

from .support import read_until_closed

SEEN: list[dict[str, Any]] = []
# Sent behind each request: answered after one that is served, never after a refusal.
AFTER = b"GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


@pytest.fixture(autouse=True)
def _reset_seen():
    SEEN.clear()


async def native(request: cyhttp.Request) -> cyhttp.Response:
    body = await request.body()
    SEEN.append(
        {
            "target": request.raw_path,
            "path": request.path,
            "query": request.query_string,
            "hosts": request.headers.getall("host"),
        }
    )
    return cyhttp.Response(body or b"ok")


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    SEEN.append(
        {
            "target": scope["raw_path"],
            "path": scope["path"],
            "query": scope["query_string"],
            "hosts": [v.decode("latin-1") for n, v in scope["headers"] if n == b"host"],
            "server": scope["server"],
        }
    )
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body or b"ok"})


APPS = pytest.mark.parametrize("app", [native, asgi], ids=["native", "asgi"])


def _exchange(srv: Any, data: bytes) -> bytes:
    """Send *data*; everything the server answers before it closes."""
    with srv.connect() as sock:
        sock.sendall(data)
        return read_until_closed(sock)


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:100]
    return int(answer[9:12])


@APPS
def test_absolute_form_authority_replaces_host(live, app):
    """RFC 9112 §3.2.2: the target's authority, not the Host sent, is what the request is for."""
    with live(app, lifespan="off") as srv:
        answer = _exchange(
            srv,
            b"GET http://evil.example:8080/a/b?c=d HTTP/1.1\r\nHost: good.example\r\n"
            b"Connection: close\r\n\r\n",
        )
        port = srv.port
    assert _status(answer) == 200
    seen = SEEN.pop()
    if app is asgi:
        assert seen.pop("server") == ("127.0.0.1", port)  # where it listens, as ever
    assert seen == {
        "target": b"/a/b" if app is asgi else b"/a/b?c=d",  # ASGI's raw_path has no query
        "path": "/a/b",
        "query": b"c=d",
        "hosts": ["evil.example:8080"],
    }


@APPS
@pytest.mark.parametrize(
    ("head", "target", "host"),
    [
        (b"GET https://[::1]:8443 HTTP/1.1\r\nHost: a\r\n", b"/", "[::1]:8443"),
        (b"GET HTTP://Example.COM?q HTTP/1.1\r\nHost: a\r\n", b"/?q", "Example.COM"),
        (b"GET http://h.example/x HTTP/1.0\r\n", b"/x", "h.example"),  # Host added
        (b"OPTIONS http://h.example HTTP/1.1\r\nHost: a\r\n", b"*", "h.example"),
        (b"GET /plain HTTP/1.1\r\nHost: a.example\r\n", b"/plain", "a.example"),
    ],
    ids=["ipv6-no-path", "scheme-case-query-only", "http10-no-host", "options", "origin-form"],
)
def test_served_target_and_host(live, app, head, target, host):
    with live(app, lifespan="off") as srv:
        answer = _exchange(srv, head + b"Connection: close\r\n\r\n")
    assert _status(answer) == 200
    seen = SEEN.pop()
    assert seen["hosts"] == [host]
    if app is native:
        assert seen["target"] == target
    else:
        assert seen["target"] + b"?" * bool(seen["query"]) + seen["query"] == target


REFUSED = {
    "scheme-not-http": (b"PUT s://]ufd/: HTTP/1.1", 400),  # gunicorn's invalid/016
    "ftp": (b"GET ftp://x/a HTTP/1.1", 400),
    "authority-not-a-host": (b"GET http://]ufd/:/a?b HTTP/1.1", 400),
    "userinfo": (b"GET http://user:pw@good.example/ HTTP/1.1", 400),
    "empty-host": (b"GET http:///a HTTP/1.1", 400),
    "port-without-host": (b"GET http://:80/a HTTP/1.1", 400),
    "bad-ipv6": (b"GET http://[::g]/ HTTP/1.1", 400),
    "authority-form-without-connect": (b"GET example.com:443 HTTP/1.1", 400),
    "connect": (b"CONNECT example.com:443 HTTP/1.1", 501),
    "asterisk-without-options": (b"GET * HTTP/1.1", 400),
    "relative": (b"GET foo/bar HTTP/1.1", 400),
}


@APPS
@pytest.mark.parametrize(("line", "status"), REFUSED.values(), ids=REFUSED.keys())
def test_target_refused_and_closed(live, app, line, status):
    """A target its method does not allow: refused, closed, the handler never called."""
    with live(app, lifespan="off") as srv:
        answer = _exchange(srv, line + b"\r\nHost: good.example\r\n\r\n" + AFTER)
    assert _status(answer) == status
    assert answer.count(b"HTTP/1.1 ") == 1 and b"Connection: close\r\n" in answer
    assert SEEN == []


@APPS
@pytest.mark.parametrize(
    ("fields", "status"),
    [
        (b"Content-Type: text/plain\r\nContent-Type: text/html\r\n", 400),
        (b"Content-Type: text/plain\r\nX-A: b\r\ncontent-type: application/json\r\n", 400),
        (b"Content-Type: text/plain\r\nContent-Type: text/plain\r\n", 200),
        (b"Host: b\r\n", 400),  # a second Host, even with the same value as the first
        (b"Content-Length: 2\r\nContent-Length: 3\r\n", 400),
    ],
    ids=["content-type", "content-type-apart", "content-type-same", "host", "content-length"],
)
def test_repeated_singleton_fields(live, app, fields, status):
    with live(app, lifespan="off") as srv:
        answer = _exchange(srv, b"POST / HTTP/1.1\r\nHost: b\r\n" + fields + b"\r\n" + AFTER)
    assert _status(answer) == status
    if status == 200:
        assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2
    else:
        assert answer.count(b"HTTP/1.1 ") == 1 and SEEN == []


def _body_after_pause(sock: socket.socket) -> bytes:
    """What the server says before the body is sent (0.3 s), then the rest."""
    sock.settimeout(0.3)
    try:
        early = sock.recv(65536)
    except TimeoutError:
        early = b""
    sock.settimeout(10)
    sock.sendall(b"abcd")
    return early


@APPS
def test_expect_100_continue_is_ignored_on_http10(live, app):
    """RFC 9110 §10.1.1: an HTTP/1.0 client knows no interim answer; none is sent."""
    with live(app, lifespan="off") as srv, srv.connect() as sock:
        sock.sendall(b"POST /e HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        early = _body_after_pause(sock)
        answer = early + read_until_closed(sock)
    assert early == b""
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nabcd")


@APPS
def test_expect_100_continue_is_answered_on_http11(live, app):
    with live(app, lifespan="off") as srv, srv.connect() as sock:
        sock.sendall(
            b"POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n"
            b"Connection: close\r\n\r\n"
        )
        early = _body_after_pause(sock)
        answer = early + read_until_closed(sock)
    assert early == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert answer.endswith(b"\r\n\r\nabcd") and answer.count(b"HTTP/1.1 200 OK") == 1
