"""What cyhttp makes of the framing and persistence fields an ASGI application sends
(docs/http-responses.md): taken as uvicorn takes them, refused only where they would
split a response or mis-frame the next one. On both cores, on a fake transport; the
real frameworks that send them are in ``test_framework_responses.py``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from .support import split_responses

Scope = dict[str, Any]


def app_sending(status: int, headers: list[tuple[bytes, bytes]], *pieces: bytes) -> Any:
    """An application answering *status* and *headers*, its body in *pieces* (one message
    each, the last one ending it; none: one empty message). ``/ok`` answers ``ok``."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["path"] == "/ok":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        body = list(pieces) or [b""]
        for i, piece in enumerate(body):
            more = i < len(body) - 1
            await send({"type": "http.response.body", "body": piece, "more_body": more})
            if more:
                await asyncio.sleep(0)  # the writer takes each piece as a stream's would

    return app


def _req(method: str = "GET", path: str = "/", version: str = "1.1", extra: bytes = b"") -> bytes:
    return f"{method} {path} HTTP/{version}\r\nHost: x\r\n".encode() + extra + b"\r\n"


async def exchange(conn: Any, app: Any, first: bytes, caplog: Any) -> tuple[Any, list[str]]:
    """Serve *first* then ``GET /ok`` on one connection: the connection, the error log."""
    c = conn(app)
    with caplog.at_level(logging.ERROR, logger="cyhttp.error"):
        c.feed(first + _req(path="/ok"))
        await c.settle(40)
    return c, [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def _head(data: bytes) -> list[bytes]:
    """The field lines of the first answer in *data*, lower-cased, Date and Server left out."""
    lines = data.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]
    return [line.lower() for line in lines if not line.lower().startswith((b"date:", b"server:"))]


# -- Content-Length -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [(302, b""), (201, b""), (200, b"abc")],
    ids=["redirect", "created", "body"],
)
async def test_a_length_that_matches_the_body_zero_included_is_served(conn, caplog, status, body):
    headers = [(b"location", b"/x"), (b"content-length", b"%d" % len(body))]
    c, errors = await exchange(conn, app_sending(status, headers, body), _req(), caplog)
    first, second = split_responses(c.data)
    assert first.startswith(b"HTTP/1.1 %d " % status)
    assert _head(first) == [b"location: /x", b"content-length: %d" % len(body)]
    assert first.endswith(b"\r\n\r\n" + body)
    assert second.endswith(b"\r\n\r\nok") and errors == []


OVER_AND_SHORT = {
    # pieces, what the client reads after the head, what the log says
    "over": ([b"hello"], b"hel", "longer than its Content-Length: cut there"),
    "over-streamed": ([b"ab", b"cdef"], b"abc", "longer than its Content-Length: cut there"),
    "short": ([b"a"], b"a", "2 bytes short of its Content-Length"),
    "short-empty": ([b""], b"", "3 bytes short of its Content-Length"),
    "short-streamed": ([b"a", b"b"], b"ab", "1 bytes short of its Content-Length"),
}


@pytest.mark.parametrize("case", OVER_AND_SHORT, ids=OVER_AND_SHORT)
async def test_a_body_not_of_its_length_is_sent_up_to_it_then_the_connection_closes(
    conn, caplog, case
):
    pieces, seen, problem = OVER_AND_SHORT[case]
    app = app_sending(200, [(b"content-length", b"3")], *pieces)
    c, errors = await exchange(conn, app, _req(path="/bad"), caplog)
    head, _, body = c.data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 3" in _head(c.data)
    assert body == seen  # nothing of the next answer: it would be read as this body
    assert c.transport.closed
    assert len(errors) == 1 and problem in errors[0] and "'/bad'" in errors[0], errors


async def test_head_answers_keep_the_declared_length_whatever_the_body(conn, caplog):
    app = app_sending(200, [(b"content-length", b"9")], b"abc")
    c, errors = await exchange(conn, app, _req("HEAD"), caplog)
    assert c.data.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: 9" in _head(c.data)
    assert c.data.partition(b"\r\n\r\n")[2].startswith(b"HTTP/1.1 200 OK\r\n")  # no body
    assert c.data.endswith(b"\r\n\r\nok") and errors == []


@pytest.mark.parametrize("status", [204, 304])
@pytest.mark.parametrize("pieces", [[b""], [b"", b""]], ids=["single", "streamed"])
async def test_no_content_length_on_answers_without_a_body(conn, caplog, status, pieces):
    """Django's CommonMiddleware sets Content-Length: 0 on its 204s (RFC 9110 §8.6: a
    server must not send one on a 204; a 304's would describe the 200 it stands for)."""
    headers = [(b"content-length", b"0"), (b"etag", b'"e"')]
    c, errors = await exchange(conn, app_sending(status, headers, *pieces), _req(), caplog)
    assert c.data.startswith(b"HTTP/1.1 %d " % status)
    assert _head(c.data) == [b'etag: "e"']
    assert c.data.partition(b"\r\n\r\n")[2].startswith(b"HTTP/1.1 200 OK\r\n")
    assert c.data.endswith(b"\r\n\r\nok") and errors == []


# -- Connection ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [b"keep-alive", b"Keep-Alive", b"upgrade"])
async def test_connection_options_but_close_are_dropped(conn, caplog, value):
    """sse-starlette sets Connection: keep-alive on every stream."""
    app = app_sending(200, [(b"connection", value), (b"x-a", b"1")], b"a", b"b")
    c, errors = await exchange(conn, app, _req(), caplog)
    assert _head(c.data) == [b"x-a: 1", b"transfer-encoding: chunked"]
    assert c.data.endswith(b"\r\n\r\nok") and not c.transport.closed and errors == []


@pytest.mark.parametrize("value", [b"close", b"keep-alive, Close"])
async def test_connection_close_is_honoured(conn, caplog, value):
    c, errors = await exchange(
        conn, app_sending(200, [(b"connection", value)], b"a"), _req(), caplog
    )
    assert _head(c.data) == [b"content-length: 1", b"connection: close"]
    assert c.data.endswith(b"\r\n\r\na") and c.transport.closed and errors == []


async def test_an_http10_client_asking_keep_alive_gets_the_server_s_field_once(conn, caplog):
    app = app_sending(200, [(b"connection", b"keep-alive")], b"a")
    request = _req(version="1.0", extra=b"Connection: keep-alive\r\n")
    c, errors = await exchange(conn, app, request, caplog)
    assert _head(c.data) == [b"content-length: 1", b"connection: keep-alive"]
    assert c.data.endswith(b"\r\n\r\nok") and errors == []


# -- Transfer-Encoding ----------------------------------------------------------------


TRANSFER_ENCODING = {
    # headers, pieces, the fields that go out, the body on the wire
    "streamed": (
        [(b"transfer-encoding", b"chunked")],
        [b"ab", b"c"],
        [b"transfer-encoding: chunked"],
        b"2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
    ),
    "streamed-with-length": (
        [(b"content-length", b"3"), (b"Transfer-Encoding", b"Chunked")],
        [b"ab", b"c"],
        [b"transfer-encoding: chunked"],
        b"2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
    ),
    "whole": (
        [(b"transfer-encoding", b"chunked")],
        [b"abc"],
        [b"content-length: 3"],
        b"abc",
    ),
    "empty": ([(b"transfer-encoding", b"chunked")], [], [b"content-length: 0"], b""),
}


@pytest.mark.parametrize("case", TRANSFER_ENCODING, ids=TRANSFER_ENCODING)
async def test_chunked_from_the_application_leaves_the_framing_to_the_server(conn, caplog, case):
    """BlackSheep sets Transfer-Encoding: chunked on every streamed answer; the server
    frames what it streams in chunks itself (once), and a whole body by its length."""
    headers, pieces, fields, wire = TRANSFER_ENCODING[case]
    c, errors = await exchange(conn, app_sending(200, headers, *pieces), _req(), caplog)
    assert _head(c.data) == fields
    assert c.data.partition(b"\r\n\r\n")[2].startswith(wire + b"HTTP/1.1 200 OK\r\n")
    assert not c.transport.closed and errors == []


async def test_chunked_from_the_application_to_an_http10_client_ends_with_the_connection(
    conn, caplog
):
    c = conn(app_sending(200, [(b"transfer-encoding", b"chunked")], b"ab", b"c"))
    c.feed(_req(version="1.0"))
    await c.settle(40)
    assert _head(c.data) == [b"connection: close"]
    assert c.data.endswith(b"\r\n\r\nabc") and c.transport.closed


async def test_a_body_of_none_is_an_empty_one(conn, caplog):
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": None})

    c, errors = await exchange(conn, app, _req(), caplog)
    first, second = split_responses(c.data)
    assert _head(first) == [b"content-length: 0"] and first.endswith(b"\r\n\r\n")
    assert second.startswith(b"HTTP/1.1 200 OK\r\n") and errors == []


# -- what stays refused ---------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-a", b"1\r\nSet-Cookie: a=b")],
        [(b"x-a", b"1\nx")],
        [(b"x-a", b"1\x00")],
        [(b"x a", b"1")],
        [(b"", b"1")],
        [(b"transfer-encoding", b"gzip, chunked")],
    ],
    ids=["crlf", "lf", "nul", "name-space", "name-empty", "coding"],
)
async def test_what_would_split_or_misframe_a_response_is_a_500(conn, caplog, headers):
    c, errors = await exchange(conn, app_sending(200, headers, b"x"), _req(path="/bad"), caplog)
    first, second = split_responses(c.data)
    assert first.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"Set-Cookie" not in first and second.endswith(b"\r\n\r\nok")
    assert len(errors) == 1 and "headers the core refuses" in errors[0], errors
