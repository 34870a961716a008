# cython: language_level=3
"""Compiled core: the HTTP/1.1 connection protocol.

This is the hot path; ``_core_py.py`` is its pure-Python twin and the readable
reference, and its module docstring holds the theory of operation, which this
module follows method for method (the same names, the same states, the same
answers: the tests run against both). What differs is how it is paid for:

* connection state lives in typed C fields of a ``cdef class``;
* plain request heads are read by the C scanner in ``_head`` straight from the
  read buffer, with no parser callbacks; whatever it does not accept, and every
  read after it, goes to httptools until httptools is between messages again,
  so httptools still decides every case that is not plain;
* responses are serialized into a malloc'ed buffer (status lines from a table,
  the Date/Server block cached per second with C ``time()``, Content-Length
  formatted without Python strings) and leave in one ``transport.write`` per read;
* the eager first step of a coroutine handler uses ``PyIter_Send``, so a
  handler that returns without suspending costs no StopIteration object and no Task;
* each handler runs in a fresh ``contextvars`` context entered through the C API.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF
from libc.string cimport memcpy
from libc.time cimport time, time_t

from ._fields cimport decode_path, new_headers, new_query
from ._response cimport Response, StreamingResponse
from ._head cimport Head, scan

import asyncio
from collections import deque
from functools import partial
from types import CoroutineType, MemberDescriptorType

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserInvalidMethodError,
    HttpParserUpgrade,
    HttpRequestParser,
)

from . import _runner, _strict, _wire
from ._frames import Frames
from ._wire import Reject
from .request import BODY_HIGH_WATER, ClientDisconnected, iter_body, parse_cookies, read_body
from .request import trailers_of, wake
from .response import Response as PyResponse
from .response import StreamingResponse as PyStreamingResponse
from .response import SwitchProtocols, fields, invalid_field

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member
    object PyContext_CopyCurrent()
    int PyContext_Enter(object ctx) except -1
    int PyContext_Exit(object ctx) except -1
    # Returns -1 (exception set), 0 (returned, *presult = value) or 1 (yielded).
    int PyIter_Send(object iter, object arg, PyObject** presult) except -1
    long PyLong_AsLongAndOverflow(object value, int* overflow) noexcept

cdef enum:
    PAUSE_WRITE = 1
    PAUSE_BODY = 2
    PAUSE_PIPELINE = 4
    PAUSE_UPGRADE = 8       # what follows a protocol-switch head belongs to the next protocol
    # The lifecycle (see _core_py's docstring); a connection only moves forward through it.
    OPEN = 0
    LAST = 1
    CLOSING = 2
    LINGERING = 3
    GONE = 4
    OUT_MIN = 4096          # first allocation of the output buffer
    OUT_KEEP = 16384        # larger buffers are released after a flush
    LARGE_BODY = 16384      # bodies this large bypass the buffer
    # Most a head adds to the response's own bytes: Content-Length (16 + 20
    # digits + 2) and the longest ending, "Connection: keep-alive" (26).
    HEAD_EXTRA = 64
    # The request line and line ends a head holds beyond what max_url_size and
    # max_header_size count (name + value + 4 per field).
    STALL_SLACK = 1024
    FLAG_MASK = 15          # every FLAG_* bit of _wire

cdef int WRITE_HIGH_WATER = 256 * 1024
cdef int WRITE_LOW_WATER = 64 * 1024

cdef int FLAG_CONTENT_LENGTH = _wire.FLAG_CONTENT_LENGTH
cdef int FLAG_CLOSE = _wire.FLAG_CLOSE
cdef int FLAG_DATE = _wire.FLAG_DATE
cdef int FLAG_SERVER = _wire.FLAG_SERVER

cdef bytes CONTINUE = _wire.CONTINUE
cdef list STATUS_LINES = [_wire.STATUS_LINES.get(code) for code in range(600)]
cdef Py_ssize_t SERVER_LINE = len(_wire.format_date_block(0).partition(b"\r\n")[0]) + 2
# In the order of _head's METHOD_* indexes.
cdef tuple METHOD_NAMES = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
cdef str GET = METHOD_NAMES[0]
cdef dict METHODS = {m.encode(): m for m in METHOD_NAMES}
# The compiled classes, then the pure ones (which this core serves too, more slowly).
cdef tuple RESPONSE_TYPES = (
    Response, StreamingResponse, PyResponse, PyStreamingResponse, SwitchProtocols
)
cdef tuple STREAMING_TYPES = (StreamingResponse, PyStreamingResponse)

cdef inline bint _is_response(obj):
    # Exact types first: isinstance() against a tuple takes a slow path for misses.
    cdef type kind = type(obj)
    return kind is Response or kind is StreamingResponse or isinstance(obj, RESPONSE_TYPES)


cdef inline bint _is_streaming(obj):
    return type(obj) is StreamingResponse or isinstance(obj, STREAMING_TYPES)


cdef Py_ssize_t _slot_offset(str name) except -1:
    """Where pure ``Response`` instances keep the ``__slots__`` field *name*."""
    descr = PyResponse.__dict__[name]
    if type(descr) is not MemberDescriptorType:
        raise TypeError(f"Response.{name} is not a slot")
    return (<PyMemberDescrObject*><PyObject*>descr).d_member.offset


# Reading a Response field through its descriptor costs ~100 instructions (type
# lookup along the MRO, then the descriptor call); the core reads them in place.
# Subclasses keep the base class's slots at the same offsets.
cdef Py_ssize_t STATUS_SLOT = _slot_offset("_status")
cdef Py_ssize_t FLAGS_SLOT = _slot_offset("_flags")
cdef Py_ssize_t HEAD_SLOT = _slot_offset("_head")
cdef Py_ssize_t BODY_SLOT = _slot_offset("_body")


cdef inline object _field(response, Py_ssize_t offset):
    """The slot at *offset* of a pure ``Response`` (or subclass) instance; None if unset."""
    cdef PyObject* value = (<PyObject**>(<char*><PyObject*>response + offset))[0]
    if value == NULL:
        return None
    return <object>value


cdef inline int _small_int(value, int high) noexcept:
    """*value* if it is an ``int`` from 0 to *high*, else -1 (no exception, no overflow)."""
    cdef int overflow
    cdef long number
    if type(value) is not int:
        return -1
    number = PyLong_AsLongAndOverflow(value, &overflow)  # cannot fail on an exact int
    if overflow or number < 0 or number > high:
        return -1
    return <int>number


cdef inline bint _is_name(bytes name, bytes lower):
    """Whether header *name* equals *lower* ignoring ASCII case (lengths already match)."""
    cdef const unsigned char* a = <const unsigned char*>PyBytes_AS_STRING(name)
    cdef const unsigned char* b = <const unsigned char*>PyBytes_AS_STRING(lower)
    cdef Py_ssize_t i
    for i in range(PyBytes_GET_SIZE(lower)):
        if (a[i] | 0x20) != b[i]:  # exact for letters and '-'; names are tokens (llhttp)
            return False
    return True


cdef inline str _method_name(bytes method):
    # get_method() returns a new bytes object each time, so a dict lookup would hash it.
    cdef Py_ssize_t size = PyBytes_GET_SIZE(method)
    if size == 3 and method == b"GET":
        return "GET"
    if size == 4:
        if method == b"POST":
            return "POST"
        if method == b"HEAD":
            return "HEAD"
    name = METHODS.get(method)
    return name if name is not None else method.decode("ascii")


cdef time_t _date_second = -1
cdef bytes _date_block = b""


cdef bytes date_block():
    """The Server/Date lines, re-formatted only when the second changes."""
    global _date_second, _date_block
    cdef time_t now = time(NULL)
    if now != _date_second:
        _date_second = now
        _date_block = _wire.format_date_block(now)
    return _date_block


@cython.freelist(64)
cdef class Request:
    """One HTTP request as the handler sees it (compiled twin of ``cyhttp.request.Request``).

    Attributes: ``method``, ``raw_path``, ``http_version``, ``keep_alive``;
    ``headers``, ``path``, ``query_string`` and ``client`` are computed on
    first use; ``await request.body()`` and ``async for chunk in
    request.stream()`` read the body. The core creates these without running
    ``__init__`` (see ``_new_request``); the body logic is shared with the
    pure-Python class through ``cyhttp.request``.
    """

    cdef readonly str method
    cdef readonly bytes raw_path
    cdef readonly str http_version
    cdef readonly bint keep_alive
    cdef object _fields         # (name, value) pairs; the scanner's field lines (bytes) until used
    cdef bint _is_head          # method is HEAD: no body in the answer
    cdef bint _is_http10        # no chunked answers, explicit keep-alive
    cdef object _headers
    cdef object _path
    cdef object _query
    cdef object _cookies
    # Read and written by the shared body functions in cyhttp.request.
    cdef public object _conn
    cdef public object _chunks
    cdef public Py_ssize_t _buffered
    cdef public object _body
    cdef public bint _body_done
    cdef public bint _want_all
    cdef public object _expect
    cdef public object _waiter
    cdef public object _error
    cdef public object _trailers

    def __init__(self, conn, str method, bytes raw_path, list raw_headers, str http_version,
                 bint keep_alive):
        _init_request(self, conn, method, raw_path, raw_headers, http_version == "1.0",
                      keep_alive)

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

    async def body(self):
        """The whole request body (``await request.body()``; read once, then cached)."""
        cdef list chunks
        if self._body is None and self._body_done and self._error is None:
            # The usual case, handled in C: the message was complete before the handler ran.
            chunks = self._chunks
            if chunks is None:
                self._body = b""
            elif len(chunks) == 1:
                self._body = chunks[0]
            else:
                self._body = b"".join(chunks)
            self._chunks = None
            self._buffered = 0
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
        return self._buffered > BODY_HIGH_WATER and not self._want_all

    cdef _finish(self):
        self._body_done = True
        if self._waiter is not None:
            wake(self)

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


cdef inline Request _new_request(conn, str method, bytes raw_path, fields, bint http10,
                                 bint keep_alive):
    # Skips __init__'s argument parsing; the freelist makes the allocation cheap.
    cdef Request req = Request.__new__(Request)
    _init_request(req, conn, method, raw_path, fields, http10, keep_alive)
    return req


@cython.final
@cython.freelist(16)
cdef class _Slot:
    """A request whose answer is not on the wire yet (only created when one must wait)."""
    cdef Request request    # None for an error answer of the server's own
    cdef object response    # Response, StreamingResponse, error bytes, or None
    cdef object task
    cdef bint deferred      # the handler has not been called yet

    def __cinit__(self, request, response):
        self.request = request
        self.response = response


cdef class _Connection:
    """State and logic of one connection; ``HttpProtocol`` adds the asyncio base class."""

    cdef Py_ssize_t _max_url
    cdef Py_ssize_t _max_head
    cdef Py_ssize_t _max_headers
    cdef Py_ssize_t _max_body
    cdef Py_ssize_t _idle_limit
    cdef Py_ssize_t _head_limit
    cdef Py_ssize_t _body_limit
    cdef Py_ssize_t _write_limit

    cdef object _server
    cdef object _app
    cdef object _parser
    cdef object _transport
    cdef object _buffer
    cdef const unsigned char* _data  # the bytes of _buffer, for the head scanner
    cdef Py_ssize_t _data_size
    cdef public object client

    cdef char* _out
    cdef Py_ssize_t _out_len
    cdef Py_ssize_t _out_cap

    cdef object _frames         # request-line positions for the httptools path (_frames.py)
    cdef bytes _url
    cdef list _headers
    cdef object _trailers
    cdef bint _expect
    cdef bint _in_head          # a request has begun and its head is not complete
    cdef bint _advanced         # this read completed a head or a message, or brought body
    cdef Py_ssize_t _stalled    # bytes of reads in a message that did not advance it
    cdef Py_ssize_t _stall_limit
    cdef Py_ssize_t _head_size
    cdef list _hosts            # Host values
    cdef list _codings          # Transfer-Encoding values
    cdef bint _keep_option      # a Connection field asked for keep-alive
    cdef unsigned long long _content_length  # llhttp refuses more than 64 bits
    cdef long long _body_size
    cdef bint _body_progress
    # httptools has begun a message it has not completed; between messages it holds
    # nothing, so heads go to the scanner first.
    cdef bint _in_message
    cdef bint _followed         # the last read ended in httptools (and _frames may hold bytes)
    cdef unsigned long long _scanned_left  # body bytes still due to a scanned request
    cdef Request _req
    cdef Request _upgrade       # the request that asked to switch protocols
    cdef bytes _tail            # what the client sent after that request's head
    cdef bint _dispatched
    cdef object _pending
    cdef bint _in_read
    cdef int _state             # the lifecycle: OPEN, LAST, CLOSING, LINGERING, GONE
    cdef bint _serializing      # inside serialize(): no I/O
    cdef bint _half_close           # close by half-closing and draining input (see _close)
    cdef Py_ssize_t _linger_ticks  # sweeps spent lingering
    cdef Py_ssize_t _linger_limit
    cdef int _paused
    cdef int _max_pipeline
    cdef bint _write_paused
    cdef object _room_waiter
    cdef object _stream_task
    cdef Py_ssize_t _requests
    cdef Py_ssize_t _seen
    cdef Py_ssize_t _idle
    cdef Py_ssize_t _head_ticks
    cdef Py_ssize_t _body_ticks
    cdef Py_ssize_t _write_ticks

    def __init__(self, server):
        self._server = server
        self._app = server.app
        cfg = server.config
        self._max_pipeline = cfg.max_pipelined
        self._max_url = cfg.max_url_size
        self._max_head = cfg.max_header_size
        self._max_headers = cfg.max_headers
        self._max_body = cfg.max_body_size
        (
            self._idle_limit,
            self._head_limit,
            self._body_limit,
            self._write_limit,
            self._linger_limit,
        ) = server.sweeps
        self._buffer = server.read_buffer
        cdef Py_buffer view
        PyObject_GetBuffer(self._buffer, &view, PyBUF_SIMPLE)
        self._data = <const unsigned char*>view.buf  # stays valid: _buffer holds the export
        self._data_size = view.len
        PyBuffer_Release(&view)
        self._parser = HttpRequestParser(self)
        self._frames = Frames()
        self._stall_limit = self._max_url + self._max_head + STALL_SLACK
        self._url = b""
        self._headers = []
        self._hosts = []
        self._codings = []
        self._pending = deque()
        self._tail = b""

    def __dealloc__(self):
        PyMem_Free(self._out)

    # -- asyncio callbacks ---------------------------------------------------

    def connection_made(self, transport):
        self._transport = transport
        if not self._server.track(self):
            self._to(CLOSING)
            transport.close()
            return
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.client = (peer[0], peer[1])
        transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)

    def connection_lost(self, exc):
        self._transport = None
        self._state = GONE
        self._parser = None  # it holds bound methods of ours: break the cycle
        self._out_len = 0
        self._upgrade, self._tail = None, b""
        gone = ClientDisconnected("client disconnected")
        if self._req is not None:
            self._req._abort(gone)
            self._req = None
        cdef _Slot slot
        # Nobody is left to read these answers: stop the work behind them.
        for slot in self._pending:
            if slot.request is not None:
                slot.request._abort(gone)
            if slot.task is not None:
                _runner.abandon(slot.task)
        self._pending.clear()
        if self._stream_task is not None:
            self._stream_task.cancel()
        waiter = self._room_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(gone)
        self._server.forget(self)

    def get_buffer(self, Py_ssize_t sizehint):
        return self._buffer

    def buffer_updated(self, Py_ssize_t nbytes):
        if nbytes < 0 or nbytes > self._data_size:
            # The event loop never does this; the scanner reads _data in C, so make sure.
            raise ValueError(f"buffer_updated({nbytes}) outside a {self._data_size}-byte buffer")
        if self._upgrade is not None and self._state < CLOSING:
            self._tail += self._buffer[:nbytes]  # a read already under way when reading paused
            return
        if self._state >= CLOSING or (self._state == LAST and self._req is None):
            # Nothing new is accepted (RFC 9112 §9.6: not even after the client's last
            # request); the input is dropped, and drained while closing so that it does
            # not turn the close into a reset.
            self._half_close = True
            return
        self._in_read = True
        cdef Py_ssize_t done = 0
        cdef bint boundary = not self._in_message and (
            not self._followed or self._frames.at_boundary()
        )
        if boundary:
            done = self._scan(nbytes)
        self._followed = done < nbytes
        if self._followed:
            if boundary:
                self._frames.restart()  # httptools starts at a message boundary
            data = self._buffer[done:nbytes]
            self._frames.begin(self._buffer.obj, done, nbytes)
            try:
                self._parser.feed_data(data)
                self._frames.end()
            except HttpParserUpgrade as exc:
                self._upgrading(bytes(self._buffer[done + exc.args[0]:nbytes]))
            except HttpParserCallbackError as exc:
                self._callback_failed(exc)
            except HttpParserError as exc:
                self._refused(exc)
        self._guard_stall(nbytes)
        if self._req is not None and not self._dispatched:
            self._dispatch(self._req)  # the body is still coming: let the handler stream it
        self._in_read = False
        if self._upgrade is not None:
            self._send_ready()  # a switch the handler decided during this read happens now
        else:
            self._flush()

    def pause_writing(self):
        self._write_paused = True
        self._pause(PAUSE_WRITE)

    def resume_writing(self):
        self._write_paused = False
        waiter = self._room_waiter
        if waiter is not None:
            self._room_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        self._unpause(PAUSE_WRITE)
        if self._pending and self._transport is not None:
            self._send_ready()  # backlogged requests may run now

    # -- the head scanner ----------------------------------------------------

    cdef Py_ssize_t _scan(self, Py_ssize_t nbytes) except -1:
        """Answer the plain requests at the start of this read (see ``_head``).

        Returns how far it got: httptools takes the rest, from a message boundary.
        """
        cdef const unsigned char* data = self._data
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t size
        cdef Head head
        if self._scanned_left:
            pos = self._scanned_body(data, nbytes)
            if self._scanned_left:
                return pos
            self._message_done()
        while pos < nbytes and self._state == OPEN:
            size = scan(data + pos, nbytes - pos, &head)
            if size == 0 or not self._plain(&head):
                break
            self._body_size = self._body_ticks = 0
            self._body_progress = False
            self._open(
                <str>METHOD_NAMES[head.method],
                PyBytes_FromStringAndSize(<const char*>data + pos + head.target, head.target_len),
                # Only the bytes: the pairs are made if the handler looks at the headers.
                PyBytes_FromStringAndSize(<const char*>data + pos + head.lines,
                                          size - 2 - head.lines),
                head.http10,
                True,
                head.expect,
            )
            pos += size
            if head.length:
                self._scanned_left = head.length
                pos += self._scanned_body(data + pos, nbytes - pos)
                if self._scanned_left:
                    break  # the rest of the body comes in later reads
            self._message_done()
        return pos

    cdef bint _plain(self, Head* head) noexcept:
        """Whether the scanned head is within every limit and needs no special handling."""
        return (
            head.target_len <= self._max_url
            and head.field_bytes <= self._max_head
            and head.fields <= self._max_headers
            and head.length <= <unsigned long long>self._max_body
            # Requests that end the connection and Host errors take httptools' path.
            and (head.keep_alive if head.http10 else not head.close)
            and (head.hosts == 1 or (head.hosts == 0 and head.http10))
        )

    cdef Py_ssize_t _scanned_body(self, const unsigned char* data, Py_ssize_t size) except -1:
        """Take what is here of the body due to a scanned request; how much that was."""
        if <unsigned long long>size > self._scanned_left:
            size = self._scanned_left
        if size:
            self._scanned_left -= size
            self._body(PyBytes_FromStringAndSize(<const char*>data, size))
        return size

    # -- parser callbacks ----------------------------------------------------

    def on_message_begin(self):
        self._in_message = True

    def on_url(self, bytes url not None):
        if self._url:
            self._url += url
        else:
            # A request's head starts here for the timeouts and the stall guard
            # (cheaper than one more callback; before this the idle sweep applies).
            self._url = url
            self._in_head = True
            self._head_ticks = 0
        if PyBytes_GET_SIZE(self._url) > self._max_url:
            raise Reject(414)

    def on_header(self, bytes name not None, bytes value not None):
        cdef Py_ssize_t size = PyBytes_GET_SIZE(value)
        if size and (PyBytes_AS_STRING(value)[size - 1] == b" "
                     or PyBytes_AS_STRING(value)[size - 1] == b"\t"):
            value = value.rstrip(b" \t")  # llhttp keeps it; a field value has none (RFC 9110 §5.5)
        if not self._in_head:
            # After the head, httptools reports the trailer section's fields the same way.
            self._on_trailer(name, value)
            return
        size = PyBytes_GET_SIZE(name)
        self._headers.append((name, value))
        self._head_size += size + PyBytes_GET_SIZE(value) + 4
        if self._head_size > self._max_head or len(self._headers) > self._max_headers:
            raise Reject(431)
        # Only the few headers the core acts on are looked at, by length first.
        if size == 4:
            if _is_name(name, b"host"):
                self._hosts.append(value)
        elif size == 6:
            if _is_name(name, b"expect"):
                self._expect = value.lower() == b"100-continue"
        elif size == 10:
            if _is_name(name, b"connection") and _strict.asks_keep_alive(value):
                self._keep_option = True
        elif size == 14:
            if _is_name(name, b"content-length"):
                self._content_length = int(value)  # llhttp has checked the digits
        elif size == 17 and _is_name(name, b"transfer-encoding"):
            self._codings.append(value)

    cdef _on_trailer(self, bytes name, bytes value):
        # Never part of the header section (RFC 9110 §6.5): kept apart for request.trailers,
        # within the same limits as a head (the count restarted when the head completed).
        if self._trailers is None:
            self._trailers = []
        self._trailers.append((name, value))
        self._head_size += PyBytes_GET_SIZE(name) + PyBytes_GET_SIZE(value) + 4
        if self._head_size > self._max_head or len(self._trailers) > self._max_headers:
            raise Reject(431)
        if name.lower() in _strict.FORBIDDEN_TRAILERS:
            raise Reject(400)

    def on_headers_complete(self):
        url = self._url
        headers = self._headers
        hosts = self._hosts
        codings = self._codings
        cdef bint expect = self._expect
        cdef bint keep_option = self._keep_option
        cdef unsigned long long length = self._content_length
        self._url = b""
        self._headers = []
        self._hosts = []
        self._codings = []
        self._trailers = None
        self._expect = self._in_head = self._body_progress = self._keep_option = False
        self._head_size = self._content_length = self._body_size = 0
        self._body_ticks = 0
        self._advanced = True
        line = self._frames.head()
        if self._state != OPEN:
            self._frames.stop()
            return  # closing or shutting down: requests that start now are not answered
        parser = self._parser
        # From the request line, whatever the fields say.
        cdef str version = parser.get_http_version()
        cdef str method = _method_name(parser.get_method())
        cdef bint upgrade = parser.should_upgrade()
        cdef int status = _strict.head_error(
            line, method, url, version, hosts, codings, upgrade, length
        )
        if status:
            raise Reject(status)
        if length > self._max_body:
            raise Reject(413)  # refused before a byte of the body is read
        self._frames.body(length, bool(codings))
        # llhttp keeps HTTP/1.0 alive for Proxy-Connection too; only Connection counts.
        # A protocol switch is the connection's last request, whatever the handler says.
        cdef bint keep_alive = (
            parser.should_keep_alive()
            and (version == "1.1" or keep_option)
            and not upgrade
        )
        self._open(method, url, headers, version == "1.0", keep_alive, expect)
        if upgrade:
            self._upgrade = self._req

    def on_body(self, bytes body not None):
        if self._body_size + PyBytes_GET_SIZE(body) > self._max_body:
            raise Reject(413)  # a chunked body ran over
        self._body(body)

    def on_message_complete(self):
        self._in_message = False
        self._message_done()

    cdef _refused(self, exc):
        """httptools refused the input."""
        if self._state >= LAST:
            # Bytes after the client's last request (RFC 9112 §9.6): not answered, but
            # drained while closing, so that they do not turn the close into a reset.
            self._half_close = True
        else:
            invalid_method = isinstance(exc, HttpParserInvalidMethodError)
            self._fail(_strict.parse_error(invalid_method, self._frames.pending()))
        self._frames.stop()

    cdef _guard_stall(self, Py_ssize_t nbytes):
        """Bound what httptools may hold of an unfinished head or trailer section."""
        # httptools keeps a field's pieces until the field is whole, and nothing else
        # bounds a read that brings neither a whole head, nor body, nor a message's end.
        if self._advanced:
            self._advanced = False
            self._stalled = 0
        elif self._in_head or self._req is not None:
            self._stalled += nbytes
            if self._stalled > self._stall_limit:
                self._fail(431)

    # -- one request, whichever parser read it -------------------------------

    cdef _open(self, str method, bytes url, headers, bint http10, bint keep_alive, bint expect):
        """A complete, acceptable head: it becomes the current request."""
        req = _new_request(self, method, url, headers, http10, keep_alive)
        if expect:
            req._expect = True
        self._advanced = True
        self._req = req
        self._dispatched = False
        self._requests += 1

    cdef _body(self, bytes body):
        self._body_size += PyBytes_GET_SIZE(body)
        self._body_progress = self._advanced = True
        if self._req is not None and self._req._feed(body):
            self._pause(PAUSE_BODY)

    cdef _message_done(self):
        cdef Request req = self._req
        self._advanced = True
        if req is None:
            self._trailers = None
            return
        self._req = None
        if not req.keep_alive:
            self._to(LAST)  # the client's last request: nothing after it is processed
        if self._trailers is not None:  # only httptools reports trailers
            req._trailers = self._trailers
            self._trailers = None
        req._finish()
        if not self._dispatched:
            self._dispatch(req)

    # -- handlers and responses ----------------------------------------------

    cdef _dispatch(self, Request req):
        cdef _Slot slot
        self._dispatched = True
        if self._write_paused or len(self._pending) >= self._max_pipeline:
            # Backlogged: keep the request, run its handler when the queue drains.
            slot = _Slot(req, None)
            slot.deferred = True
            self._enqueue(slot)
            return
        result = self._call(req)
        if not self._pending and type(result) is Response:
            self._respond(req, result, True)
            if self._out_len > WRITE_HIGH_WATER:
                self._flush()  # let the transport's flow control see it before the next one
            return
        slot = _Slot(req, None)
        self._enqueue(slot)
        self._settle(slot, result)
        self._send_ready()

    cdef _call(self, Request req):
        """Run the handler, its first step eagerly: the response, or the Task finishing it."""
        cdef PyObject* step = NULL
        cdef int state
        ctx = PyContext_CopyCurrent()
        try:
            PyContext_Enter(ctx)
            try:
                result = self._app(req)
                if type(result) is CoroutineType:
                    it = result
                elif _is_response(result):
                    return result
                else:
                    it = _runner.awaitable(result)
                state = PyIter_Send(it, None, &step)
                value = <object>step
                Py_XDECREF(step)
                if state == 0:
                    if _is_response(value):
                        return value
                    return _runner.checked(value, req)
                return _runner.start_task(it, value, ctx)
            finally:
                PyContext_Exit(ctx)
        except Exception as exc:
            return _runner.failed(req, exc)

    cdef _settle(self, _Slot slot, result):
        if _is_response(result):
            slot.response = result
        else:
            slot.task = result
            result.add_done_callback(partial(self._handler_done, slot))

    cdef _enqueue(self, _Slot slot):
        self._pending.append(slot)
        if len(self._pending) > self._max_pipeline:
            self._pause(PAUSE_PIPELINE)

    def _handler_done(self, _Slot slot, task):
        if self._transport is None or slot.response is not None:
            # The connection is gone, or the server answered in its place.
            _runner.discard(task, slot.request)
            return
        slot.response = _runner.outcome(task, slot.request)
        if self._pending and self._pending[0] is slot:
            self._send_ready()

    cdef _send_ready(self):
        """Write every ready response at the head of the queue, in order."""
        cdef _Slot slot
        pending = self._pending
        while pending and self._state < CLOSING and self._stream_task is None:
            slot = pending[0]
            if slot.deferred:
                if self._write_paused:
                    break
                slot.deferred = False
                self._settle(slot, self._call(slot.request))
            response = slot.response
            if response is None:
                req = slot.request
                if req is not None and req._expect is None:
                    self._continue(req)
                break
            if type(response) is SwitchProtocols:
                if slot.request is self._upgrade:
                    if self._in_read:
                        break  # the read that brought the head ends first: it holds the tail
                    pending.popleft()
                    self._switch(response)
                    return
                response = slot.response = _runner.not_asked(slot.request)
            if _is_streaming(response):
                self._respond(slot.request, response, len(pending) == 1)
                break  # the slot leaves the queue when the stream ends
            pending.popleft()
            if type(response) is bytes:
                self._write_bytes(response)
                self._to(CLOSING)
            else:
                self._respond(slot.request, response, not pending)
                if self._out_len > WRITE_HIGH_WATER:
                    self._flush()
        if self._paused & PAUSE_PIPELINE and len(pending) <= self._max_pipeline // 2:
            self._unpause(PAUSE_PIPELINE)
        if not self._in_read:
            self._flush()

    cdef _upgrading(self, bytes tail):
        """The request just read asks to switch protocols: nothing after its head is HTTP.

        Its handler decides: ``SwitchProtocols`` hands the connection over (``_switch``),
        anything else is answered as the connection's last response.
        """
        self._to(LAST)
        self._tail = tail
        self._pause(PAUSE_UPGRADE)  # until the switch, or for good

    cdef _switch(self, switch):
        """Every earlier answer has left: answer 101 and give the connection away."""
        transport, tail = self._transport, self._tail
        self._write_bytes(switch.answer(date_block()))
        self._write_out()
        self.connection_lost(None)  # this protocol is done with the connection
        _runner.hand_over(transport, switch, tail)

    cdef _respond(self, Request req, response, bint last):
        """Serialize *response* to *req* into the output buffer (head of the line only)."""
        cdef int status
        cdef int flags
        cdef bytes head
        cdef bytes body = None
        cdef bint is_plain
        cdef Response plain
        cdef StreamingResponse streaming
        if type(response) is Response or isinstance(response, Response):
            # C fields, read-only and checked when built: nothing to check again but
            # whether __init__ ran.
            plain = <Response>response
            status = plain.status
            flags = plain._flags
            head = plain._head
            body = plain.body
            is_plain = True
        elif isinstance(response, StreamingResponse):
            streaming = <StreamingResponse>response
            status = streaming.status
            flags = streaming._flags
            head = streaming._head
            is_plain = False
        else:
            # A pure-Python response: a handler can reach its slots, skip __init__ or
            # subclass it, and nothing it does may crash the process.
            is_plain = isinstance(response, PyResponse)
            if is_plain:
                status_field = _field(response, STATUS_SLOT)
                flags_field = _field(response, FLAGS_SLOT)
                head_field = _field(response, HEAD_SLOT)
                body_field = _field(response, BODY_SLOT)
            else:
                status_field, flags_field, head_field, _ = fields(response)
                body_field = b""
            status = _small_int(status_field, 599)
            flags = _small_int(flags_field, FLAG_MASK)
            if type(head_field) is not bytes or type(body_field) is not bytes or flags < 0:
                status = 0
            else:
                head = <bytes>head_field
                if is_plain:
                    body = <bytes>body_field
        if status < 100:
            self._respond(req, _runner.unservable(req, invalid_field(response)), last)
            return
        cdef bint keep = (
            req.keep_alive
            and req._body_done
            and not flags & FLAG_CLOSE
            and not (self._state >= LAST and last and self._req is None)
        )
        cdef bint has_body = status >= 200 and status != 204 and status != 304
        cdef bint send_body = has_body and not req._is_head
        cdef bint chunked = False
        cdef bint inline_body = send_body and (
            PyBytes_GET_SIZE(body) < LARGE_BODY or self._serializing
        )
        cdef bytes line = <bytes>PyList_GET_ITEM(STATUS_LINES, status)
        cdef bytes block = date_block()
        # Room for the longest head this can be, so the pieces below need no checks.
        self._reserve(
            PyBytes_GET_SIZE(line) + PyBytes_GET_SIZE(block) + PyBytes_GET_SIZE(head)
            + HEAD_EXTRA + (PyBytes_GET_SIZE(body) if inline_body else 0)
        )
        self._put_bytes(line)
        if flags & (FLAG_DATE | FLAG_SERVER) == 0:
            self._put_bytes(block)
        elif flags & FLAG_SERVER and not flags & FLAG_DATE:
            self._put(PyBytes_AS_STRING(block) + SERVER_LINE, PyBytes_GET_SIZE(block) - SERVER_LINE)
        elif flags & FLAG_DATE and not flags & FLAG_SERVER:
            self._put(PyBytes_AS_STRING(block), SERVER_LINE)
        self._put_bytes(head)
        if is_plain:
            if has_body and not flags & FLAG_CONTENT_LENGTH:
                self._put(b"Content-Length: ", 16)
                self._put_int(PyBytes_GET_SIZE(body))
                self._put(b"\r\n", 2)
        else:
            chunked = has_body and not req._is_http10
            if chunked:
                self._put(b"Transfer-Encoding: chunked\r\n", 28)
            elif has_body:
                keep = False  # HTTP/1.0: the end of the body is the end of the connection
        if not keep:
            self._put(b"Connection: close\r\n\r\n", 21)
        elif req._is_http10:
            self._put(b"Connection: keep-alive\r\n\r\n", 26)
        else:
            self._put(b"\r\n", 2)
        if is_plain:
            if send_body:
                if inline_body:
                    self._put_bytes(body)
                else:
                    # Hand a large body over as it is: copying it into the buffer and
                    # then into a new bytes object would cost two copies and a malloc.
                    self._write_out()
                    self._transport.write(body)
            if not keep:
                self._to(CLOSING)
                self._half_close = self._half_close or not req._body_done
        else:
            task = asyncio.get_running_loop().create_task(
                _runner.stream_body(self, response, chunked, send_body)
            )
            self._stream_task = task
            task.add_done_callback(partial(self._stream_done, req, keep))

    def _stream_done(self, req, bint keep, task):
        self._stream_task = None
        if self._transport is None:
            return
        if not _runner.streamed(req, task):
            # The head is already out: the only honest signal left is closing.
            self._to(CLOSING)
            self._flush()
            return
        self._pending.popleft()
        if not keep:
            self._to(CLOSING)
        self._send_ready()

    cdef _callback_failed(self, exc):
        cause = exc.__context__
        if isinstance(cause, Reject):
            self._fail(cause.status)
        else:
            _runner.log.error("internal error in a parser callback", exc_info=cause or exc)
            self._fail(500)

    cdef _fail(self, int status):
        """The input is unusable: answer *status* in turn and close."""
        cdef _Slot slot
        cdef Request req
        self._to(LAST)
        self._in_head = False
        self._half_close = True  # the client may still be sending: let it read our answer
        req = self._req
        self._req = None
        err = _wire.error_response(status, date_block())
        if req is not None and self._dispatched:
            # The handler already has this request: answer in its place unless it has answered.
            req._abort(ClientDisconnected("malformed request body"))
            for slot in self._pending:
                if slot.request is req:
                    if slot.response is None:
                        slot.response = err  # _handler_done ignores the handler's result
                        slot.deferred = False
                        if slot.task is not None:
                            slot.task.cancel()
                        self._send_ready()
                    return
            self._to(CLOSING)  # its answer is already out
            return
        if self._pending:
            self._enqueue(_Slot(None, err))
        else:
            self._write_bytes(err)
            self._to(CLOSING)

    # -- the output buffer ---------------------------------------------------

    cdef int _reserve(self, Py_ssize_t size) except -1:
        """Make room for *size* more bytes, so that ``_put`` may follow."""
        cdef Py_ssize_t need = self._out_len + size
        cdef Py_ssize_t cap
        cdef char* grown
        if need > self._out_cap:
            cap = self._out_cap * 2 if self._out_cap else OUT_MIN
            while cap < need:
                cap *= 2
            grown = <char*>PyMem_Realloc(self._out, cap)
            if grown == NULL:
                raise MemoryError()
            self._out = grown
            self._out_cap = cap
        return 0

    cdef inline void _put(self, const char* data, Py_ssize_t size) noexcept:
        memcpy(self._out + self._out_len, data, size)
        self._out_len += size

    cdef inline void _put_bytes(self, bytes data) noexcept:
        self._put(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))

    cdef inline void _put_int(self, Py_ssize_t value) noexcept:
        cdef char digits[24]
        cdef int pos = 24
        while True:
            pos -= 1
            digits[pos] = <char>(48 + value % 10)
            value //= 10
            if value == 0:
                break
        self._put(digits + pos, 24 - pos)

    cdef int _write(self, const char* data, Py_ssize_t size) except -1:
        self._reserve(size)
        self._put(data, size)
        return 0

    cdef inline int _write_bytes(self, bytes data) except -1:
        return self._write(PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))

    cdef _write_out(self):
        """Hand the buffered bytes to the transport."""
        if self._out_len:
            data = PyBytes_FromStringAndSize(self._out, self._out_len)
            self._out_len = 0
            if self._out_cap > OUT_KEEP:
                PyMem_Free(self._out)
                self._out = NULL
                self._out_cap = 0
            self._transport.write(data)

    cdef _flush(self):
        transport = self._transport
        if transport is None:
            return
        self._write_out()
        if self._state >= CLOSING or (
            self._state == LAST and not self._pending and self._req is None
        ):
            self._close(transport)

    cdef _close(self, transport):
        if not self._half_close:
            transport.close()
        elif self._state != LINGERING and transport.can_write_eof():
            # Closing outright while the client still sends would make the kernel
            # reset the connection and destroy our answer in flight (RFC 9112 §9.6).
            self._state = LINGERING
            self._linger_ticks = 0
            transport.write_eof()
            if self._paused:
                self._paused = 0
                transport.resume_reading()
        elif self._state != LINGERING:
            transport.close()

    cdef inline void _to(self, int state) noexcept:
        """Move the lifecycle forward to *state* (never back)."""
        if self._state < state:
            self._state = state

    cdef _pause(self, int reason):
        if not self._paused and self._transport is not None:
            self._transport.pause_reading()
        self._paused |= reason

    cdef _unpause(self, int reason):
        if self._paused & reason:
            self._paused &= ~reason
            if not self._paused and self._transport is not None:
                self._transport.resume_reading()

    cdef _continue(self, Request req):
        req._expect = False
        if not req._body_done and self._state < CLOSING:
            self._write_bytes(CONTINUE)

    # -- what Request and the shared slow paths call -------------------------

    def _send_continue(self, req):
        if self._pending and (<_Slot>self._pending[0]).request is not req:
            req._expect = None  # owed: _send_ready sends it when this request's turn comes
            return
        self._continue(req)
        if not self._in_read:
            self._flush()

    def _resume_body(self):
        self._unpause(PAUSE_BODY)

    def _send(self, bytes data not None):
        self._write_bytes(data)
        if not self._in_read:
            self._flush()

    def _write_room(self):
        if self._transport is None:
            raise ClientDisconnected("client disconnected")
        if not self._write_paused:
            return None
        if self._room_waiter is None:
            self._room_waiter = asyncio.get_running_loop().create_future()
        return self._room_waiter

    def serialize(self, response, str method="GET", str http_version="1.1",
                  bint keep_alive=True):
        """The exact bytes this connection would send for *response* (no I/O).

        For tests and benchmarks: the answer to a complete request of *method*
        and *http_version* from a client that does (or does not) keep alive.
        """
        if type(response) is not Response and type(response) is not PyResponse:
            raise TypeError("serialize takes a Response")
        cdef Request req = _new_request(self, method, b"/", [], http_version == "1.0", keep_alive)
        req._body_done = True
        cdef Py_ssize_t start = self._out_len
        cdef int state = self._state
        self._serializing = True  # keeps even a large body in the buffer
        try:
            self._respond(req, response, True)
            return PyBytes_FromStringAndSize(self._out + start, self._out_len - start)
        finally:
            self._out_len = start
            self._state = state
            self._serializing = False

    # -- what the server calls -----------------------------------------------

    def shutdown(self):
        """Accept no new request; close now if idle, else after the last answer."""
        self._to(LAST)
        if not self._in_read:
            self._flush()

    def tick(self):
        """Called once per sweep of the server: enforces every timeout of this connection."""
        transport = self._transport
        if transport is None:
            return
        if self._state == LINGERING:
            self._linger_ticks += 1
            if self._linger_ticks >= self._linger_limit:
                transport.close()
            return
        if self._write_paused:
            self._write_ticks += 1
            if self._write_ticks >= self._write_limit:
                transport.abort()  # the client stopped reading
            return
        self._write_ticks = 0
        if self._in_head:
            self._head_ticks += 1
            if self._head_ticks >= self._head_limit:
                self._expire()
        elif self._req is not None:
            if self._body_progress:
                self._body_progress = False
                self._body_ticks = 0
            else:
                self._body_ticks += 1
                if self._body_ticks >= self._body_limit:
                    self._expire()
        elif self._pending or self._requests != self._seen:
            self._seen = self._requests
            self._idle = 0
        else:
            self._idle += 1
            if self._idle >= self._idle_limit:
                self._to(CLOSING)
                self._flush()

    cdef _expire(self):
        self._fail(408)
        self._flush()

    def abort(self):
        """Drop the connection now (the shutdown timeout ran out)."""
        if self._transport is not None:
            self._transport.abort()


class HttpProtocol(_Connection, asyncio.BufferedProtocol):
    """An HTTP/1.1 server connection (compiled implementation).

    Inheriting ``asyncio.BufferedProtocol`` makes the stock asyncio loop read
    into our buffer as uvloop does; the state stays in the C fields above.
    """

    __slots__ = ()
