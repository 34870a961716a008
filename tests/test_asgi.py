"""ASGI 3 applications on both cores: interface selection, the HTTP scope, receive and
send, what the client sees on the wire, and what bad application output gets.

Wire-level cases run on a protocol with a fake transport (``conn``); the scope, the
body flow and disconnects run over real sockets on 127.0.0.1 (``live``) with httpx and
raw sockets. The spec followed: ASGI HTTP & WebSocket spec, version 2.4
(https://asgi.readthedocs.io/en/latest/specs/www.html).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from types import MappingProxyType
from typing import Any

import httpx
import pytest

import cyhttp
from cyhttp._interface import InterfaceError, detect

from .support import read_until_closed, split_responses

Scope = dict[str, Any]


async def hello(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
    await send({"type": "http.response.body", "body": b"hello"})


def _get(path: str = "/", extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"


# -- interface selection -------------------------------------------------------


class Instance:
    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await hello(scope, receive, send)


class Asgi2:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        pass


def native(request: cyhttp.Request) -> cyhttp.Response:
    return cyhttp.Response(b"native")


async def native_with_extras(request: cyhttp.Request, seen: Any = None) -> cyhttp.Response:
    return cyhttp.Response(b"native")


@pytest.mark.parametrize(
    ("app", "found"),
    [
        (hello, "asgi"),
        (Instance(), "asgi"),
        (native, "native"),
        (native_with_extras, "native"),
        (lambda request: None, "native"),
        (lambda scope, receive, send: None, "asgi"),
    ],
    ids=["function", "instance", "native", "native-defaults", "native-lambda", "asgi-lambda"],
)
def test_auto_tells_asgi_from_native(app, found):
    assert detect(app) == found


@pytest.mark.parametrize(
    ("app", "message"),
    [
        (Asgi2, "is a class: an ASGI 2 application?"),
        (lambda *args: None, "cannot tell whether"),
        (lambda a, b, *, c: None, "cannot tell whether"),
        (42, "app must be callable, got int"),
    ],
    ids=["asgi2-class", "star-args", "required-keyword", "not-callable"],
)
def test_what_cannot_be_served_is_refused_with_one_line(app, message):
    with pytest.raises(InterfaceError) as info:
        cyhttp.Server(app)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_interface_given_is_used_and_checked():
    assert cyhttp.Server(lambda *a: None, interface="asgi").interface == "asgi"
    assert cyhttp.Server(lambda *a: None, interface="native").interface == "native"
    with pytest.raises(ValueError, match="interface must be 'auto', 'native', 'asgi' or 'wsgi'"):
        cyhttp.Server(hello, interface="cgi")
    with pytest.raises(ValueError, match="lifespan must be"):
        cyhttp.Server(hello, lifespan="yes")
    with pytest.raises(ValueError, match="root_path must be"):
        cyhttp.Server(hello, root_path="api/")


async def test_a_native_handler_is_still_served_natively(conn):
    c = conn(native)
    c.feed(_get())
    await c.settle()
    assert c.data.endswith(b"\r\n\r\nnative")


# -- the scope -----------------------------------------------------------------


def test_scope_over_a_real_socket(live):
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope)
        await hello(scope, receive, send)

    with live(app, root_path="/api", lifespan="off") as srv:
        port = srv.port
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(
                b"GET /caf%C3%A9/a%2Fb?x=1&y=%20 HTTP/1.1\r\nHost: h\r\n"
                b"X-Dup: one\r\nUser-Agent: t\r\nx-dup: two\r\n\r\n"
            )
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
            client = sock.getsockname()
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(b"POST /ten HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
            read_until_closed(sock)
    scope, scope10 = seen
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1" and scope10["http_version"] == "1.0"
    assert scope["method"] == "GET" and scope10["method"] == "POST"
    assert scope["scheme"] == "http"
    # The mount point leads path and raw_path (as uvicorn gives them); path is decoded.
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/café/a/b"
    assert scope["raw_path"] == b"/api/caf%C3%A9/a%2Fb"
    assert scope["query_string"] == b"x=1&y=%20"
    assert scope["headers"] == [
        (b"host", b"h"),
        (b"x-dup", b"one"),
        (b"user-agent", b"t"),
        (b"x-dup", b"two"),
    ]
    assert scope["client"] == client
    assert scope["server"] == ("127.0.0.1", port)
    assert scope["state"] == {}
    assert scope["extensions"] == {"http.response.pathsend": {}}
    assert scope10["query_string"] == b"" and scope10["headers"] == [(b"content-length", b"0")]


def test_scope_headers_of_a_head_httptools_reads(live):
    """Heads the scanner does not take (an obs-fold-free but odd one) reach httptools."""
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)
        await hello(scope, receive, send)

    with live(app, lifespan="off") as srv:
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(
                b"GET / HTTP/1.1\r\nHost: h\r\nX-A:  padded  \r\nTransfer-Encoding: chunked"
            )
            sock.sendall(b"\r\n\r\n0\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
    assert seen[0]["headers"] == [
        (b"host", b"h"),
        (b"x-a", b"padded"),
        (b"transfer-encoding", b"chunked"),
    ]


# -- receive ---------------------------------------------------------------------


async def echo(scope: Scope, receive: Any, send: Any) -> None:
    pieces = []
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        pieces.append(message["body"])
        if not message["more_body"]:
            break
    body = b"|".join(pieces)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_whole_body_in_one_message(conn):
    c = conn(echo)
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 200 OK\r\n") and c.data.endswith(b"\r\n\r\nhello")


async def test_body_delivered_as_it_arrives(conn):
    c = conn(echo)
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    await c.settle()
    assert c.data == b""  # the application waits for the rest
    c.feed(b"2\r\nde\r\n")
    await c.settle()
    c.feed(b"0\r\n\r\n")
    await c.settle()
    # Each read became a message; the last one says there is no more.
    assert c.data.endswith(b"\r\n\r\nabc|de|"), c.data


async def test_reading_pauses_until_the_application_receives(conn):
    gate = asyncio.Event()

    async def slow(scope: Scope, receive: Any, send: Any) -> None:
        await gate.wait()
        await echo(scope, receive, send)

    c = conn(slow)
    # More than the 256 KiB a request holds for a handler that has not read it yet.
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 600000\r\n\r\n" + b"x" * 400000)
    await c.settle()
    assert not c.transport.reading  # the body is not consumed: reading paused
    gate.set()
    await c.settle()
    assert c.transport.reading
    c.feed(b"x" * 200000)
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert c.data.count(b"x") == 600000


async def test_100_continue_answered_on_the_first_receive(conn):
    c = conn(echo)
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    await c.settle()
    assert c.data == b"HTTP/1.1 100 Continue\r\n\r\n"
    c.feed(b"ok")
    await c.settle()
    assert c.data.endswith(b"\r\n\r\nok")


async def test_no_100_continue_when_the_application_never_receives(conn):
    c = conn(hello)
    c.feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"100 Continue" not in c.data
    assert b"Connection: close\r\n" in c.data  # the unread body ends the connection


async def test_disconnect_once_the_response_is_complete(conn):
    after: list[Any] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await hello(scope, receive, send)
        after.append(await receive())

    c = conn(app)
    c.feed(_get())
    await c.settle()
    assert after == [{"type": "http.disconnect"}]


def test_client_gone_disconnects_receive_and_send_raises_oserror(live):
    events: list[Any] = []
    done = asyncio.Event()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        events.append(await receive())  # the (empty) body
        events.append(await receive())  # waits: the response is not complete
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except OSError as exc:
            events.append(type(exc).__name__)
        done.set()

    with live(app, lifespan="off") as srv:
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(_get())
            time.sleep(0.2)
        deadline = time.monotonic() + 5
        while len(events) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert events[1:] == [{"type": "http.disconnect"}, "ClientDisconnected"]
    assert issubclass(cyhttp.ClientDisconnected, OSError)


# -- send: what the client receives -------------------------------------------------


async def test_single_body_gets_a_computed_content_length(conn):
    c = conn(hello)
    c.feed(_get())
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nx-app: 1\r\n" in c.data and b"\r\nContent-Length: 5\r\n" in c.data
    assert c.data.endswith(b"\r\n\r\nhello")
    assert len(c.transport.writes) == 1  # one write for the whole answer


async def test_application_content_length_is_kept(conn):
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": b"hel", "more_body": True})
        await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b"lo"})

    c = conn(app)
    c.feed(_get())
    await c.settle()
    head, _, body = c.data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201 Created\r\n")
    assert b"content-length: 5" in head and b"Transfer-Encoding" not in head
    assert body == b"hello"
    assert not c.transport.closed


async def streamer(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for piece in (b"one", b"two"):
        await send({"type": "http.response.body", "body": piece, "more_body": True})
        await asyncio.sleep(0)  # a real stream waits between pieces
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def test_streamed_body_is_chunked_for_http11(conn):
    c = conn(streamer)
    c.feed(_get())
    await c.settle()
    head, _, body = c.data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n"
    assert not c.transport.closed


async def test_streamed_body_is_close_delimited_for_http10(conn):
    c = conn(streamer)
    c.feed(b"GET / HTTP/1.0\r\n\r\n")
    await c.settle()
    head, _, body = c.data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK") or head.startswith(b"HTTP/1.1 200 OK")
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert body == b"onetwo" and c.transport.closed


async def test_stream_sent_without_waiting_arrives_whole(conn):
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})

    c = conn(app)
    c.feed(_get())
    await c.settle()
    assert b"Transfer-Encoding: chunked" in c.data and c.data.endswith(
        b"1\r\na\r\n1\r\nb\r\n0\r\n\r\n"
    )


@pytest.mark.parametrize("app", [hello, streamer], ids=["single", "streamed"])
async def test_head_bodies_are_dropped(conn, app):
    c = conn(app)
    c.feed(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + _get())
    await c.settle()
    answers = c.data.split(b"HTTP/1.1 200 OK\r\n")
    assert len(answers) == 3
    assert answers[1].endswith(b"\r\n\r\n")  # the HEAD answer: a head only


async def test_pipelined_answers_in_order(conn):
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            await asyncio.sleep(0.01)
        body = scope["path"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    c = conn(app)
    c.feed(_get("/slow") + _get("/a") + _get("/b"))
    await c.settle()
    for _ in range(50):
        await asyncio.sleep(0.005)
        if c.data.count(b"HTTP/1.1") == 3:
            break
    assert [r.rpartition(b"\r\n\r\n")[2] for r in split_responses(c.data)] == [
        b"/slow",
        b"/a",
        b"/b",
    ]


async def test_background_work_after_the_response_does_not_hold_it(conn):
    gate = asyncio.Event()
    finished: list[bool] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await hello(scope, receive, send)
        await gate.wait()  # e.g. Starlette's background tasks
        finished.append(True)

    c = conn(app)
    c.feed(_get())
    await c.settle()
    assert c.data.endswith(b"hello") and finished == []
    gate.set()
    await c.settle()
    assert finished == [True]


def pathsend_app(path: Any, headers: Any) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": str(path)})

    return app


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_pathsend_sends_the_file_with_sendfile(live, tmp_path, monkeypatch, loop):
    data = bytes(range(256)) * 40_000  # 10 MB: many sendfile calls, the socket fills up
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    calls: list[int] = []
    real_sendfile = os.sendfile

    def counting_sendfile(*args: Any) -> int:
        calls.append(args[3])
        return real_sendfile(*args)

    monkeypatch.setattr(os, "sendfile", counting_sendfile)
    # No Content-Length from the application: the server gives the file's size.
    with live(pathsend_app(path, []), lifespan="off", loop=loop) as srv:
        with httpx.Client() as client:
            for _ in range(2):  # the connection stays usable
                reply = client.get(srv.url + "/file")
                assert reply.status_code == 200 and reply.content == data
                assert reply.headers["content-length"] == str(len(data))
                assert "transfer-encoding" not in reply.headers
            head = client.head(srv.url + "/file")
            assert head.headers["content-length"] == str(len(data)) and head.content == b""
    assert calls and calls[0] == len(data)  # zero-copy, from the first byte


def test_pathsend_to_a_client_that_leaves_closes_cleanly(live, tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"x" * 20_000_000)
    with live(pathsend_app(path, []), lifespan="off") as srv:
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(_get())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
        # gone mid-file: the server goes on serving
        with httpx.Client() as client:
            assert client.get(srv.url + "/").status_code == 200
        deadline = time.monotonic() + 5
        while srv.server.connections and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not srv.server.connections


def test_pathsend_with_a_wrong_content_length_is_a_500(live, tmp_path, caplog):
    path = tmp_path / "file.bin"
    path.write_bytes(b"12345")
    with live(pathsend_app(path, [(b"content-length", b"9")]), lifespan="off") as srv:
        with caplog.at_level(logging.ERROR, logger="cyhttp.error"):
            assert httpx.get(srv.url + "/").status_code == 500
    assert "pathsend of a 5-byte file with a Content-Length of 9" in caplog.text


async def test_messages_may_be_any_mapping(conn):
    """The spec says dicts; a read-only mapping is read the same (as uvicorn reads it)."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send(MappingProxyType(_start(201, [(b"x-kind", b"proxy")])))
        await send(MappingProxyType(_body(b"mapped")))

    c = conn(app)
    c.feed(_get("/"))
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 201 Created\r\n")
    assert b"\r\nx-kind: proxy\r\n" in c.data and c.data.endswith(b"\r\n\r\nmapped")


# -- bad application output ------------------------------------------------------------


def _start(status: Any = 200, headers: Any = ()) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": list(headers)}


def _body(body: Any = b"x", more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body, "more_body": more}


# Each sends these messages; nothing valid reached the client: 500.
BEFORE_START = {
    "unknown-type": ([{"type": "http.response.teapot"}], "unknown message type"),
    "not-a-dict": ([["http.response.start"]], "must be a dict with a 'type'"),
    "body-first": ([_body()], "http.response.body before http.response.start"),
    "no-status": ([{"type": "http.response.start", "headers": []}], "status None"),
    "status-str": ([_start("200")], "status '200'"),
    "status-range": ([_start(999)], "status 999"),
    "status-1xx": ([_start(103)], "status 103"),
    "body-str": ([_start(), _body("text")], "with a str body"),
    "header-not-pair": ([_start(headers=[b"x-a"]), _body()], "headers the core refuses"),
    "header-str-pair": ([_start(headers=[("x-a", 1)]), _body()], "headers the core refuses"),
    "header-crlf": (
        [_start(headers=[(b"x-a", b"1\r\nx-b: 2")]), _body()],
        "headers the core refuses",
    ),
    "header-nul": ([_start(headers=[(b"x-a", b"1\x00")]), _body()], "headers the core refuses"),
    "second-start": ([_start(), _start()], "http.response.start after http.response.start"),
    "transfer-encoding-gzip": (
        [_start(headers=[(b"transfer-encoding", b"gzip")]), _body()],
        "Transfer-Encoding 'gzip': the server applies no coding but chunked",
    ),
    "length-conflict": (
        [_start(headers=[(b"content-length", b"1"), (b"content-length", b"2")]), _body()],
        "conflicting Content-Length values",
    ),
    "pathsend-missing": (
        [_start(), {"type": "http.response.pathsend", "path": "/no/such/file"}],
        "cannot open",
    ),
}


@pytest.mark.parametrize("case", BEFORE_START, ids=BEFORE_START)
async def test_bad_output_before_the_start_is_a_500(conn, caplog, case):
    messages, problem = BEFORE_START[case]
    raised: list[BaseException] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["path"] == "/ok":
            await hello(scope, receive, send)
            return
        try:
            for message in messages:
                await send(message)
        except RuntimeError as exc:
            raised.append(exc)
            raise

    c = conn(app)
    with caplog.at_level(logging.ERROR, logger="cyhttp.error"):
        c.feed(_get("/bad") + _get("/ok"))
        await c.settle()
    first, second = split_responses(c.data)
    assert first.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert second.startswith(b"HTTP/1.1 200 OK\r\n")  # the server goes on serving
    assert problem in str(raised[0])
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1 and problem in logged[0] and "'/bad'" in logged[0], logged


async def test_returning_without_a_response_is_a_500(conn, caplog):
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        return None

    c = conn(app)
    with caplog.at_level(logging.ERROR, logger="cyhttp.error"):
        c.feed(_get())
        await c.settle()
    assert c.data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert "returned without a response" in caplog.text


@pytest.mark.parametrize("where", ["before-start", "after-start", "suspended"])
async def test_raising_before_the_body_is_a_500(conn, caplog, where):
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if where == "suspended":
            await asyncio.sleep(0)
        if where == "after-start":
            await send(_start())
        raise KeyError("boom")

    c = conn(app)
    with caplog.at_level(logging.ERROR, logger="cyhttp.error"):
        c.feed(_get() + _get())
        await c.settle()
    assert [r.split(b"\r\n")[0] for r in split_responses(c.data)] == [
        b"HTTP/1.1 500 Internal Server Error"
    ] * 2
    assert "ASGI application failed for GET b'/'" in caplog.text and "KeyError" in caplog.text


@pytest.mark.parametrize("ending", ["raises", "returns", "bad-message"])
async def test_a_started_stream_that_breaks_closes_the_connection(conn, caplog, ending):
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send(_start())
        await send(_body(b"part", more=True))
        await asyncio.sleep(0)
        if ending == "raises":
            raise KeyError("boom")
        if ending == "bad-message":
            await send(_start())

    c = conn(app)
    with caplog.at_level(logging.ERROR, logger="cyhttp.error"):
        c.feed(_get() + _get())
        await c.settle()
    assert c.data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert c.data.endswith(b"4\r\npart\r\n")  # no last chunk: the client sees it cut
    assert c.data.count(b"HTTP/1.1") == 1 and c.transport.closed
    assert "ASGI application" in caplog.text


async def test_sending_after_the_response_is_logged_and_the_answer_stands(conn, caplog):
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await hello(scope, receive, send)
        await send(_body(b"more"))

    c = conn(app)
    with caplog.at_level(logging.ERROR, logger="cyhttp.error"):
        c.feed(_get() + _get())
        await c.settle()
    assert [r.rpartition(b"\r\n\r\n")[2] for r in split_responses(c.data)] == [b"hello"] * 2
    assert "http.response.body after the response was complete" in caplog.text
    assert not c.transport.closed


# -- lifespan -------------------------------------------------------------------------------


def lifespan_app(log: list[str], fail: str = "") -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                log.append(message["type"])
                if message["type"] == "lifespan.startup":
                    if fail == "report":
                        await send({"type": "lifespan.startup.failed", "message": "no db"})
                        return
                    if fail == "raise":
                        raise ConnectionError("no db")
                    scope["state"]["db"] = "connected"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = repr(scope["state"]).encode()
        scope["state"]["changed"] = True  # a copy: the next request does not see it
        await send(_start())
        await send(_body(body))

    return app


async def test_lifespan_startup_state_and_shutdown(impl):
    log: list[str] = []
    server = cyhttp.Server(lifespan_app(log), port=0, implementation=impl)
    async with server:
        assert log == ["lifespan.startup"]
        async with httpx.AsyncClient() as client:
            for _ in range(2):
                reply = await client.get(f"http://127.0.0.1:{server.port}/")
                assert reply.text == "{'db': 'connected'}"
    assert log == ["lifespan.startup", "lifespan.shutdown"]


@pytest.mark.parametrize(
    ("fail", "mode", "message"),
    [
        ("report", "auto", "the application failed its startup: no db"),
        ("report", "on", "the application failed its startup: no db"),
        ("raise", "on", "ConnectionError('no db')"),
    ],
)
async def test_failed_startup_listens_nowhere(impl, fail, mode, message):
    server = cyhttp.Server(lifespan_app([], fail), port=0, implementation=impl, lifespan=mode)
    with pytest.raises(cyhttp.StartupFailed, match="no db") as info:
        await server.start()
    assert message in str(info.value)
    assert server.sockets == []


async def test_auto_serves_an_app_without_lifespan(impl, caplog):
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "http", "no lifespan support"
        await hello(scope, receive, send)

    with caplog.at_level(logging.INFO, logger="cyhttp"):
        async with cyhttp.Server(app, port=0, implementation=impl) as server:
            async with httpx.AsyncClient() as client:
                reply = await client.get(f"http://127.0.0.1:{server.port}/")
    assert reply.text == "hello"
    assert "lifespan' protocol appears unsupported" in caplog.text


async def test_lifespan_off_never_calls_the_app_for_it(impl):
    log: list[str] = []
    async with cyhttp.Server(lifespan_app(log), port=0, implementation=impl, lifespan="off"):
        pass
    assert log == []


async def test_a_failed_listen_shuts_the_lifespan_down_in_order(impl, caplog):
    log: list[str] = []
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = cyhttp.Server(lifespan_app(log), port=busy.getsockname()[1], implementation=impl)
        with caplog.at_level(logging.INFO, logger="cyhttp"), pytest.raises(OSError):
            await server.start()
    assert log == ["lifespan.startup", "lifespan.shutdown"]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_port_in_use_is_one_line_even_for_starlette(impl, tmp_path):
    """Starlette reports a lifespan Task cancelled while it waits as shutdown.failed: the
    server stops it in order instead, and the user reads one line."""
    (tmp_path / "app.py").write_text(
        "import contextlib\n"
        "from starlette.applications import Starlette\n"
        "@contextlib.asynccontextmanager\n"
        "async def lifespan(app):\n"
        "    print('startup', flush=True)\n"
        "    yield\n"
        "    print('shutdown', flush=True)\n"
        "app = Starlette(lifespan=lifespan)\n"
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        ran = subprocess.run(
            [sys.executable, "-m", "cyhttp", "app:app", "--port", port, "--implementation", impl],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert ran.returncode == 1
    assert ran.stdout == "startup\nshutdown\n"
    assert ran.stderr.startswith(f"cyhttp: cannot listen on 127.0.0.1:{port}: ")
    assert ran.stderr.count("\n") == 1, ran.stderr


async def test_a_failure_report_is_accepted_at_any_point(impl, caplog):
    log: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            log.append((await receive())["type"])
            await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.startup.failed", "message": "a late worry"})
            log.append((await receive())["type"])
            await send({"type": "lifespan.shutdown.failed", "message": "pool not closed"})
            await send({"type": "lifespan.shutdown.failed", "message": "and more"})
            return
        await hello(scope, receive, send)

    server = cyhttp.Server(app, port=0, implementation=impl, lifespan="on")
    with caplog.at_level(logging.WARNING, logger="cyhttp"):
        async with server:
            async with httpx.AsyncClient() as client:
                reply = await client.get(f"http://127.0.0.1:{server.port}/")
    assert reply.text == "hello" and log == ["lifespan.startup", "lifespan.shutdown"]
    said = [r.getMessage() for r in caplog.records]
    assert any("lifespan.startup.failed: a late worry" in m for m in said), said
    assert any("failed its shutdown: pool not closed" in m for m in said), said
    assert any("lifespan.shutdown.failed: and more" in m for m in said), said


# -- the Task an application runs as ------------------------------------------------------

REQUEST_VAR: Any = __import__("contextvars").ContextVar("request_var", default=None)


async def test_one_task_from_the_first_step_on_and_a_context_per_request(conn):
    """The Task current in the first step is the one that finishes the application
    (anyio and asyncio.timeout hold on to it), and no request sees another's context."""
    import anyio

    seen: list[Any] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(REQUEST_VAR.get())
        REQUEST_VAR.set(scope["path"])
        first = asyncio.current_task()
        assert first is not None
        async with asyncio.timeout(5):
            async with anyio.create_task_group() as group:
                group.start_soon(anyio.sleep, 0)
                await asyncio.sleep(0)  # suspends inside both
        assert asyncio.current_task() is first
        assert REQUEST_VAR.get() == scope["path"]
        await hello(scope, receive, send)

    c = conn(app)
    c.feed(_get("/one") + _get("/two"))
    await c.settle()
    c.feed(_get("/three"))
    await c.settle()
    assert seen == [None, None, None]
    assert [r.rpartition(b"\r\n\r\n")[2] for r in split_responses(c.data)] == [b"hello"] * 3


async def test_an_application_that_finishes_at_once_leaves_no_task_running(conn):
    c = conn(hello)
    before = len(asyncio.all_tasks())
    c.feed(_get() * 8)
    await c.settle()
    assert c.data.count(b"HTTP/1.1 200 OK") == 8
    assert len(asyncio.all_tasks()) <= before + 1  # at most the idle carrier (Python 3.11)
