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

import functools
from typing import Any, AsyncIterable, Union

from ._wire import FLAG_CONTENT_LENGTH, HeadersArg, HeaderValue, encode_headers, status_line

Body = Union[bytes, bytearray, memoryview, str]

__all__ = ["Response", "StreamingResponse", "invalid_field"]

_FLAG_MASK = 15  # every FLAG_* bit of _wire


@functools.lru_cache(maxsize=64)
def _content_type_head(content_type: HeaderValue | None) -> tuple[bytes, int, int]:
    return encode_headers(None, content_type)


def _check_status(status: int) -> int:
    if type(status) is not int:
        raise TypeError(f"status must be an int, not {type(status).__name__}")
    status_line(status)  # raises ValueError when out of range
    return status


class Response:
    """A complete response: status, headers and a body held in memory.

    ``Content-Length``, ``Date`` and ``Server`` are added by the server. *body*
    may be bytes-like or ``str`` (encoded as UTF-8). A ``Content-Length`` given in
    *headers* is sent as is and must match the body unless the body is empty (a
    handler answering ``HEAD`` cheaply).
    """

    __slots__ = ("_body", "_flags", "_head", "_status")

    def __init__(
        self,
        body: Body = b"",
        status: int = 200,
        headers: HeadersArg = None,
        content_type: HeaderValue | None = None,
    ) -> None:
        # Handlers build one of these per request: the common case takes few steps.
        if type(status) is not int or not 100 <= status <= 599:
            _check_status(status)  # raises the right error
        if type(body) is not bytes:
            body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self._body = body
        self._status = status
        if headers is None:
            if content_type is None:
                self._head = b""
                self._flags = 0
            else:
                self._head, self._flags, _ = _content_type_head(content_type)
            return
        self._head, self._flags, declared = encode_headers(headers, content_type)
        if self._flags & FLAG_CONTENT_LENGTH and body and declared != len(body):
            raise ValueError(f"Content-Length {declared} does not match a {len(body)}-byte body")

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
    receive it close-delimited. The server waits for the socket to drain between
    chunks, so a slow client slows the producer instead of filling memory.
    """

    __slots__ = ("_content", "_flags", "_head", "_status")

    def __init__(
        self,
        content: AsyncIterable[Body],
        status: int = 200,
        headers: HeadersArg = None,
        content_type: HeaderValue | None = None,
    ) -> None:
        if not hasattr(content, "__aiter__"):
            raise TypeError("StreamingResponse needs an async iterable")
        self._status = _check_status(status)
        self._content = content
        self._head, self._flags, _ = encode_headers(headers, content_type)
        if self._flags & FLAG_CONTENT_LENGTH:
            raise ValueError("a streaming response has no Content-Length")

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


def _slot_readers(cls: type, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(cls.__dict__[name].__get__ for name in names)


# The slots' own descriptors read what was stored, whatever a subclass defines on top:
# the compiled core reads the same slots in place.
_READ_RESPONSE = _slot_readers(Response, ("_status", "_flags", "_head", "_body"))
_READ_STREAMING = _slot_readers(StreamingResponse, ("_status", "_flags", "_head", "_content"))
_NAMES = ("status", "flags", "headers", "body")


def fields(response: Response | StreamingResponse) -> tuple[Any, Any, Any, Any]:
    """``(status, flags, head, body or content)`` as stored; None where a slot is unset."""
    readers = _READ_RESPONSE if isinstance(response, Response) else _READ_STREAMING
    values = []
    for read in readers:
        try:
            values.append(read(response))
        except AttributeError:
            values.append(None)
    return values[0], values[1], values[2], values[3]


def invalid_field(response: Response | StreamingResponse) -> str | None:
    """Why the core cannot serve *response*, naming the field; None if it can."""
    status, flags, head, body = fields(response)
    if status is None:
        return "response status is not set (was __init__ skipped?)"
    if type(status) is not int or not 100 <= status <= 599:
        return f"response status must be an int from 100 to 599, not {status!r}"
    if isinstance(response, Response) and type(body) is not bytes:
        return f"response body must be bytes, not {type(body).__name__}"
    if type(head) is not bytes:
        return "response headers were replaced after construction"
    if type(flags) is not int or flags & ~_FLAG_MASK:
        return "response flags were replaced after construction"
    return None
