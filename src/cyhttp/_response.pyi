"""Typed face of the compiled responses (``_response.pyx``); same interface as the
pure-Python classes of ``cyhttp.response``."""

from typing import AsyncIterable, Union

from ._wire import HeadersArg, HeaderValue

Body = Union[bytes, bytearray, memoryview, str]

class Response:
    @property
    def status(self) -> int: ...
    @property
    def body(self) -> bytes: ...
    def __init__(
        self,
        body: Body = b"",
        status: int = 200,
        headers: HeadersArg = None,
        content_type: HeaderValue | None = None,
    ) -> None: ...

class StreamingResponse:
    @property
    def status(self) -> int: ...
    @property
    def content(self) -> AsyncIterable[Body]: ...
    def __init__(
        self,
        content: AsyncIterable[Body],
        status: int = 200,
        headers: HeadersArg = None,
        content_type: HeaderValue | None = None,
    ) -> None: ...
