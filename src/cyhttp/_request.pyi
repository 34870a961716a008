"""Typed face of the compiled ``Request``: ``request.py`` compiled as ``_request`` (see
setup.py); the same interface as ``cyhttp.request.Request``."""

from typing import Any, AsyncIterator, List, Optional, Tuple

from ._fields import Headers, Query
from .errors import ClientDisconnected as ClientDisconnected
from .errors import WebSocketClosed as WebSocketClosed

__all__ = ["ClientDisconnected", "Headers", "Query", "Request", "WebSocketClosed"]

class Request:
    """One HTTP request as the handler sees it (compiled build of ``cyhttp.request.Request``)."""

    @property
    def method(self) -> str: ...
    @property
    def raw_path(self) -> bytes: ...
    @property
    def http_version(self) -> str: ...
    @property
    def keep_alive(self) -> bool: ...
    def __init__(
        self,
        conn: Any,
        method: str,
        raw_path: bytes,
        raw_headers: List[Tuple[bytes, bytes]],
        http10: bool,
        keep_alive: bool,
    ) -> None: ...
    @property
    def headers(self) -> Headers: ...
    @property
    def trailers(self) -> Headers: ...
    @property
    def path(self) -> str: ...
    @property
    def query(self) -> Query: ...
    @property
    def cookies(self) -> dict[str, str]: ...
    @property
    def query_string(self) -> bytes: ...
    @property
    def client(self) -> Optional[Tuple[str, int]]: ...
    @property
    def scheme(self) -> str: ...
    async def body(self) -> bytes: ...
    def stream(self) -> AsyncIterator[bytes]: ...

def connection_of(req: Request) -> Any:
    """The connection *req* came on (what the WebSocket handshake hands over)."""
