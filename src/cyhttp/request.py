"""The request object handlers receive: one source for both cores.

Imported as is, this module is the pure core's ``Request``. The build compiles it
once more as ``cyhttp._request`` (a copy made by ``setup.py``, typed by
``_request.pxd``: Cython's pure-Python mode), the compiled core's. The two differ
only in the accessors they build (``Headers``, ``Query``, the decoded path): the
compiled ones of ``_fields.pyx`` or their pure twins of ``_fields_py.py``, both
through the primitives (``_primitives.pyx``, ``_primitives_py.py``).

The core makes a ``Request`` per request (``new_request``) with only what it
already has in hand (method, raw target, the header fields as received); headers,
path and query are decoded on first use. The body arrives through the core's side
of the class (``_feed``, ``_finish``, ``_abort``; C methods in the compiled build)
and is read by handlers with :meth:`Request.body` or :meth:`Request.stream`.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, List, Optional, Tuple

from ._contract import Connection
from ._fields_py import Headers, Query, RawHeaders
from .errors import ClientDisconnected, WebSocketClosed

try:
    import cython
except ImportError:  # Cython is needed only to build the compiled core
    from . import _no_cython as cython  # type: ignore[no-redef]

__all__ = ["ClientDisconnected", "Headers", "Query", "Request", "WebSocketClosed"]

# A streaming reader that falls this far behind makes the core stop reading the socket.
BODY_HIGH_WATER = 256 * 1024
GET = "GET"  # the scanner's and method_name's string: a first check by identity

# The accessors (Headers, Query, the decoded path): the compiled ones in the compiled build.
if cython.compiled:
    from cython.cimports.cyhttp import _primitives as primitives
else:
    from . import _primitives_py as primitives


def parse_cookies(values: List[str]) -> dict[str, str]:
    """The cookies of ``Cookie`` field values (RFC 6265 §5.4): ``name=value`` pairs
    separated by ";"; the first of a name wins, surrounding double quotes are dropped."""
    cookies: dict[str, str] = {}
    for value in values:
        for part in value.split(";"):
            name, sep, cookie = part.partition("=")
            if not sep:
                continue
            name = name.strip(" \t")
            cookie = cookie.strip(" \t")
            if len(cookie) > 1 and cookie[0] == cookie[-1] == '"':
                cookie = cookie[1:-1]
            cookies.setdefault(name, cookie)
    return cookies


# A free list for the compiled class: Cython takes it only from a cclass's decorators
# in the source (the .pxd's @freelist is silently ignored in pure-Python mode).
@cython.freelist(64)
@cython.cclass
class Request:
    """One HTTP request as the handler sees it.

    Attributes: ``method`` (``"GET"``), ``raw_path`` (the request target as
    received, query included), ``http_version`` (``"1.1"``), ``keep_alive``
    (whether the client allows the connection to be reused). Everything else is
    computed on first use.

    The members whose names begin with ``_`` are the core's side, declared in
    ``_request.pxd`` (C fields and methods in the compiled build): the protocol and
    the ASGI layer fill and release the body through them.
    """

    __slots__ = (
        "_body",
        "_body_done",
        "_buffered",
        "_chunks",
        "_conn",
        "_cookies",
        "_error",
        "_expect",
        "_fields",
        "_headers",
        "_is_head",
        "_is_http10",
        "_path",
        "_query",
        "_trailers",
        "_waiter",
        "_want_all",
        "http_version",
        "keep_alive",
        "method",
        "raw_path",
    )

    method: str
    raw_path: bytes
    http_version: str
    keep_alive: bool

    def __init__(
        self,
        conn: Connection,
        method: str,
        raw_path: bytes,
        raw_headers: RawHeaders,
        http10: bool,
        keep_alive: bool,
    ) -> None:
        self._init(conn, method, raw_path, raw_headers, http10, keep_alive)

    def _init(
        self,
        conn: Connection,
        method: str,
        raw_path: bytes,
        fields: Any,
        http10: bool,
        keep_alive: bool,
    ) -> None:
        """*fields*: the header fields as received, ``(name, value)`` pairs (or, from the
        compiled core's scanner, the field lines as bytes, read only when asked for)."""
        self._conn = conn
        self.method = method
        self.raw_path = raw_path
        self._fields = fields
        self.http_version = "1.0" if http10 else "1.1"
        self.keep_alive = keep_alive
        self._is_head = method is not GET and method == "HEAD"  # no body in the answer
        self._is_http10 = http10  # no chunked answers, explicit keep-alive
        # 100-continue: False, nothing owed; True, owed once the handler reads
        # the body; None, asked for and waiting for this request's turn.
        self._expect: Optional[bool] = False
        if not cython.compiled:  # C fields start as None, 0 and False
            self._headers: Optional[Headers] = None
            self._path: Optional[str] = None
            self._query: Optional[Query] = None
            self._cookies: Optional[dict[str, str]] = None
            self._chunks: Optional[List[bytes]] = None
            self._buffered = 0
            self._body: Optional[bytes] = None
            self._body_done = False
            self._want_all = False
            self._waiter: Optional[asyncio.Future[None]] = None
            self._error: Optional[BaseException] = None
            self._trailers: Optional[RawHeaders] = None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_path!r}>"

    @property
    def headers(self) -> Headers:
        """Request headers, decoded on first access (the compiled build's lookups read
        the received lines in place)."""
        headers = self._headers
        if headers is None:
            headers = self._headers = primitives.new_headers(self._fields)
        return headers

    @property
    def trailers(self) -> Headers:
        """The trailer fields of a chunked body, once the body has been read whole."""
        if not self._body_done or self._error is not None:
            raise RuntimeError("trailers are known once the whole body has been read")
        trailers: Headers = primitives.new_headers(self._trailers or [])
        return trailers

    @property
    def path(self) -> str:
        """The percent-decoded path, without the query string."""
        path = self._path
        if path is None:
            path = self._path = primitives.decode_path(self.raw_path)
        return path

    @property
    def query_string(self) -> bytes:
        """Everything after the first ``?`` of the target, still encoded."""
        return self.raw_path.partition(b"?")[2]

    @property
    def query(self) -> Query:
        """The parsed query string (a read-only, multi-valued mapping), parsed on first use."""
        query = self._query
        if query is None:
            query = self._query = primitives.new_query(self.raw_path)
        return query

    @property
    def cookies(self) -> dict[str, str]:
        """The request's cookies by name, parsed on first use."""
        cookies = self._cookies
        if cookies is None:
            cookies = self._cookies = parse_cookies(self.headers.getall("cookie"))
        return cookies

    @property
    def client(self) -> Optional[Tuple[str, int]]:
        """``(host, port)`` of the peer, or ``None`` for a non-IP socket."""
        return self._conn.client

    @property
    def scheme(self) -> str:
        """``"https"`` when the connection is TLS, else ``"http"``."""
        return self._conn.scheme

    async def body(self) -> bytes:
        """The whole request body (``await request.body()``; read once, then cached)."""
        body = self._body
        if body is None:
            if self._body_done and self._error is None:
                # The usual case: the message was complete before the handler ran.
                body = self._release()
            else:
                self._want_all = True
                parts = []
                while await self._next_piece():
                    parts.append(self._release())
                body = b"".join(parts)
            self._body = body
        return body

    async def stream(self) -> AsyncIterator[bytes]:
        """``async for chunk in request.stream()``: the body as it arrives, with backpressure."""
        if self._body is not None:
            if self._body:
                yield self._body
            return
        while await self._next_piece():
            yield self._release()

    # -- the core's side --------------------------------------------------

    async def _next_piece(self) -> bool:
        """Wait for more body (``100 Continue`` first, if owed); False once it is complete.

        The ASGI layer's ``receive`` waits here too.
        """
        if self._expect:
            self._expect = False
            self._conn._send_continue(self)
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._body_done:
                return False
            self._conn._resume_body()
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return True

    def _feed(self, data: bytes) -> bool:
        """Take a piece of body; True asks the core to stop reading for now."""
        if self._chunks is None:
            self._chunks = [data]
        else:
            self._chunks.append(data)
        self._buffered += len(data)
        if self._waiter is not None:
            self._wake()
        return self._buffered > BODY_HIGH_WATER and not self._want_all

    def _finish(self) -> None:
        self._body_done = True
        if self._waiter is not None:
            self._wake()

    def _release(self) -> bytes:
        """Hand over the body buffered so far (``b""`` if none) and forget it.

        Taken by the handler or dropped once the answer is complete, either way: a body
        that had paused reading (``_feed``) no longer holds the connection's input back.
        """
        chunks = self._chunks
        if chunks is None:
            return b""
        self._chunks = None
        if self._buffered > BODY_HIGH_WATER:
            self._conn._resume_body()
        self._buffered = 0
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _abort(self, exc: BaseException) -> None:
        if not self._body_done:
            self._error = exc
            self._wake()

    def _wake(self) -> None:
        """Resume a handler waiting for body."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)


def new_request(
    conn: Connection, method: str, raw_path: bytes, fields: Any, http10: bool, keep_alive: bool
) -> Request:
    """A request as the core makes it: without ``__init__``'s argument parsing (and, in the
    compiled build, from a free list)."""
    req = Request.__new__(Request)
    req._init(conn, method, raw_path, fields, http10, keep_alive)
    return req


def connection_of(req: Request) -> Connection:
    """The connection *req* came on (what the WebSocket handshake hands over)."""
    return req._conn
