"""The HTTP/1.1 connection protocol: the one source of both cores.

Imported as is, this module is the pure-Python core. The build compiles it once
more as ``cyhttp._protocol_c`` (a copy made by ``setup.py``, typed by
``_protocol_c.pxd``: Cython's pure-Python mode), which is the compiled core. The
two differ only in the primitives they import (``_primitives.pyx`` in C,
``_primitives_py.py`` their twins) and in the ``Request`` class they make.

Theory of operation
-------------------
One ``HttpProtocol`` serves one connection. uvloop (or asyncio) reads straight
into a buffer the protocol owns (``get_buffer``/``buffer_updated``). The
protocol (``_Connection``) only takes the asyncio callbacks and the calls of
requests and the server; the work is done by four parts, one job each (final
classes: direct C calls between them in the compiled build):

* ``_Reader`` -- reading. At a message boundary each head is first offered to
  the ``Scanner``, which in the compiled build reads plain heads straight from
  the read buffer with no parser callbacks (``_head.pyx``; the pure scanner
  accepts nothing). Whatever it does not accept, and every read after it, is
  fed to an ``httptools.HttpRequestParser`` (the reader is its callback target)
  until httptools is between messages again, so httptools decides every case
  that is not plain; ``_frames`` follows the request lines it does not report.
  Either way a complete, acceptable head becomes the current request
  (``open``), within the limits, with the head and body timeouts' counters.
* ``_Queue`` -- the response queue. A request is *dispatched* to its handler
  when its message is complete, or, if its body is still arriving when a read
  ends, at the end of that read (so the handler can stream the body;
  ``Expect: 100-continue`` lands here too). A handler's coroutine is stepped
  once, eagerly (``call_handler``); if it finishes, no Task exists; only a
  coroutine that really suspends is finished inside a Task
  (``_stepping.resume``). Each handler runs in its own ``contextvars`` context.
  Responses go out strictly in request order: while nothing is waiting, a
  finished response is written straight away; otherwise each request gets a
  ``_Slot`` in ``pending`` and its answer is written as soon as it is ready
  (``send_ready``), with at most ``max_pipelined`` waiting. Unusable input is
  answered here too (``fail``: 400, 408, 413, 431, ...). A request that asks to
  switch protocols is the connection's last: if its handler returns
  ``SwitchProtocols``, once every earlier answer has left the connection is
  handed to the new protocol with the bytes read past the head (``switch``).
* ``_Writer`` -- writing. Answers are serialized into the output buffer
  (``respond``); everything produced during one read leaves in one
  ``transport.write`` at the end of that read (``flush``), but a body of
  16 KiB or more is handed over as it is, and the buffer is flushed early past
  the 256 KiB write high-water mark. It owns flow control: reading pauses for
  any of four reasons (a bit each in ``paused``): the transport asked us to
  stop writing, a streaming body reader fell behind, too many pipelined
  requests are waiting, or a protocol switch is pending.
* ``_Lifecycle`` -- the lifecycle, one state that only moves forward:
  ``OPEN`` (requests are taken), ``LAST`` (no new request: the client's last
  one, a parse error, a protocol switch, server shutdown; the answers still
  owed go out, then the connection closes), ``CLOSING`` (close once the output
  is flushed; nothing more is answered), ``LINGERING`` (half-closed after an
  answer the client may not have waited for: input is drained until the
  client closes or the linger timeout), ``GONE`` (the transport was lost or
  handed to another protocol). ``half_close`` says how to close: by lingering
  when the client may still be sending. The server's sweep calls ``tick``,
  which enforces every timeout; an idle connection's tick says how many sweeps
  it may be left alone for, and the sweep parks it until then, unless a read
  wakes it (``Server.wake``).
"""

from __future__ import annotations

import asyncio
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserInvalidMethodError,
    HttpParserUpgrade,
    HttpRequestParser,
)

from . import _connection_log, _handover, _outcomes, _streaming, _strict
from . import response as responses
from ._frames import Frames
from ._wire import (
    CONTINUE,
    FLAG_CLOSE,
    FLAG_CONTENT_LENGTH,
    FLAG_DATE,
    FLAG_SERVER,
    STATUS_LINES,
    Reject,
    declared_length,
    error_response,
    format_date_block,
)
from .request import ClientDisconnected
from .response import SwitchProtocols, invalid_field

if TYPE_CHECKING:  # Cython ships no types; its stand-in has them
    from . import _no_cython as cython
else:
    try:
        import cython
    except ImportError:  # Cython is needed only to build the compiled core
        from . import _no_cython as cython

# The primitives and the Request class: the compiled ones in the compiled build.
if cython.compiled:
    from cython.cimports.cyhttp import _primitives as native
    from cython.cimports.cyhttp import _request as requests
    from cython.cimports.cyhttp._response import Response
else:
    from . import _primitives_py as native
    from . import request as requests
    from .response import Response
if TYPE_CHECKING:
    from .request import Request

LARGE_BODY = 16 * 1024  # bodies this large bypass the output buffer
# Most a head adds to the response's own bytes: Content-Length (16 + 20 digits + 2)
# and the longest ending, "Connection: keep-alive" (26).
HEAD_EXTRA = 64
# The request line and line ends a head holds beyond what max_url_size and
# max_header_size count (name + value + 4 per field).
STALL_SLACK = 1024
# How long a busy connection may still bring its next request once shutdown begins.
DRAIN_GRACE = 0.5
WRITE_HIGH_WATER = 256 * 1024
WRITE_LOW_WATER = 64 * 1024

PAUSE_WRITE = 1
PAUSE_BODY = 2
PAUSE_PIPELINE = 4
PAUSE_UPGRADE = 8  # what follows a protocol-switch head belongs to the next protocol

# The lifecycle (see the module docstring); a connection only moves forward through it.
OPEN = 0
LAST = 1
CLOSING = 2
LINGERING = 3
GONE = 4

STATUS_LINE_TABLE = [STATUS_LINES.get(code) for code in range(600)]
SERVER_LINE = len(format_date_block(0).partition(b"\r\n")[0]) + 2
METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}


def method_name(method: bytes) -> str:
    """The method as a string; the common ones without a lookup."""
    # get_method() returns a new bytes object each time, so a dict lookup would hash it.
    size = len(method)
    if size == 3 and method == b"GET":
        return "GET"
    if size == 4:
        if method == b"POST":
            return "POST"
        if method == b"HEAD":
            return "HEAD"
    name = METHODS.get(method)
    return name if name is not None else method.decode("ascii")


class _Slot:
    """A request whose answer is not on the wire yet (only created when one must wait)."""

    def __init__(self, request: Optional[Request], response: Any) -> None:
        self.request = request  # None for an error answer of the server's own
        self.response = response  # Response, StreamingResponse, error bytes, or None
        self.task: Optional[asyncio.Task[Any]] = None
        self.deferred = False  # the handler has not been called yet


class _Shared:
    """What every connection of a server uses in turn and none keeps between calls: made
    once per server (``shared``), not once per connection."""

    def __init__(self, server: Any) -> None:
        # Its results are read right after each scan, within one read of one connection,
        # as the read buffer they come from is (shared the same way, see Server).
        self.scanner = native.Scanner(server.read_buffer, server.config)
        self.fields = native.ResponseFields()  # read into locals by respond() at once


def shared(server: Any) -> _Shared:
    """The server's ``_Shared``, made by its first connection (of this core)."""
    found = server.shared
    if not isinstance(found, _Shared):
        found = server.shared = _Shared(server)
    return found


class _Reader:
    """Reading: the bytes of each read become requests (scanner first, then httptools).

    Owns what a request's head and body are while they arrive, the current request
    (``req``) and its reading timeouts; hands complete heads and messages to the queue.
    """

    def __init__(self, conn: _Connection, server: Any) -> None:
        cfg = server.config
        self.conn = conn
        self.max_url = cfg.max_url_size
        self.max_head = cfg.max_header_size
        self.max_headers = cfg.max_headers
        self.max_body = cfg.max_body_size
        self.buffer: memoryview = server.read_buffer
        self.buffer_size = len(self.buffer)
        self.buffer_bytes = self.buffer.obj  # what frames reads the request lines from
        assert isinstance(self.buffer_bytes, bytearray)
        self.scanner = shared(server).scanner
        # httptools and the request-line follower, made when a head first needs them
        # (every head in the pure build; in the compiled one, what the scanner does not take).
        self.parser: Optional[HttpRequestParser] = None
        self.frames: Frames = None  # type: ignore[assignment]
        self.stall_limit = self.max_url + self.max_head + STALL_SLACK
        self.url = b""
        # A message's fields, while httptools reads its head (made when the message begins).
        self.headers: List[Tuple[bytes, bytes]] = None  # type: ignore[assignment]
        self.trailers: Optional[List[Tuple[bytes, bytes]]] = None
        self.expect = False
        self.in_head = False  # a request has begun and its head is not complete
        self.advanced = False  # this read completed a head or a message, or brought body
        self.stalled = 0  # bytes of reads in a message that did not advance it
        self.head_size = 0
        self.hosts: List[bytes] = None  # type: ignore[assignment]  # Host values
        self.content_type: Optional[bytes] = None  # the first Content-Type value
        self.line: Optional[bytes] = None  # the request line of a head refused when complete
        self.codings: List[bytes] = None  # type: ignore[assignment]  # Transfer-Encoding values
        self.keep_option = False  # a Connection field asked for keep-alive
        self.content_length = 0
        self.body_size = 0
        self.body_progress = False
        # httptools has begun a message it has not completed; between messages it holds
        # nothing, so heads go to the scanner first.
        self.in_message = False
        self.followed = False  # the last read ended in httptools (and frames may hold bytes)
        self.in_read = False  # inside read(): what it answers leaves when it ends
        self.scanned_left = 0  # body bytes still due to a scanned request
        self.req: Optional[Request] = None
        self.dispatched = False  # req has been handed to the queue
        self.requests = 0
        # When each request still unanswered was read, if the access log is on.
        self.started: Optional[dict[Request, float]] = None if server.access_log is None else {}
        self.head_ticks = 0
        self.body_ticks = 0

    def wire(self, queue: _Queue, writer: _Writer, life: _Lifecycle) -> None:
        self.queue = queue
        self.writer = writer
        self.life = life

    def cut(self) -> None:
        """Forget the connection and the other parts once it is lost: nothing cycles."""
        self.conn = self.queue = self.writer = self.life = None  # type: ignore[assignment]

    def read(self, nbytes: int) -> None:
        """Take the *nbytes* just read into the buffer: heads to the scanner, then httptools."""
        self.in_read = True
        done = 0
        boundary = not self.in_message and (not self.followed or self.frames.at_boundary())
        if boundary:
            done = self.scan(nbytes)
        self.followed = done < nbytes
        if self.followed:
            if self.parser is None:
                self.parser = HttpRequestParser(self)
                self.frames = Frames()  # at a message boundary, as httptools
            elif boundary:
                self.frames.restart()  # httptools starts at a message boundary
            data = self.buffer[done:nbytes]
            self.frames.begin(self.buffer_bytes, done, nbytes)
            try:
                self.parser.feed_data(data)
                self.frames.end()
            except HttpParserUpgrade as exc:
                self.queue.upgrading(bytes(self.buffer[done + exc.args[0] : nbytes]))
            except HttpParserCallbackError as exc:
                self.callback_failed(exc)
            except HttpParserError as exc:
                self.refused(exc)
        self.guard_stall(nbytes)
        if self.req is not None and not self.dispatched:
            self.queue.dispatch(self.req)  # the body is still coming: let the handler stream it
        self.in_read = False

    # -- the head scanner ------------------------------------------------------

    def scan(self, nbytes: int) -> int:
        """Answer the plain requests at the start of this read (see ``Scanner``).

        Returns how far it got: httptools takes the rest, from a message boundary.
        """
        scanner = self.scanner
        pos = 0
        if self.scanned_left:
            pos = self.scanned_body(0, nbytes)
            if self.scanned_left:
                return pos
            self.message_done()
        while pos < nbytes and self.life.state == OPEN:
            size = scanner.scan(pos, nbytes)
            if size == 0:
                break
            self.body_size = self.body_ticks = 0
            self.body_progress = False
            start = pos + scanner.head.target
            self.open(
                scanner.method(),
                scanner.take(start, start + scanner.head.target_len),
                # Only the bytes: the pairs are made if the handler looks at the headers.
                scanner.take(pos + scanner.head.lines, pos + size - 2),
                scanner.head.http10,
                True,
                scanner.head.expect,
            )
            pos += size
            if scanner.head.length:
                self.scanned_left = scanner.head.length
                pos += self.scanned_body(pos, nbytes)
                if self.scanned_left:
                    break  # the rest of the body comes in later reads
            self.message_done()
        return pos

    def scanned_body(self, pos: int, end: int) -> int:
        """Take what is here of the body due to a scanned request; how much that was."""
        size = end - pos
        if size > self.scanned_left:
            size = self.scanned_left
        if size:
            self.scanned_left -= size
            self.body(self.scanner.take(pos, pos + size))
        return size

    # -- httptools' callbacks --------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.headers = []
        self.hosts = []
        self.codings = []

    def on_url(self, url: bytes) -> None:
        if self.url:
            self.url += url
        else:
            # A request's head starts here for the timeouts and the stall guard
            # (cheaper than one more callback; before this the idle sweep applies).
            self.url = url
            self.in_head = True
            self.head_ticks = 0
        if len(self.url) > self.max_url:
            raise Reject(414, "request target longer than max_url_size")

    @cython.locals(name=bytes, value=bytes, size=cython.Py_ssize_t)
    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(value)
        if size and (value[size - 1] == 32 or value[size - 1] == 9):
            value = value.rstrip(b" \t")  # llhttp keeps it; a field value has none (RFC 9110 §5.5)
        if not self.in_head:
            # After the head, httptools reports the trailer section's fields the same way.
            self.on_trailer(name, value)
            return
        size = len(name)
        self.headers.append((name, value))
        self.head_size += size + len(value) + 4
        if self.head_size > self.max_head:
            raise Reject(431, "header section larger than max_header_size")
        if len(self.headers) > self.max_headers:
            raise Reject(431, "more header fields than max_headers")
        # Only the few headers the core acts on are looked at, by length first.
        if size == 4:
            if native.is_name(name, b"host"):
                self.hosts.append(value)
        elif size == 6:
            if native.is_name(name, b"expect"):
                self.expect = value.lower() == b"100-continue"
        elif size == 10:
            if native.is_name(name, b"connection") and _strict.asks_keep_alive(value):
                self.keep_option = True
        elif size == 12:
            if native.is_name(name, b"content-type"):
                # A singleton field (RFC 9110 §8.3): which of two values counts would
                # depend on who reads it. The same value twice says nothing new.
                if self.content_type is None:
                    self.content_type = value
                elif value != self.content_type:
                    raise Reject(400, "Content-Type fields with different values")
        elif size == 14:
            if native.is_name(name, b"content-length"):
                self.content_length = int(value)  # llhttp has checked the digits
        elif size == 17 and native.is_name(name, b"transfer-encoding"):
            self.codings.append(value)

    def on_trailer(self, name: bytes, value: bytes) -> None:
        # Never part of the header section (RFC 9110 §6.5): kept apart for request.trailers,
        # within the same limits as a head (the count restarted when the head completed).
        if self.trailers is None:
            self.trailers = []
        self.trailers.append((name, value))
        self.head_size += len(name) + len(value) + 4
        if self.head_size > self.max_head:
            raise Reject(431, "trailer section larger than max_header_size")
        if len(self.trailers) > self.max_headers:
            raise Reject(431, "more trailer fields than max_headers")
        if name.lower() in _strict.FORBIDDEN_TRAILERS:
            raise Reject(400, "a trailer field that frames, routes or authenticates")

    @cython.locals(
        expect=cython.bint,
        keep_option=cython.bint,
        length=cython.ulonglong,
        version=str,
        method=str,
        upgrade=cython.bint,
        keep_alive=cython.bint,
    )
    def on_headers_complete(self) -> None:
        url = self.url
        headers = self.headers
        hosts = self.hosts
        codings = self.codings
        expect = self.expect
        keep_option = self.keep_option
        length = self.content_length
        self.url = b""
        self.headers = self.hosts = self.codings = None  # type: ignore[assignment]
        self.content_type = None
        self.trailers = None
        self.expect = self.in_head = self.body_progress = self.keep_option = False
        self.head_size = self.content_length = self.body_size = 0
        self.body_ticks = 0
        self.advanced = True
        line = self.frames.head()
        if self.life.state != OPEN:
            self.frames.stop()
            return  # closing or shutting down: requests that start now are not answered
        parser = self.parser
        assert parser is not None
        # From the request line, whatever the fields say.
        version = parser.get_http_version()
        method = method_name(parser.get_method())
        upgrade = parser.should_upgrade()
        self.line = line  # for the logs, should this head be refused
        _strict.check_head(line, method, url, version, hosts, codings, upgrade, length)
        if length > self.max_body:
            raise Reject(413, "Content-Length over max_body_size")  # before any body is read
        if url[:1] != b"/" and url != b"*":
            url = _strict.served_target(url, method, headers)  # absolute-form: checked above
        self.line = None
        self.frames.body(length, bool(codings))
        # llhttp keeps HTTP/1.0 alive for Proxy-Connection too; only Connection counts.
        # A protocol switch is the connection's last request, whatever the handler says.
        keep_alive = (
            parser.should_keep_alive() and (version == "1.1" or keep_option) and not upgrade
        )
        self.open(method, url, headers, version == "1.0", keep_alive, expect)
        if upgrade:
            self.queue.upgrade = self.req

    def on_body(self, body: bytes) -> None:
        if self.body_size + len(body) > self.max_body:
            raise Reject(413, "chunked body over max_body_size")
        self.body(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.message_done()

    # -- what httptools refused ------------------------------------------------

    def refused(self, exc: HttpParserError) -> None:
        """httptools refused the input."""
        if self.life.state >= LAST:
            # Bytes after the client's last request (RFC 9112 §9.6): not answered, but
            # drained while closing, so that they do not turn the close into a reset.
            self.life.half_close = True
        else:
            invalid_method = isinstance(exc, HttpParserInvalidMethodError)
            refusal = _strict.parse_error(invalid_method, self.frames.pending(), str(exc))
            self.queue.fail(refusal.status, refusal.reason)
        self.frames.stop()

    def callback_failed(self, exc: HttpParserCallbackError) -> None:
        cause = exc.__context__
        if isinstance(cause, Reject):
            self.queue.fail(cause.status, cause.reason)
        else:
            _outcomes.log.error("internal error in a parser callback", exc_info=cause or exc)
            self.queue.fail(500, "internal error in a parser callback")

    def guard_stall(self, nbytes: int) -> None:
        """Bound what httptools may hold of an unfinished head or trailer section."""
        # httptools keeps a field's pieces until the field is whole, and nothing else
        # bounds a read that brings neither a whole head, nor body, nor a message's end.
        if self.advanced:
            self.advanced = False
            self.stalled = 0
        elif self.in_head or self.req is not None:
            self.stalled += nbytes
            if self.stalled > self.stall_limit:
                self.queue.fail(431, "unfinished head or trailer section past the size limits")

    # -- one request, whichever parser read it ---------------------------------

    def open(
        self,
        method: str,
        url: bytes,
        headers: Any,
        http10: bool,
        keep_alive: bool,
        expect: bool,
    ) -> None:
        """A complete, acceptable head: it becomes the current request."""
        if self.life.draining:
            keep_alive = False  # the server is stopping: this request is the last (shutdown)
        req = requests.new_request(self.conn, method, url, headers, http10, keep_alive)
        if expect and not http10:  # an HTTP/1.0 client knows no 1xx (RFC 9110 §10.1.1)
            req._expect = True
        if self.started is not None:
            self.timed(req)
        self.advanced = True
        self.req = req
        self.dispatched = False
        self.requests += 1

    def timed(self, req: Request) -> None:
        """Note when *req* was read, for the access log's duration."""
        assert self.started is not None
        self.started[req] = perf_counter()

    def body(self, body: bytes) -> None:
        self.body_size += len(body)
        self.body_progress = self.advanced = True
        if self.req is not None and self.req._feed(body):
            self.writer.pause(PAUSE_BODY)

    def message_done(self) -> None:
        req = self.req
        self.advanced = True
        if req is None:
            self.trailers = None
            return
        self.req = None
        if not req.keep_alive:
            self.life.to(LAST)  # the client's last request: nothing after it is processed
        if self.trailers is not None:  # only httptools reports trailers
            req._trailers = self.trailers
            self.trailers = None
        req._finish()
        if not self.dispatched:
            self.queue.dispatch(req)

    def drop(self) -> None:
        """The current request's head or body is unusable (``_Queue.fail``): forget it."""
        self.in_head = False
        self.req = None

    def refused_line(self) -> bytes:
        """The request line of the head being refused, as far as it came (b"" if none)."""
        if self.line is not None:
            return self.line
        return self.frames.pending().partition(b"\r\n")[0]


class _Queue:
    """The response queue: runs handlers and sends their answers in request order.

    Owns the answers still owed (``pending``), the pipelining limit, the eager
    first step of each handler, the server's own error answers, and the upgrade seam.
    """

    def __init__(self, conn: _Connection, server: Any) -> None:
        self.conn = conn
        self.app = server.app
        self.max_pipeline = server.config.max_pipelined
        self.refusals = server.refusals
        self.debug = server.config.debug  # the rule that refused goes in the answer's body
        # A list, not a deque: empty, it is 56 bytes, not 600, on every idle connection.
        self.pending: List[_Slot] = []
        self.upgrade: Optional[Request] = None  # the request that asked to switch protocols
        self.tail = b""  # what the client sent after that request's head

    def wire(self, reader: _Reader, writer: _Writer, life: _Lifecycle) -> None:
        self.reader = reader
        self.writer = writer
        self.life = life

    def cut(self) -> None:
        """Forget the connection and the other parts once it is lost: nothing cycles."""
        self.conn = self.reader = self.writer = self.life = None  # type: ignore[assignment]

    def dispatch(self, req: Request) -> None:
        """Hand *req* to its handler, or keep it until the queue has room."""
        self.reader.dispatched = True
        if self.writer.write_paused or len(self.pending) >= self.max_pipeline:
            # Backlogged: keep the request, run its handler when the queue drains.
            slot = _Slot(req, None)
            slot.deferred = True
            self.enqueue(slot)
            return
        result = native.call_handler(self.app, req)
        if not self.pending and type(result) is Response:
            self.writer.respond(req, result, True)
            if self.writer.out.size() > WRITE_HIGH_WATER:
                self.writer.flush()  # let the transport's flow control see it before the next
            return
        slot = _Slot(req, None)
        self.enqueue(slot)
        self.settle(slot, result)
        self.send_ready()

    def settle(self, slot: _Slot, result: Any) -> None:
        if native.is_response(result):
            slot.response = result
        else:
            slot.task = result
            result.add_done_callback(partial(self.handler_done, slot))

    def enqueue(self, slot: _Slot) -> None:
        self.pending.append(slot)
        if len(self.pending) > self.max_pipeline:
            self.writer.pause(PAUSE_PIPELINE)

    @cython.locals(slot=_Slot)
    def handler_done(self, slot: _Slot, task: asyncio.Task[Any]) -> None:
        assert slot.request is not None
        if self.writer is None or slot.response is not None:
            # The connection is gone (its parts are cut), or the server answered in its place.
            _outcomes.discard(task, slot.request)
            return
        slot.response = _outcomes.outcome(task, slot.request)
        if self.pending and self.pending[0] is slot:
            # Handlers that finish in the same loop turn (pipelined requests) leave in one
            # write: the flush comes one turn later.
            self.writer.batching = True
            self.send_ready()
            if self.writer is not None:  # None: a protocol switch let go of the connection
                self.writer.batching = False
                self.writer.flush_soon()

    def send_ready(self) -> None:
        """Write every ready response at the head of the queue, in order."""
        pending = self.pending
        writer = self.writer
        while pending and self.life.state < CLOSING and writer.stream_task is None:
            slot = pending[0]
            if slot.deferred:
                if writer.write_paused:
                    break
                slot.deferred = False
                self.settle(slot, native.call_handler(self.app, slot.request))
            response = slot.response
            if response is None:
                req = slot.request
                if req is not None and req._expect is None:
                    writer.continue_(req)
                break
            if type(response) is bytes:  # an error answer of the server's own: the last
                pending.pop(0)
                writer.out.write(response)
                self.life.to(CLOSING)
                break
            req = slot.request
            assert req is not None
            if type(response) is SwitchProtocols:
                if req is self.upgrade:
                    if self.reader.in_read:
                        break  # the read that brought the head ends first: it holds the tail
                    pending.pop(0)
                    self.switch(response)
                    return
                response = slot.response = _outcomes.not_asked(req)
            if native.is_streaming(response):
                writer.respond(req, response, len(pending) == 1)
                break  # the slot leaves the queue when the stream ends
            pending.pop(0)
            writer.respond(req, response, not pending)
            if writer.out.size() > WRITE_HIGH_WATER:
                writer.flush()
        if writer.paused & PAUSE_PIPELINE and len(pending) <= self.max_pipeline // 2:
            writer.unpause(PAUSE_PIPELINE)
        if not self.reader.in_read and not writer.batching:
            writer.flush()

    def upgrading(self, tail: bytes) -> None:
        """The request just read asks to switch protocols: nothing after its head is HTTP.

        Its handler decides: ``SwitchProtocols`` hands the connection over (``switch``),
        anything else is answered as the connection's last response.
        """
        self.life.to(LAST)
        self.tail = tail
        self.writer.pause(PAUSE_UPGRADE)  # until the switch, or for good

    def switch(self, switch: SwitchProtocols) -> None:
        """Every earlier answer has left: answer 101 and give the connection away."""
        transport, tail = self.writer.transport, self.tail
        self.writer.out.write(switch.answer(native.date_block()))
        self.writer.write_out()
        self.conn.connection_lost(None)  # this protocol is done with the connection
        _handover.hand_over(transport, switch, tail)

    def fail(self, status: int, reason: str) -> None:
        """The input is unusable: answer *status* in turn and close.

        *reason*, the rule that refused, is logged (see ``_connection_log.Refusals``), and
        with the ``debug`` setting also sent in the answer's body.
        """
        self.life.to(LAST)
        self.life.half_close = True  # the client may still be sending: let it read our answer
        req = self.reader.req
        self.reader.drop()
        self.refusals.report(self.conn.client, status, reason)
        err = error_response(status, native.date_block(), reason if self.debug else "")
        if req is not None and self.reader.dispatched:
            # The handler already has this request: answer in its place unless it has answered.
            req._abort(ClientDisconnected("malformed request body"))
            for slot in self.pending:
                if slot.request is req:
                    if slot.response is None:
                        self.log_answer(req, status)
                        slot.response = err  # handler_done ignores the handler's result
                        slot.deferred = False
                        if slot.task is not None:
                            slot.task.cancel()
                        self.send_ready()
                    return
            self.life.to(CLOSING)  # its answer is already out
            return
        self.log_answer(req, status)
        if self.pending:
            self.enqueue(_Slot(None, err))
        else:
            self.writer.out.write(err)
            self.life.to(CLOSING)

    def log_answer(self, req: Optional[Request], status: int) -> None:
        """The access-log line of an answer of the server's own (when the log is on)."""
        access = self.writer.access_log
        if access is not None:
            if req is not None:
                started = self.reader.started
                when = started.pop(req, None) if started is not None else None
                access.log(req, status, 0, b"", None, when)
            else:
                access.refused(self.conn.client, self.reader.refused_line(), status)

    def abandon(self, gone: ClientDisconnected) -> None:
        """Nobody is left to read the answers owed: stop the work behind them."""
        self.upgrade, self.tail = None, b""
        streaming = self.writer.stream_task is not None  # the first answer's body is going out
        for slot in self.pending:
            if slot.request is not None:
                slot.request._abort(gone)
            if slot.task is not None:
                _outcomes.abandon(slot.task)
            if native.is_streaming(slot.response) and not streaming:
                _streaming.unsent(slot.response)  # its content is never read: let it clean up
            streaming = False
        self.pending.clear()

    def first_is(self, req: Request) -> bool:
        """Whether *req* is the next to be answered (nothing owed before it)."""
        if not self.pending:
            return True
        first = self.pending[0]
        return first.request is req


class _Writer:
    """Writing: answers into the output buffer, and to the transport with its flow control.

    Owns the output buffer (one ``transport.write`` per read; it holds storage only
    while it has bytes to write, see ``Output``), write pressure
    (``pause_writing``, the room a streaming body waits for) and the reasons reading
    is paused. Each reason is lifted on every path that ends it: ``PAUSE_WRITE`` when
    the transport drains; ``PAUSE_PIPELINE`` when the answers owed fall to half the
    limit; ``PAUSE_UPGRADE`` never here (the next protocol reads, or the connection
    closes); ``PAUSE_BODY``, set when a request holds more unread body than
    ``BODY_HIGH_WATER``, when that body is released (``Request._release``): taken by
    the handler in any way, or dropped once the request's answer is complete, whether
    the handler read it or not. Closing by lingering lifts them all (input is drained).
    """

    def __init__(self, conn: _Connection, server: Any) -> None:
        self.conn = conn
        self.transport: Any = None
        self.out = native.Output()
        self.fields = shared(server).fields
        self.serializing = False  # inside serialize(): no I/O
        self.batching = False  # answers of finished handlers: flushed one loop turn later
        self.flush_due = False  # such a flush is scheduled
        self.paused = 0  # why reading is paused: PAUSE_* bits
        self.write_paused = False
        self.room_waiter: Optional[asyncio.Future[None]] = None
        self.stream_task: Optional[asyncio.Task[None]] = None
        self.access_log = server.access_log  # an AccessLog: a line per answer
        # Without the server's own Server or Date field, every answer is written as if it
        # had set that one itself (only the other line of the cached block goes out).
        self.omit = server.omit
        self.extra = server.extra_head  # fields the server adds to every answer, or None

    def wire(self, reader: _Reader, queue: _Queue, life: _Lifecycle) -> None:
        self.reader = reader
        self.queue = queue
        self.life = life

    def cut(self) -> None:
        """Forget the connection and the other parts once it is lost: nothing cycles."""
        self.conn = self.reader = self.queue = self.life = None  # type: ignore[assignment]

    def respond(self, req: Request, response: Any, last: bool) -> None:
        """Serialize *response* to *req* into the output buffer (head of the line only)."""
        fields = self.fields  # the server's: read into locals before anything else runs
        status = fields.read(response)
        if status < 100:
            self.respond(req, _outcomes.unservable(req, invalid_field(response)), last)
            return
        flags = fields.flags | self.omit
        head = fields.head
        body = fields.body
        if self.access_log is not None:
            self.log_access(req, status, flags)
        keep = (
            req.keep_alive
            and req._body_done
            and not flags & FLAG_CLOSE
            and not (self.life.state >= LAST and last and self.reader.req is None)
        )
        has_body = status >= 200 and status != 204 and status != 304
        send_body = has_body and not req._is_head
        chunked = False
        inline_body = (
            send_body and body is not None and (len(body) < LARGE_BODY or self.serializing)
        )
        line = STATUS_LINE_TABLE[status]
        block = native.date_block()
        out = self.out
        # Room for the longest head this can be, so the pieces below need no checks.
        out.reserve(
            len(line) + len(block) + len(head) + HEAD_EXTRA + (len(body) if inline_body else 0)
        )
        out.put(line)
        if flags & (FLAG_DATE | FLAG_SERVER) == 0:
            out.put(block)
        elif flags & FLAG_SERVER and not flags & FLAG_DATE:
            out.put_part(block, SERVER_LINE, len(block))
        elif flags & FLAG_DATE and not flags & FLAG_SERVER:
            out.put_part(block, 0, SERVER_LINE)
        extra = self.extra
        if extra is not None:
            out.reserve(len(extra))
            out.put(extra)
        out.put(head)
        if body is not None:
            if has_body and not flags & FLAG_CONTENT_LENGTH:
                out.put_length(len(body))
        elif not flags & FLAG_CONTENT_LENGTH:
            chunked = has_body and not req._is_http10
            if chunked:
                out.put(b"Transfer-Encoding: chunked\r\n")
            elif has_body:
                keep = False  # HTTP/1.0: the end of the body is the end of the connection
        if not keep:
            out.put(b"Connection: close\r\n\r\n")
        elif req._is_http10:
            out.put(b"Connection: keep-alive\r\n\r\n")
        else:
            out.put_crlf()
        if body is not None:
            if inline_body:
                out.put(body)
            elif send_body:
                # Hand a large body over as it is: copying it into the buffer and
                # then into a new bytes object would cost two copies and a malloc.
                self.write_out()
                self.transport.write(body)
            if not keep:
                self.life.to(CLOSING)
                self.life.half_close = self.life.half_close or not req._body_done
            if req._chunks is not None:
                req._release()  # answered: what the handler left unread goes (see the class doc)
        else:
            length = declared_length(head) if flags & FLAG_CONTENT_LENGTH else -1
            task = asyncio.get_running_loop().create_task(
                _streaming.stream_body(self.conn, response, chunked, send_body, length)
            )
            self.stream_task = task
            task.add_done_callback(partial(self.stream_done, req, keep))

    def log_access(self, req: Request, status: int, flags: int) -> None:
        """The access log's record of the answer being written (out of ``respond``'s way)."""
        started = self.reader.started
        assert started is not None  # kept whenever the access log is on
        fields = self.fields
        self.access_log.log(req, status, flags, fields.head, fields.body, started.pop(req, None))

    def stream_done(self, req: Request, keep: bool, task: asyncio.Task[None]) -> None:
        self.stream_task = None
        if self.transport is None:
            return
        req._release()  # answered: what the handler left unread goes (see the class doc)
        if not _streaming.streamed(req, task):
            # The head is already out: the only honest signal left is closing.
            self.life.to(CLOSING)
            self.flush()
            return
        self.queue.pending.pop(0)
        if not keep:
            self.life.to(CLOSING)
        self.queue.send_ready()

    def continue_(self, req: Request) -> None:
        """``100 Continue``: the handler reads the body it was asked about."""
        req._expect = False
        if not req._body_done and self.life.state < CLOSING:
            self.out.write(CONTINUE)

    def write_out(self) -> None:
        """Hand the buffered bytes to the transport."""
        if self.out.size():
            self.transport.write(self.out.take())

    def flush(self) -> None:
        """Write out, and close if nothing more is owed (see ``_Lifecycle``)."""
        transport = self.transport
        if transport is None:
            return
        self.write_out()
        state = self.life.state
        if state >= CLOSING or (
            state == LAST and not self.queue.pending and self.reader.req is None
        ):
            self.life.close(transport)

    def flush_soon(self) -> None:
        """Flush once the callbacks of this loop turn have run (see ``handler_done``)."""
        if not self.flush_due:
            self.flush_due = True
            asyncio.get_running_loop().call_soon(self.flush_later)

    def flush_later(self) -> None:
        self.flush_due = False
        if self.transport is not None and not self.reader.in_read:
            self.flush()

    def pause(self, reason: int) -> None:
        if not self.paused and self.transport is not None:
            self.transport.pause_reading()
        self.paused |= reason

    def unpause(self, reason: int) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            if not self.paused and self.transport is not None:
                self.transport.resume_reading()

    def pause_writing(self) -> None:
        self.write_paused = True
        self.pause(PAUSE_WRITE)

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self.room_waiter
        if waiter is not None:
            self.room_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        self.unpause(PAUSE_WRITE)
        if self.queue.pending and self.transport is not None:
            self.queue.send_ready()  # backlogged requests may run now

    def room(self) -> Optional[asyncio.Future[None]]:
        """None when the transport takes more now, else a future for when it does."""
        if self.transport is None:
            raise ClientDisconnected("client disconnected")
        if not self.write_paused:
            return None
        if self.room_waiter is None:
            self.room_waiter = asyncio.get_running_loop().create_future()
        return self.room_waiter

    def gone(self, exc: ClientDisconnected) -> None:
        """The transport is lost: nothing more is written, nobody waits for room."""
        self.transport = None
        self.out.truncate(0)
        if self.stream_task is not None:
            self.stream_task.cancel()
        waiter = self.room_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class _Lifecycle:
    """The lifecycle: one state that only moves forward, how to close, and the timeouts.

    ``OPEN`` → ``LAST`` → ``CLOSING`` → ``LINGERING`` → ``GONE`` (see the module
    docstring); ``tick`` is the server's sweep, which enforces every timeout.
    """

    def __init__(self, server: Any) -> None:
        sweeps = server.sweeps
        self.idle_limit: int = sweeps.idle
        self.head_limit: int = sweeps.head
        self.body_limit: int = sweeps.body
        self.write_limit: int = sweeps.write
        self.linger_limit: int = sweeps.linger
        self.state = OPEN
        self.draining = False  # shutting down: the next request opened is the last
        self.half_close = False  # close by half-closing and draining input (see close)
        self.linger_ticks = 0  # sweeps spent lingering
        self.write_ticks = 0
        self.idle = 0
        self.seen = 0  # requests read by the last sweep that saw the connection busy

    def wire(self, reader: _Reader, queue: _Queue, writer: _Writer) -> None:
        self.reader = reader
        self.queue = queue
        self.writer = writer

    def cut(self) -> None:
        """Forget the connection and the other parts once it is lost: nothing cycles."""
        self.reader = self.queue = self.writer = None  # type: ignore[assignment]

    def to(self, state: int) -> None:
        """Move the lifecycle forward to *state* (never back)."""
        if self.state < state:
            self.state = state

    def close(self, transport: Any) -> None:
        if not self.half_close:
            transport.close()
        elif self.state != LINGERING and transport.can_write_eof():
            # Closing outright while the client still sends would make the kernel
            # reset the connection and destroy our answer in flight (RFC 9112 §9.6).
            self.state = LINGERING
            self.linger_ticks = 0
            transport.write_eof()
            self.writer.unpause(-1)  # drain the input, whatever held it back
        elif self.state != LINGERING:
            transport.close()

    def tick(self) -> int:
        """One sweep of the server: enforces every timeout of this connection.

        Returns how many sweeps the connection may be left alone for when it is idle
        (its idle deadline; only a read can change that first), else 0.
        """
        reader = self.reader
        writer = self.writer
        transport = writer.transport
        if transport is None:
            return 0
        if self.state == LINGERING:
            self.linger_ticks += 1
            if self.linger_ticks >= self.linger_limit:
                transport.close()
            return 0
        if writer.write_paused:
            self.write_ticks += 1
            if self.write_ticks >= self.write_limit:
                transport.abort()  # the client stopped reading
            return 0
        self.write_ticks = 0
        if reader.in_head:
            reader.head_ticks += 1
            if reader.head_ticks >= self.head_limit:
                self.expire("request head not complete within header_timeout")
        elif reader.req is not None:
            if reader.body_progress:
                reader.body_progress = False
                reader.body_ticks = 0
            else:
                reader.body_ticks += 1
                if reader.body_ticks >= self.body_limit:
                    self.expire("request body stalled for body_timeout")
        elif self.queue.pending or reader.requests != self.seen:
            self.seen = reader.requests
            self.idle = 0
            if not self.queue.pending:
                return self.idle_limit  # answered since the last sweep: idle from now on
        else:
            self.idle += 1
            if self.idle < self.idle_limit:
                return self.idle_limit - self.idle
            _connection_log.idle_expired(transport, writer.paused)
            self.to(CLOSING)
            writer.flush()
        return 0

    def expire(self, reason: str) -> None:
        writer = self.writer  # fail() may end in a protocol switch, which cuts the parts
        self.queue.fail(408, reason)
        writer.flush()


class _Connection:
    """One connection: the asyncio callbacks, and what requests and the server call.

    The work is the parts': ``_Reader``, ``_Queue``, ``_Writer`` and ``_Lifecycle``;
    ``HttpProtocol`` adds the asyncio base class.
    """

    def __init__(self, server: Any) -> None:
        self._server = server
        self.client: Optional[Tuple[str, int]] = None
        self.scheme: str = server.scheme
        # The server's sweep keeps these (Server._sweep): the sweep the connection is due
        # at, its place there, and whether it is parked idle (a read must wake it).
        self.sweep_due = 0
        self.sweep_slot = 0
        self.parked = False
        reader = self._reader = _Reader(self, server)
        queue = self._queue = _Queue(self, server)
        writer = self._writer = _Writer(self, server)
        life = self._life = _Lifecycle(server)
        reader.wire(queue, writer, life)
        queue.wire(reader, writer, life)
        writer.wire(reader, queue, life)
        life.wire(reader, queue, writer)

    # -- asyncio callbacks -----------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self._writer.transport = transport
        if not self._server.track(self):
            self._life.to(CLOSING)
            transport.close()
            return
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.client = (peer[0], peer[1])
        transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        if self._life.state == GONE:
            return
        self._life.state = GONE
        self._reader.parser = None  # it holds bound methods of the reader: break the cycle
        gone = ClientDisconnected("client disconnected")
        self._writer.gone(gone)
        req = self._reader.req
        if req is not None:
            req._abort(gone)
            self._reader.req = None
        self._queue.abandon(gone)
        self._server.forget(self)
        # The parts refer to each other and to the connection; cut those references so that
        # a lost connection is freed at once, not by the cyclic GC long after. What may still
        # call in (a handler's body reader, a finishing Task) stops at the GONE checks.
        self._reader.cut()
        self._queue.cut()
        self._writer.cut()
        self._life.cut()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._reader.buffer

    @cython.locals(nbytes=cython.Py_ssize_t, state=cython.int)
    def buffer_updated(self, nbytes: int) -> None:
        if self.parked:
            self._server.wake(self)  # the timeouts of what this read begins apply from now
        reader = self._reader
        if nbytes < 0 or nbytes > reader.buffer_size:
            # The event loop never does this; the compiled scanner reads the buffer in C.
            raise ValueError(f"buffer_updated({nbytes}) outside a {reader.buffer_size}-byte buffer")
        state = self._life.state
        if self._queue.upgrade is not None and state < CLOSING:
            # A read already under way when reading paused: it belongs to the next protocol.
            self._queue.tail += reader.buffer[:nbytes]
            return
        if state >= CLOSING or (state == LAST and reader.req is None):
            # Nothing new is accepted (RFC 9112 §9.6: not even after the client's last
            # request); the input is dropped, and drained while closing so that it does
            # not turn the close into a reset.
            self._life.half_close = True
            return
        reader.read(nbytes)
        if self._queue.upgrade is not None:
            self._queue.send_ready()  # a switch the handler decided during this read happens now
        else:
            self._writer.flush()

    def pause_writing(self) -> None:
        if self._life.state != GONE:
            self._writer.pause_writing()

    def resume_writing(self) -> None:
        if self._life.state != GONE:
            self._writer.resume_writing()

    # -- what Request and the shared slow paths call ---------------------------

    def _send_continue(self, req: Request) -> None:
        if self._life.state == GONE:
            return
        if not self._queue.first_is(req):
            req._expect = None  # owed: send_ready sends it when this request's turn comes
            return
        self._writer.continue_(req)
        if not self._reader.in_read:
            self._writer.flush()

    def _resume_body(self) -> None:
        self._writer.unpause(PAUSE_BODY)

    def _send(self, data: bytes) -> None:
        self._writer.out.write(data)
        if not self._reader.in_read:
            self._writer.flush()

    def _write_room(self) -> Optional[asyncio.Future[None]]:
        return self._writer.room()

    def _sendfile_begin(self) -> Optional[Tuple[int, float]]:
        transport = self._writer.transport
        if transport is None:
            raise ClientDisconnected("client disconnected")
        sock = transport.get_extra_info("socket")
        if sock is None or self.scheme == "https":
            return None  # no socket, or TLS in between: the file goes through the transport
        self._writer.write_out()  # the head first
        transport.set_write_buffer_limits(0, 0)  # resume_writing once it is all sent
        return sock.fileno(), self._server.config.write_timeout

    def _sendfile_end(self) -> None:
        if self._writer.transport is not None:
            self._writer.transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)

    def serialize(
        self,
        response: Any,
        method: str = "GET",
        http_version: str = "1.1",
        keep_alive: bool = True,
    ) -> bytes:
        """The exact bytes this connection would send for *response* (no I/O).

        For tests and benchmarks: the answer to a complete request of *method*
        and *http_version* from a client that does (or does not) keep alive.
        """
        if type(response) not in responses.PLAIN_TYPES:
            raise TypeError("serialize takes a Response")
        if self._life.state == GONE:
            raise RuntimeError("the connection is closed")
        req = requests.new_request(self, method, b"/", [], http_version == "1.0", keep_alive)
        req._body_done = True
        writer, life = self._writer, self._life
        start = writer.out.size()
        state = life.state
        writer.serializing = True  # keeps even a large body in the buffer
        try:
            writer.respond(req, response, True)
            answer: bytes = writer.out.since(start)
            return answer
        finally:
            writer.out.truncate(start)
            life.state = state
            writer.serializing = False

    # -- what the server calls -------------------------------------------------

    def shutdown(self) -> None:
        """Accept no new request; close now if idle, else after the last answer.

        An answer still owed goes out with ``Connection: close``, which tells the
        client that nothing it sent after that request was taken. An idle connection
        that was busy a moment ago (a request since the last sweep) most likely has
        its next request on the wire already, and closing it now would reset that
        request: it gets ``DRAIN_GRACE`` more, and the next request to arrive is
        answered, with ``Connection: close``, as the last; if none comes, it closes.
        """
        life, reader = self._life, self._reader
        busy = reader.req is not None or self._queue.pending
        if life.state == OPEN and not busy and reader.requests != life.seen:
            life.draining = True
            asyncio.get_running_loop().call_later(DRAIN_GRACE, self._drained)
            return
        self._drained()

    def _drained(self) -> None:
        if self._life.state != GONE:
            self._life.to(LAST)
            if not self._reader.in_read:
                self._writer.flush()

    def tick(self) -> int:
        """Called once per sweep of the server: enforces every timeout of this connection.

        Returns how many sweeps it may be left alone for, unless it reads (see ``unpark``):
        0 when it must be ticked at the next sweep, -1 when it is gone.
        """
        if self._life.state == GONE:
            return -1
        return self._life.tick()

    def unpark(self, left: int) -> None:
        """The sweep takes the idle connection back, *left* sweeps before its idle deadline
        (the sweeps it spent parked count as idle ones)."""
        self.parked = False
        self._life.idle = self._life.idle_limit - left

    def abort(self) -> None:
        """Drop the connection now (the shutdown timeout ran out)."""
        if self._writer.transport is not None:
            self._writer.transport.abort()


class HttpProtocol(_Connection, asyncio.BufferedProtocol):
    """An HTTP/1.1 server connection.

    Inheriting ``asyncio.BufferedProtocol`` makes the stock asyncio loop read
    into our buffer as uvloop does; in the compiled build the state stays in the
    C fields of ``_Connection`` and its parts.
    """

    __slots__ = ()
