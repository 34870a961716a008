"""What every benchmark server shares: the bodies, the port, a per-second Date."""

from __future__ import annotations

import sys
import time
from urllib.parse import unquote_plus

import orjson

HELLO = b"Hello, world!"
BIG = b"x" * 65536
ITEMS = "/items/"  # the realistic route: /items/<id>?q=...&page=...


def item_answer(item: str, q: str | None, page: str | None, agent: str | None) -> bytes:
    """The realistic route's JSON answer (every server builds the same one, with orjson)."""
    return orjson.dumps({"item": int(item), "q": q, "page": int(page or "1"), "agent": agent})


def port() -> int:
    """The port to listen on, from the command line."""
    return int(sys.argv[-1])


class Date:
    """A Date header value re-formatted at most once a second, as every real server does."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            # Imported here so that servers which do not use this (cyhttp) do not pay its memory.
            from email.utils import formatdate

            self._second = now
            self._value = formatdate(now, usegmt=True).encode()
        return self._value


def response(
    body: bytes,
    date: Date,
    close: bool = False,
    content_type: bytes = b"text/plain",
    extra: bytes = b"",
) -> bytes:
    """A complete response with the headers every server here sends (*extra*: more lines)."""
    return b"HTTP/1.1 200 OK\r\nServer: bench\r\nDate: %s\r\nContent-Type: %s\r\n%s" \
        b"Content-Length: %d\r\n%s\r\n%s" % (
            date.get(), content_type, extra, len(body),
            b"Connection: close\r\n" if close else b"", body,
        )  # fmt: skip


def query_params(query: bytes) -> dict[str, str]:
    """A query string's parameters by hand (first value of each), as a hand-written server
    would: split on "&" and "=", unquote only what needs it."""
    params: dict[str, str] = {}
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        text_name, text_value = name.decode("latin-1"), value.decode("latin-1")
        if b"%" in part or b"+" in part:
            text_name, text_value = unquote_plus(text_name), unquote_plus(text_value)
        params.setdefault(text_name, text_value)
    return params


def realistic(target: bytes, agent: bytes | None, date: Date, close: bool) -> bytes | None:
    """The hand-written baselines' realistic route: None if *target* is not on it."""
    path, _, query = target.partition(b"?")
    if not path.startswith(b"/items/"):
        return None
    params = query_params(query)
    item = path[7:].decode("latin-1")
    body = item_answer(
        item, params.get("q"), params.get("page"), agent.decode("latin-1") if agent else None
    )
    extra = b"Cache-Control: no-store\r\nX-Item: %s\r\n" % path[7:]
    return response(body, date, close, b"application/json", extra)


def parse_head(head: bytes) -> tuple[bytes, int, bool, bytes | None]:
    """Target, Content-Length, whether to close and the User-Agent, from a request head
    (the baselines' parser)."""
    lines = head.split(b"\r\n")
    _, target, version = lines[0].split(b" ", 2)
    length = 0
    close = version.startswith(b"HTTP/1.0")
    agent = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
        elif name == b"user-agent":
            agent = value.strip()
    return target, length, close, agent
