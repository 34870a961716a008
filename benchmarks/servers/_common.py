"""What every benchmark server shares: the bodies, the port, a per-second Date."""

from __future__ import annotations

import sys
import time

HELLO = b"Hello, world!"
BIG = b"x" * 65536


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


def response(body: bytes, date: Date, close: bool = False) -> bytes:
    """A complete response with the headers every server here sends."""
    return (
        b"HTTP/1.1 200 OK\r\nServer: bench\r\nDate: %s\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n%s\r\n%s"
        % (date.get(), len(body), b"Connection: close\r\n" if close else b"", body)
    )


def parse_head(head: bytes) -> tuple[bytes, int, bool]:
    """Target, Content-Length and whether to close, from a request head (the baselines' parser)."""
    lines = head.split(b"\r\n")
    _, target, version = lines[0].split(b" ", 2)
    length = 0
    close = version.startswith(b"HTTP/1.0")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    return target, length, close
