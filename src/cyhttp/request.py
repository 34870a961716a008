"""The request object handlers receive, shared by both cores.

The core builds a ``Request`` per request with only what it already has in hand
(method, raw target, raw header pairs); headers, path and query are decoded on
first use. The body arrives through ``_feed``/``_finish`` from the core and is
read by handlers with :meth:`Request.body` or :meth:`Request.stream`.
"""

from __future__ import annotations

import asyncio
from typing import (
    Any,
    AsyncIterator,
    Coroutine,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
)

from ._contract import Connection

__all__ = ["ClientDisconnected", "Headers", "Query", "Request", "WebSocketClosed"]

# A streaming reader that falls this far behind makes the core stop reading the socket.
BODY_HIGH_WATER = 256 * 1024

RawHeaders = List[Tuple[bytes, bytes]]


class ClientDisconnected(ConnectionError):
    """The client went away (or sent a malformed body) before the body was complete."""


class WebSocketClosed(ClientDisconnected):
    """The WebSocket is closed: raised by ``receive`` and ``send``.

    ``code`` is the close code (1006 when the connection dropped without a close
    frame), ``reason`` the close reason.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


class Headers(Mapping[str, str]):
    """Case-insensitive, multi-valued, read-only view of request headers.

    ``headers["x"]`` gives the first value, :meth:`getall` every value in order,
    and :attr:`raw` the ``(name, value)`` byte pairs exactly as received.
    """

    __slots__ = ("_index", "raw")

    def __init__(self, raw: RawHeaders) -> None:
        self.raw = raw
        index: dict[str, list[str]] = {}
        for name, value in raw:
            index.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        self._index = index

    def __getitem__(self, name: str) -> str:
        return self._index[name.lower()][0]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def getall(self, name: str, default: Optional[List[str]] = None) -> List[str]:
        """Every value of *name*, in the order received (``default`` or ``[]`` if absent)."""
        values = self._index.get(name.lower())
        if values is None:
            return [] if default is None else default
        return list(values)

    def __repr__(self) -> str:
        return f"Headers({self.raw!r})"


class Query(Mapping[str, str]):
    """The query string as a read-only, multi-valued mapping.

    ``query["q"]`` and ``query.get("q")`` give the first value, :meth:`getall`
    every value in order; decoded as ``urllib.parse.parse_qs`` does with blank
    values kept (``+`` is a space, bad escapes stay as they are, UTF-8 errors
    become U+FFFD).
    """

    __slots__ = ("_index", "_pairs", "_string")

    def __init__(self, string: bytes) -> None:
        self._string = bytes(string)
        self._pairs: Optional[List[Tuple[str, str]]] = None
        self._index: Optional[dict[str, list[str]]] = None

    def _parsed(self) -> List[Tuple[str, str]]:
        pairs = self._pairs
        if pairs is None:
            from urllib.parse import parse_qsl  # only when a query is read: a heavy import

            # Targets are ASCII (llhttp refuses other bytes); decode like the compiled twin.
            text = self._string.decode("utf-8", "replace")
            pairs = self._pairs = parse_qsl(text, keep_blank_values=True)
        return pairs

    def _mapping(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = self._index = {}
            for name, value in self._parsed():
                index.setdefault(name, []).append(value)
        return index

    def __getitem__(self, name: str) -> str:
        return self._mapping()[name][0]

    def __contains__(self, name: object) -> bool:
        return name in self._mapping()

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def getall(self, name: str, default: Optional[List[str]] = None) -> List[str]:
        """Every value of *name*, in order (``default`` or ``[]`` if absent)."""
        values = self._mapping().get(name)
        if values is None:
            return [] if default is None else default
        return list(values)

    @property
    def pairs(self) -> List[Tuple[str, str]]:
        """Every ``(name, value)``, in order."""
        return list(self._parsed())

    def __repr__(self) -> str:
        return f"Query({self._string!r})"


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


# -- logic shared by both Request classes (this one and the compiled one) -----
#
# A request object exposes the fields these functions use: _conn, _chunks
# (None or a list), _buffered, _body, _body_done, _want_all, _expect, _waiter,
# _error. The core fills the body through _feed/_finish/_abort.


def trailers_of(req: Any) -> Headers:
    """The trailer fields of *req* (RFC 9110 §6.5), apart from its header fields."""
    if not req._body_done or req._error is not None:
        raise RuntimeError("trailers are known once the whole body has been read")
    return Headers(req._trailers or [])


def decode_path(raw_path: bytes) -> str:
    """The percent-decoded path of a request target, without the query."""
    raw = raw_path.partition(b"?")[0]
    if b"%" not in raw:
        return raw.decode("utf-8", "surrogateescape")
    from urllib.parse import unquote_to_bytes  # only when needed: a heavy import

    return unquote_to_bytes(raw).decode("utf-8", "surrogateescape")


async def _next_piece(req: Any) -> bool:
    """Wait for more body; False once it is complete."""
    if req._expect:
        req._expect = False
        req._conn._send_continue(req)
    while not req._chunks:
        if req._error is not None:
            raise req._error
        if req._body_done:
            return False
        req._conn._resume_body()
        req._waiter = asyncio.get_running_loop().create_future()
        await req._waiter
    return True


async def read_body(req: Any) -> bytes:
    """The whole body of *req* (read once, then cached)."""
    if req._body is None and req._body_done and req._error is None:
        # Already complete (the usual case: the handler runs once the message is in).
        req._body = req._release()
    if req._body is None:
        req._want_all = True
        parts: List[bytes] = []
        while await _next_piece(req):
            parts.append(req._release())
        req._body = b"".join(parts)
    return req._body  # type: ignore[no-any-return]


async def iter_body(req: Any) -> AsyncIterator[bytes]:
    """The body of *req* piece by piece as it arrives, with backpressure."""
    if req._body is not None:
        if req._body:
            yield req._body
        return
    while await _next_piece(req):
        yield req._release()


def wake(req: Any) -> None:
    """Resume a handler waiting for body."""
    waiter = req._waiter
    if waiter is not None:
        req._waiter = None
        if not waiter.done():
            waiter.set_result(None)


class Request:
    """One HTTP request as the handler sees it.

    Attributes: ``method`` (``"GET"``), ``raw_path`` (the request target as
    received, query included), ``http_version`` (``"1.1"``), ``keep_alive``
    (whether the client allows the connection to be reused). Everything else is
    computed on first use. This is the pure-Python class; the compiled core
    builds an equivalent compiled one.
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
        "_headers",
        "_is_head",
        "_is_http10",
        "_path",
        "_query",
        "_raw_headers",
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
        self._conn = conn
        self.method = method
        self.raw_path = raw_path
        self._raw_headers = raw_headers
        self.http_version = "1.0" if http10 else "1.1"
        self.keep_alive = keep_alive
        self._is_head = method == "HEAD"  # no body in the answer
        self._is_http10 = http10  # no chunked answers, explicit keep-alive
        self._headers: Optional[Headers] = None
        self._path: Optional[str] = None
        self._query: Optional[Query] = None
        self._cookies: Optional[dict[str, str]] = None
        self._chunks: Optional[List[bytes]] = None
        self._buffered = 0
        self._body: Optional[bytes] = None
        self._body_done = False
        self._want_all = False
        # 100-continue: False, nothing owed; True, owed once the handler reads
        # the body; None, asked for and waiting for this request's turn.
        self._expect: Optional[bool] = False
        self._waiter: Optional[asyncio.Future[None]] = None
        self._error: Optional[BaseException] = None
        self._trailers: Optional[RawHeaders] = None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.raw_path!r}>"

    @property
    def headers(self) -> Headers:
        """Request headers, decoded on first access."""
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers(self._raw_headers)
        return headers

    @property
    def trailers(self) -> Headers:
        """The trailer fields of a chunked body, once the body has been read whole."""
        return trailers_of(self)

    @property
    def path(self) -> str:
        """The percent-decoded path, without the query string."""
        path = self._path
        if path is None:
            path = self._path = decode_path(self.raw_path)
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
            query = self._query = Query(self.query_string)
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

    def body(self) -> Coroutine[Any, Any, bytes]:
        """The whole request body (``await request.body()``; read once, then cached)."""
        return read_body(self)

    def stream(self) -> AsyncIterator[bytes]:
        """``async for chunk in request.stream()``: the body as it arrives, with backpressure."""
        return iter_body(self)

    # -- the core's side --------------------------------------------------

    def _feed(self, data: bytes) -> bool:
        """Take a piece of body; True asks the core to stop reading for now."""
        if self._chunks is None:
            self._chunks = [data]
        else:
            self._chunks.append(data)
        self._buffered += len(data)
        wake(self)
        return self._buffered > BODY_HIGH_WATER and not self._want_all

    def _finish(self) -> None:
        self._body_done = True
        wake(self)

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
        return b"".join(chunks) if len(chunks) > 1 else chunks[0]

    def _abort(self, exc: BaseException) -> None:
        if not self._body_done:
            self._error = exc
            wake(self)


new_request = Request
"""How the protocol makes a request (its compiled twin is ``_request.new_request``)."""
