"""Response objects handlers return.

Headers are validated and encoded once, when the object is built, so a handler
that returns a prepared (or cached) response costs the core only a few copies.
Responses are immutable, so that what was validated stays valid (and a shared,
prepared response cannot be changed under another request). The cores still
check every field where they read it (``invalid_field``), since a handler can
reach the private slots or skip ``__init__``: an unservable response becomes
a logged 500, never a crash.
"""

from __future__ import annotations

import asyncio
import functools
import re
from typing import Any, AsyncIterable, Callable, Union

from ._wire import (
    FLAG_CLOSE,
    FLAG_CONTENT_LENGTH,
    FLAG_MASK,
    STATUS_LINES,
    TOKEN_PATTERN,
    HeadersArg,
    HeaderValue,
    encode_headers,
    status_line,
)

Body = Union[bytes, bytearray, memoryview, str]

__all__ = [
    "RESPONSE_TYPES",
    "STREAMING_TYPES",
    "Response",
    "StreamingResponse",
    "SwitchProtocols",
    "declared_length",
    "fields",
    "invalid_field",
    "register",
]


@functools.lru_cache(maxsize=64)
def _content_type_head(content_type: HeaderValue | None) -> tuple[bytes, int, int]:
    return encode_headers(None, content_type)


def check_status(status: int) -> int:
    """*status* if it is an ``int`` from 100 to 599; ``TypeError``/``ValueError`` otherwise."""
    if type(status) is not int:
        raise TypeError(f"status must be an int, not {type(status).__name__}")
    status_line(status)  # raises ValueError when out of range
    return status


def _check_declared(declared: int, body: bytes) -> None:
    if declared != len(body):
        raise ValueError(f"Content-Length {declared} does not match a {len(body)}-byte body")


def check_length(headers: HeadersArg, content_type: HeaderValue | None, body: bytes) -> None:
    """ValueError unless the Content-Length in *headers* is the size of *body*."""
    _check_declared(encode_headers(headers, content_type)[2], body)


def body_bytes(body: Body) -> bytes:
    """A response body as ``bytes``: ``str`` as UTF-8, any bytes-like object copied."""
    if isinstance(body, str):
        return body.encode("utf-8")
    try:
        return bytes(memoryview(body))
    except TypeError:
        raise TypeError(
            f"response body must be bytes-like or str, not {type(body).__name__}"
        ) from None


class Response:
    """A complete response: status, headers and a body held in memory.

    ``Content-Length``, ``Date`` and ``Server`` are added by the server. *body*
    may be bytes-like or ``str`` (encoded as UTF-8). A ``Content-Length`` given in
    *headers* is sent as is and must match the body unless the body is empty (a
    handler answering ``HEAD`` cheaply); on a 1xx, 204 or 304 it is left out.
    ``Connection: close`` closes the connection after the answer (other
    ``Connection`` values are dropped) and ``Transfer-Encoding: chunked`` is
    dropped: the server frames the body (see ``docs/http-responses.md``).
    """

    __slots__ = ("_body", "_flags", "_head", "_length", "_status")

    def __init__(
        self,
        body: Body = b"",
        status: int = 200,
        headers: HeadersArg = None,
        content_type: HeaderValue | None = None,
    ) -> None:
        # Handlers build one of these per request: the common case takes few steps.
        if type(status) is not int or not 100 <= status <= 599:
            check_status(status)  # raises the right error
        if type(body) is not bytes:
            body = body_bytes(body)
        self._body = body
        self._status = status
        if headers is None:
            self._length = -1
            if content_type is None:
                self._head = b""
                self._flags = 0
            else:
                self._head, self._flags, _ = _content_type_head(content_type)
            return
        self._head, self._flags, self._length = encode_headers(headers, content_type, status)
        if self._flags & FLAG_CONTENT_LENGTH and body:
            _check_declared(self._length, body)

    @property
    def body(self) -> bytes:
        """The body (``bytes``)."""
        return self._body

    @property
    def status(self) -> int:
        """The status code."""
        return self._status

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


class StreamingResponse:
    """A response whose body comes from an async iterable of ``bytes``/``str`` chunks.

    HTTP/1.1 clients receive it with chunked transfer encoding; HTTP/1.0 clients
    receive it close-delimited. With a ``Content-Length`` in *headers* the chunks
    are sent as they are and must add up to exactly that many bytes (a body that
    ends early or runs over is logged and the connection closed). The server
    waits for the socket to drain between chunks, so a slow client slows the
    producer instead of filling memory.
    """

    __slots__ = ("_content", "_flags", "_head", "_length", "_status")

    def __init__(
        self,
        content: AsyncIterable[Body],
        status: int = 200,
        headers: HeadersArg = None,
        content_type: HeaderValue | None = None,
    ) -> None:
        if not hasattr(content, "__aiter__"):
            raise TypeError("StreamingResponse needs an async iterable")
        self._status = check_status(status)
        self._content = content
        self._head, self._flags, self._length = encode_headers(headers, content_type, status)

    @property
    def content(self) -> AsyncIterable[Body]:
        """The async iterable the body is read from."""
        return self._content

    @property
    def status(self) -> int:
        """The status code."""
        return self._status

    def __repr__(self) -> str:
        return f"<StreamingResponse {self.status}>"


class SwitchProtocols:
    """A handler's acceptance of a request's ``Upgrade``: the connection changes hands.

    Once every earlier answer on the connection has left, the core writes
    ``101 Switching Protocols`` with ``Upgrade: protocol`` (and *headers*), then
    hands the transport to the ``asyncio`` protocol *factory()* returns: its
    ``connection_made`` gets the transport, its ``data_received`` the bytes the
    client sent after the request's head, and every later read is its own.
    Only a request that asked to switch (``Upgrade`` and ``Connection: upgrade``,
    no body) may be answered so; any other gets a logged 500. A handler that
    returns an ordinary response declines: it is sent and the connection closes.
    """

    __slots__ = ("_factory", "_head")

    def __init__(
        self,
        factory: Callable[[], asyncio.BaseProtocol],
        protocol: str,
        headers: HeadersArg = None,
    ) -> None:
        if not callable(factory):
            raise TypeError(f"factory must be callable, not {type(factory).__name__}")
        if not isinstance(protocol, str) or not _TOKEN_LIST.fullmatch(protocol):
            raise ValueError(
                f"protocol must be a protocol name such as 'websocket', got {protocol!r}"
            )
        head, flags, _ = encode_headers(headers, None)
        names = {line.partition(b":")[0].lower() for line in head.split(b"\r\n")}
        if flags & (FLAG_CLOSE | FLAG_CONTENT_LENGTH) or {b"upgrade", b"connection"} & names:
            raise ValueError("a 101 answer takes no Upgrade, Connection or Content-Length field")
        self._factory = factory
        self._head = b"Upgrade: %s\r\nConnection: Upgrade\r\n%s" % (protocol.encode(), head)

    @property
    def factory(self) -> Callable[[], asyncio.BaseProtocol]:
        """Makes the protocol the connection is handed to."""
        return self._factory

    def answer(self, date_block: bytes) -> bytes:
        """The whole ``101`` answer, with the core's Server and Date lines."""
        return b"%s%s%s\r\n" % (STATUS_LINES[101], date_block, self._head)

    def __repr__(self) -> str:
        first = self._head.split(b"\r\n", 1)[0].decode()
        return f"<SwitchProtocols {first}>"


# "protocol-name [/ version]" items, comma-separated (RFC 9110 §7.8).
_PROTOCOL = f"{TOKEN_PATTERN}(/{TOKEN_PATTERN})?"
_TOKEN_LIST = re.compile(rf"{_PROTOCOL}(\s*,\s*{_PROTOCOL})*")


# Every class a core serves: the pure ones, and the compiled ones once ``_impl`` has
# loaded them (``register``). Either core serves either kind.
RESPONSE_TYPES: tuple[type, ...] = (Response, StreamingResponse, SwitchProtocols)
STREAMING_TYPES: tuple[type, ...] = (StreamingResponse,)
PLAIN_TYPES: tuple[type, ...] = (Response,)


def _readers(cls: type, names: tuple[str, ...]) -> tuple[Any, ...]:
    # The class's own descriptors read what was stored, whatever a subclass defines on
    # top: the compiled core reads the same fields in place.
    return tuple(cls.__dict__[name].__get__ for name in names)


# class -> readers of (status, flags, head, body or content); whether status 0 means unset.
_READERS: dict[type, tuple[tuple[Any, ...], bool]] = {
    Response: (_readers(Response, ("_status", "_flags", "_head", "_body")), False),
    StreamingResponse: (
        _readers(StreamingResponse, ("_status", "_flags", "_head", "_content")),
        False,
    ),
}


def register(response: type, streaming: type) -> None:
    """Let both cores serve another implementation's response classes (C fields that
    read 0 for a status never set)."""
    global RESPONSE_TYPES, STREAMING_TYPES, PLAIN_TYPES
    RESPONSE_TYPES = (*RESPONSE_TYPES, response, streaming)
    STREAMING_TYPES = (*STREAMING_TYPES, streaming)
    PLAIN_TYPES = (*PLAIN_TYPES, response)
    _READERS[response] = (_readers(response, ("status", "_flags", "_head", "body")), True)
    _READERS[streaming] = (_readers(streaming, ("status", "_flags", "_head", "content")), True)


def fields(response: Any) -> tuple[Any, Any, Any, Any]:
    """``(status, flags, head, body or content)`` as stored; None where never set."""
    entry = _READERS.get(type(response))  # the exact class first: no scan
    if entry is None:
        found = next((cls for cls in _READERS if isinstance(response, cls)), None)
        if found is None:
            raise TypeError(f"not a response: {type(response).__name__}")
        entry = _READERS[found]
    (read_status, read_flags, read_head, read_body), zero_unset = entry
    try:
        values = [
            read_status(response),
            read_flags(response),
            read_head(response),
            read_body(response),
        ]
    except AttributeError:  # a slot never set: each one on its own
        values = []
        for read in entry[0]:
            try:
                values.append(read(response))
            except AttributeError:
                values.append(None)
    if zero_unset and values[0] == 0:
        values[0] = None
    return values[0], values[1], values[2], values[3]


def declared_length(response: Any) -> int:
    """The Content-Length *response* declared, kept when it was built (-1: none)."""
    # A pure response's slot exists unless a handler skipped __init__ (or replaced it).
    length = getattr(response, "_length", -1)
    return length if type(length) is int and 0 <= length < 1 << 63 else -1


def invalid_field(response: Any) -> str | None:
    """Why the core cannot serve *response*, naming the field; None if it can."""
    return invalid_values(response, *fields(response))


def invalid_values(response: Any, status: Any, flags: Any, head: Any, body: Any) -> str | None:
    """``invalid_field`` for the values ``fields`` read."""
    if status is None:
        return "response status is not set (was __init__ skipped?)"
    if type(status) is not int or not 100 <= status <= 599:
        return f"response status must be an int from 100 to 599, not {status!r}"
    if not isinstance(response, STREAMING_TYPES) and type(body) is not bytes:
        return f"response body must be bytes, not {type(body).__name__}"
    if type(head) is not bytes:
        return "response headers were replaced after construction"
    if type(flags) is not int or flags & ~FLAG_MASK:
        return "response flags were replaced after construction"
    return None
