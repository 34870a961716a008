"""Response objects handlers return.

Headers are validated and encoded once, when the object is built, so a handler
that returns a prepared (or cached) response costs the core only a few copies.
"""

from __future__ import annotations

import functools
from typing import AsyncIterable, Union

from ._wire import FLAG_CONTENT_LENGTH, HeadersArg, HeaderValue, encode_headers, status_line

Body = Union[bytes, bytearray, memoryview, str]

__all__ = ["Response", "StreamingResponse"]


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

    __slots__ = ("_flags", "_head", "body", "status")

    body: bytes
    status: int

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
        self.body = body
        self.status = status
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

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


class StreamingResponse:
    """A response whose body comes from an async iterable of ``bytes``/``str`` chunks.

    HTTP/1.1 clients receive it with chunked transfer encoding; HTTP/1.0 clients
    receive it close-delimited. The server waits for the socket to drain between
    chunks, so a slow client slows the producer instead of filling memory.
    """

    __slots__ = ("_flags", "_head", "content", "status")

    content: AsyncIterable[Body]
    status: int

    def __init__(
        self,
        content: AsyncIterable[Body],
        status: int = 200,
        headers: HeadersArg = None,
        content_type: HeaderValue | None = None,
    ) -> None:
        if not hasattr(content, "__aiter__"):
            raise TypeError("StreamingResponse needs an async iterable")
        self.status = _check_status(status)
        self.content = content
        self._head, self._flags, _ = encode_headers(headers, content_type)
        if self._flags & FLAG_CONTENT_LENGTH:
            raise ValueError("a streaming response has no Content-Length")

    def __repr__(self) -> str:
        return f"<StreamingResponse {self.status}>"
