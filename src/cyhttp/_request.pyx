# cython: language_level=3
"""The compiled ``Request`` (the pure-Python class is ``cyhttp.request.Request``).

The protocol creates these through ``new_request`` without running ``__init__``,
and feeds the body through the C methods ``_feed``/``_finish``/``_abort``; the
body logic for handlers that wait is shared with the pure class through
``cyhttp.request``.
"""

cimport cython
from cpython.bytes cimport PyBytes_GET_SIZE

from ._fields cimport decode_path, new_headers, new_query

from .request import BODY_HIGH_WATER, iter_body, parse_cookies, read_body, trailers_of, wake

cdef str GET = "GET"  # the scanner's and method_name's string: a first check by identity
cdef Py_ssize_t HIGH_WATER = BODY_HIGH_WATER  # compared in C


@cython.freelist(64)
cdef class Request:
    """One HTTP request as the handler sees it (compiled twin of ``cyhttp.request.Request``).

    Attributes: ``method``, ``raw_path``, ``http_version``, ``keep_alive``;
    ``headers``, ``path``, ``query_string`` and ``client`` are computed on
    first use; ``await request.body()`` and ``async for chunk in
    request.stream()`` read the body. The core creates these without running
    ``__init__`` (see ``new_request``); the body logic is shared with the
    pure-Python class through ``cyhttp.request``.
    """

    def __init__(self, conn, str method, bytes raw_path, list raw_headers, bint http10,
                 bint keep_alive):
        _init_request(self, conn, method, raw_path, raw_headers, http10, keep_alive)

    def __repr__(self):
        return f"<Request {self.method} {self.raw_path!r}>"

    @property
    def headers(self):
        """Request headers: lookups read the received lines in place (``cyhttp._fields``)."""
        if self._headers is None:
            self._headers = new_headers(self._fields)
        return self._headers

    @property
    def trailers(self):
        """The trailer fields of a chunked body, once the body has been read whole."""
        return trailers_of(self)

    @property
    def path(self):
        """The percent-decoded path, without the query string."""
        if self._path is None:
            self._path = decode_path(self.raw_path)
        return self._path

    @property
    def query(self):
        """The parsed query string (a read-only, multi-valued mapping), parsed on first use."""
        if self._query is None:
            self._query = new_query(self.raw_path)
        return self._query

    @property
    def cookies(self):
        """The request's cookies by name, parsed on first use."""
        if self._cookies is None:
            self._cookies = parse_cookies(self.headers.getall("cookie"))
        return self._cookies

    @property
    def query_string(self):
        """Everything after the first ``?`` of the target, still encoded."""
        return self.raw_path.partition(b"?")[2]

    @property
    def client(self):
        """``(host, port)`` of the peer, or ``None`` for a non-IP socket."""
        return self._conn.client

    @property
    def scheme(self):
        """``"https"`` when the connection is TLS, else ``"http"``."""
        return self._conn.scheme

    async def body(self):
        """The whole request body (``await request.body()``; read once, then cached)."""
        if self._body is None and self._body_done and self._error is None:
            # The usual case, handled in C: the message was complete before the handler ran.
            self._body = self._release()
            return self._body
        return await read_body(self)

    def stream(self):
        """``async for chunk in request.stream()``: the body as it arrives, with backpressure."""
        return iter_body(self)

    # -- the core's side (C calls) ----------------------------------------

    cdef bint _feed(self, bytes data) except -1:
        """Take a piece of body; True asks the core to stop reading for now."""
        if self._chunks is None:
            self._chunks = [data]
        else:
            self._chunks.append(data)
        self._buffered += PyBytes_GET_SIZE(data)
        if self._waiter is not None:
            wake(self)
        return self._buffered > HIGH_WATER and not self._want_all

    cdef _finish(self):
        self._body_done = True
        if self._waiter is not None:
            wake(self)

    cpdef bytes _release(self):
        """Hand over the body buffered so far (``b""`` if none) and forget it.

        Taken by the handler or dropped once the answer is complete, either way: a body
        that had paused reading (``_feed``) no longer holds the connection's input back.
        """
        cdef list chunks = self._chunks
        if chunks is None:
            return b""
        self._chunks = None
        if self._buffered > HIGH_WATER:
            self._conn._resume_body()
        self._buffered = 0
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    cdef _abort(self, exc):
        if not self._body_done:
            self._error = exc
            wake(self)


cdef inline void _init_request(Request req, conn, str method, bytes raw_path, fields,
                               bint http10, bint keep_alive) noexcept:
    req._conn = conn
    req.method = method
    req.raw_path = raw_path
    req._fields = fields
    req.http_version = "1.0" if http10 else "1.1"
    req.keep_alive = keep_alive
    req._expect = False
    req._is_head = method is not GET and method == "HEAD"
    req._is_http10 = http10


cdef Request new_request(conn, str method, bytes raw_path, fields, bint http10,
                         bint keep_alive):
    # Skips __init__'s argument parsing; the freelist makes the allocation cheap.
    cdef Request req = Request.__new__(Request)
    _init_request(req, conn, method, raw_path, fields, http10, keep_alive)
    return req
