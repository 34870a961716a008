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
classes: direct C calls between them in the compiled build).

The parts call in one direction, top to bottom::

    _Connection   wires the parts, takes every call from outside, decides when output leaves
        |
    _Reader       bytes -> requests
        |
    _Queue        requests -> handlers -> answers, in order
        |
    _Writer       answers -> output buffer -> transport; why reading is paused
        |
    _Lifecycle    the state, the closing rule, the timeouts; calls nobody

Each part is made after the parts below it and given only those; it may call
any of them, and changes only its own fields (each change through one of its
methods). What a lower part must tell an upper one it returns, or keeps in its
own state for the upper one to read, or reports to ``_Connection`` (a handler's
or a stream's Task ending, a protocol switch whose turn has come, a timeout).
Output leaves at the end of each read, or at once outside a read: ``_Connection``
decides (``_flush``, ``_deliver``), and the lifecycle's ``through`` says whether
the connection closes then.

* ``_Reader`` -- reading. At a message boundary each head is first offered to
  the ``Scanner``, which in the compiled build reads plain heads straight from
  the read buffer with no parser callbacks (``_head.pyx``; the pure scanner
  accepts nothing). Whatever it does not accept, and every read after it, is
  fed to an ``httptools.HttpRequestParser`` (the reader is its callback target)
  until httptools is between messages again, so httptools decides every case
  that is not plain; ``_frames`` follows the request lines it does not report.
  Either way a complete, acceptable head becomes the current request
  (``open``), within the limits; the lifecycle hears where it stands.
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
  ``SwitchProtocols``, once every earlier answer has left (``switch_due``) the
  connection is handed to the new protocol with the bytes read past the head.
* ``_Writer`` -- writing. Answers are serialized into the output buffer
  (``respond``); everything produced during one read leaves in one
  ``transport.write`` at the end of that read, but a body of 16 KiB or more is
  handed over as it is, and the buffer is written early past the 256 KiB write
  high-water mark (``spill``). It owns flow control: reading pauses for any of
  four reasons (a bit each in ``paused``): the transport asked us to stop
  writing, a streaming body reader fell behind, too many pipelined requests are
  waiting, or a protocol switch is pending.
* ``_Lifecycle`` -- the lifecycle, one state that only moves forward:
  ``OPEN`` (requests are taken), ``LAST`` (no new request: the client's last
  one, a parse error, a protocol switch, server shutdown; the answers still
  owed go out, then the connection closes), ``CLOSING`` (close once the output
  is flushed; nothing more is answered), ``LINGERING`` (half-closed after an
  answer the client may not have waited for: input is drained until the
  client closes or the linger timeout), ``GONE`` (the transport was lost or
  handed to another protocol). ``through`` is the one closing rule;
  ``half_close`` says how to close: by lingering when the client may still be
  sending. The server's sweep calls ``tick``, which enforces every timeout and
  says which one fired; an idle connection's tick says how many sweeps it may
  be left alone for, and the sweep parks it until then, unless a read wakes it
  (``Server.wake``).
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
    FLAG_STATUS_LINE,
    SCANNED_METHODS,
    STATUS_LINES,
    Reject,
    error_response,
    format_date_block,
)
from .config import head_limits
from .request import ClientDisconnected
from .response import SwitchProtocols, invalid_field

try:
    import cython
except ImportError:  # Cython is needed only to build the compiled core
    from . import _no_cython as cython  # type: ignore[no-redef]

# The primitives and the Request class: the compiled ones in the compiled build.
if cython.compiled:
    from cython.cimports.cyhttp import _primitives as primitives
    from cython.cimports.cyhttp import _request as requests
    from cython.cimports.cyhttp._response import Response
else:
    from . import _primitives_py as primitives
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

# What the lifecycle's tick says when a timeout fired that the connection must act on.
TIMED_OUT_HEAD = -1
TIMED_OUT_BODY = -2
TIMED_OUT_IDLE = -3

STATUS_LINE_TABLE = [STATUS_LINES.get(code) for code in range(600)]
SERVER_LINE = len(format_date_block(0).partition(b"\r\n")[0]) + 2
METHODS = {m.encode(): m for m in SCANNED_METHODS}


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
        self.scanner = primitives.Scanner(server.read_buffer, server.config)
        # What a response is served as (status, flags, field lines, body): read into
        # locals by respond() at once.
        self.response_parts = primitives.ResponseFields()
        # Connections whose answers came outside a read in this loop turn (a future's,
        # a pool thread's): flushed together at the next turn, by one loop callback
        # rather than one per answer (see ``_Connection._flush_soon``).
        self.flushing: List[_Connection] = []
        # The loop, once a flush was scheduled: asking asyncio for it costs a getpid()
        # system call (Python 3.11's running-loop check), on every loop turn that
        # flushes.
        self.loop: Optional[asyncio.AbstractEventLoop] = None

    def flush_soon(self) -> None:
        """Schedule ``flush_all`` (its connections were the first to ask this turn)."""
        loop = self.loop
        if loop is None:
            loop = self.loop = asyncio.get_running_loop()
        loop.call_soon(self.flush_all)

    def flush_all(self) -> None:
        """The loop callback: each connection that asked for a flush, in turn."""
        conns, self.flushing = self.flushing, []
        for i in range(len(conns)):
            conn = conns[i]
            try:
                conn._flush_later()
            except BaseException:
                # Reported by the loop as before; the others are flushed on its next turn.
                rest = conns[i + 1 :]
                if rest:
                    self.flushing.extend(rest)
                    self.flush_soon()
                raise


def shared(server: Any) -> _Shared:
    """The server's ``_Shared``, made by its first connection (of this core)."""
    found = server.shared
    if not isinstance(found, _Shared):
        found = server.shared = _Shared(server)
    return found


class _Reader:
    """Reading: the bytes of each read become requests (scanner first, then httptools).

    Owns what a request's head and body are while they arrive and the current request
    (``req``); hands complete heads and messages to the queue, tells the lifecycle
    where the request stands (for its timeouts), and the writer when a body's reader
    falls behind (a reason to pause reading).
    """

    def __init__(
        self, conn: _Connection, server: Any, queue: _Queue, writer: _Writer, life: _Lifecycle
    ) -> None:
        cfg = server.config
        self.conn = conn  # what each request it makes answers through
        self.queue = queue
        self.writer = writer
        self.life = life
        self.max_url, self.max_head, self.max_headers, self.max_body = head_limits(cfg)
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
        # httptools has begun a message it has not completed; between messages it holds
        # nothing, so heads go to the scanner first.
        self.in_message = False
        self.followed = False  # the last read ended in httptools (and frames may hold bytes)
        self.in_read = False  # inside read(): what it answers leaves when it ends
        self.scanned_left = 0  # body bytes still due to a scanned request
        self.req: Optional[Request] = None
        self.dispatched = False  # req has been handed to the queue

    def cut(self) -> None:
        """Forget the connection once it is lost: nothing cycles."""
        self.conn = None  # type: ignore[assignment]

    def lost(self, gone: ClientDisconnected) -> None:
        """The connection is lost: a request still arriving never completes."""
        self.parser = None  # it holds bound methods of the reader: break the cycle
        req = self.req
        if req is not None:
            req._abort(gone)
            self.req = None
            self.life.read_done()

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
            self.dispatched = True
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
            self.body_size = 0
            self.life.head_done()
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
            self.life.head_begun()
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
            if primitives.is_name(name, b"host"):
                self.hosts.append(value)
        elif size == 6:
            if primitives.is_name(name, b"expect"):
                self.expect = value.lower() == b"100-continue"
        elif size == 10:
            if primitives.is_name(name, b"connection") and _strict.asks_keep_alive(value):
                self.keep_option = True
        elif size == 12:
            if primitives.is_name(name, b"content-type"):
                # A singleton field (RFC 9110 §8.3): which of two values counts would
                # depend on who reads it. The same value twice says nothing new.
                if self.content_type is None:
                    self.content_type = value
                elif value != self.content_type:
                    raise Reject(400, "Content-Type fields with different values")
        elif size == 14:
            if primitives.is_name(name, b"content-length"):
                self.content_length = int(value)  # llhttp has checked the digits
        elif size == 17 and primitives.is_name(name, b"transfer-encoding"):
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
        self.expect = self.in_head = self.keep_option = False
        self.head_size = self.content_length = self.body_size = 0
        self.life.head_done()
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
            assert self.req is not None  # opened just now
            self.queue.upgrade_asked(self.req)

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
            self.life.drain_on_close()
        else:
            invalid_method = isinstance(exc, HttpParserInvalidMethodError)
            refusal = _strict.parse_error(invalid_method, self.frames.pending(), str(exc))
            self.fail(refusal.status, refusal.reason)
        self.frames.stop()

    def callback_failed(self, exc: HttpParserCallbackError) -> None:
        cause = exc.__context__
        if isinstance(cause, Reject):
            self.fail(cause.status, cause.reason)
        else:
            _outcomes.log.error("internal error in a parser callback", exc_info=cause or exc)
            self.fail(500, "internal error in a parser callback")

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
                self.fail(431, "unfinished head or trailer section past the size limits")

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
        if self.writer.started is not None:
            self.writer.timed(req)
        self.advanced = True
        self.req = req
        self.dispatched = False
        self.life.opened()

    def body(self, body: bytes) -> None:
        self.body_size += len(body)
        self.advanced = True
        self.life.body_came()
        if self.req is not None and self.req._feed(body):
            self.writer.pause(PAUSE_BODY)

    def message_done(self) -> None:
        req = self.req
        self.advanced = True
        if req is None:
            self.trailers = None
            return
        self.req = None
        self.life.read_done()
        if not req.keep_alive:
            self.life.to(LAST)  # the client's last request: nothing after it is processed
        if self.trailers is not None:  # only httptools reports trailers
            req._trailers = self.trailers
            self.trailers = None
        req._finish()
        if not self.dispatched:
            self.dispatched = True
            self.queue.dispatch(req)

    def fail(self, status: int, reason: str) -> None:
        """The input is unusable: the current request, if any, is forgotten, and the
        queue answers *status* in turn (see ``_Queue.fail``)."""
        req = self.req
        line = None  # the access log's record of a refusal that is not a request
        if req is None and self.writer.access_log is not None:
            line = self.refused_line()
        self.in_head = False
        self.req = None
        self.life.read_done()
        self.queue.fail(status, reason, req, self.dispatched, line)

    def refused_line(self) -> bytes:
        """The request line of the head being refused, as far as it came (b"" if none)."""
        if self.line is not None:
            return self.line
        return self.frames.pending().partition(b"\r\n")[0]


class _Queue:
    """The response queue: runs handlers and sends their answers in request order.

    Owns the answers still owed (``pending``), the pipelining limit, the eager
    first step of each handler, the server's own error answers, and the upgrade seam.
    Calls the writer and the lifecycle; what it cannot finish alone (a Task's
    outcome, a protocol switch whose turn has come) goes through the connection.
    """

    def __init__(self, conn: _Connection, server: Any, writer: _Writer, life: _Lifecycle) -> None:
        self.conn = conn  # its handlers' Tasks report to it (``_Connection._handler_done``)
        # That report, bound once per connection rather than once per answer.
        self.report: Any = conn._handler_done
        self.writer = writer
        self.life = life
        self.app = server.app
        # A handler that runs none of the application here (the WSGI layer's) is
        # called in C, without the context each call would get.
        self.launches = isinstance(self.app, primitives.Launcher)
        self.max_pipeline = server.config.max_pipelined
        self.refusals = server.refusals
        self.debug = server.config.debug  # the rule that refused goes in the answer's body
        # A list, not a deque: empty, it is 56 bytes, not 600, on every idle connection.
        self.pending: List[_Slot] = []
        self.upgrade: Optional[Request] = None  # the request that asked to switch protocols
        self.tail = b""  # what the client sent after that request's head

    def cut(self) -> None:
        """Forget the connection once it is lost: nothing cycles."""
        self.conn = None  # type: ignore[assignment]
        self.report = None

    def dispatch(self, req: Request) -> None:
        """Hand *req* to its handler, or keep it until the queue has room."""
        if self.writer.write_paused or len(self.pending) >= self.max_pipeline:
            # Backlogged: keep the request, run its handler when the queue drains.
            slot = _Slot(req, None)
            slot.deferred = True
            self.enqueue(slot)
            return
        result = self.call(req)
        if not self.pending and type(result) is Response:
            self.writer.respond(req, result, False)
            self.writer.spill()
            return
        slot = _Slot(req, None)
        self.enqueue(slot)
        self.settle(slot, result)
        self.send_ready()

    def call(self, req: Request) -> Any:
        """The handler's answer to *req*: a response, or the future of one."""
        if self.launches:
            return self.launch(req)
        return primitives.call_handler(self.app, req)

    def launch(self, req: Request) -> Any:
        """A ``Launcher``'s answer to *req*; one that fails to start is answered 500.
        Apart from ``call``, so that the other handlers' path has no ``try``."""
        try:
            return cython.cast(primitives.Launcher, self.app).launch(req)
        except Exception as exc:
            return _outcomes.failed(req, exc)

    def settle(self, slot: _Slot, result: Any) -> None:
        if isinstance(result, primitives.Landing):
            # Told where its response goes: no callback object per request.
            landing = result
            landing.slot = slot
            landing.on_done = self.report
            slot.task = result
        elif primitives.is_future(result):
            slot.task = result
            result.add_done_callback(partial(self.report, slot))
        else:
            slot.response = result

    def enqueue(self, slot: _Slot) -> None:
        self.pending.append(slot)
        if len(self.pending) > self.max_pipeline:
            self.writer.pause(PAUSE_PIPELINE)

    def handler_done(self, slot: _Slot, task: asyncio.Task[Any]) -> bool:
        """The Task of *slot*'s handler finished: whether its answer is now the next to go."""
        assert slot.request is not None
        if self.life.state == GONE or slot.response is not None:
            # The connection is gone, or the server answered in the handler's place.
            _outcomes.discard(task, slot.request)
            return False
        response = primitives.settled(task)
        if response is None:  # failed, cancelled, or not a response: logged, answered
            response = _outcomes.outcome(task, slot.request)
        slot.response = response
        return len(self.pending) > 0 and self.pending[0] is slot

    def send_ready(self) -> None:
        """Write every ready response at the head of the queue, in order.

        It stops at a protocol switch whose turn has come: the connection makes it
        (``switch_due``) once the read that brought its head has ended.
        """
        pending = self.pending
        writer = self.writer
        while pending and self.life.state < CLOSING and writer.stream_task is None:
            slot = pending[0]
            if slot.deferred:
                if writer.write_paused:
                    break
                slot.deferred = False
                assert slot.request is not None  # a deferred slot's request waits in it
                self.settle(slot, self.call(slot.request))
            response = slot.response
            if response is None:
                req = slot.request
                if req is not None and req._expect is None:
                    writer.continue_(req)
                break
            if type(response) is bytes:  # an error answer of the server's own: the last
                del pending[0]
                writer.write(response)
                self.life.to(CLOSING)
                break
            req = slot.request
            assert req is not None
            if type(response) is SwitchProtocols:
                if req is self.upgrade:
                    break  # its turn: the connection switches once the read holding the tail ends
                response = slot.response = _outcomes.not_asked(req)
            if primitives.is_streaming(response):
                writer.respond(req, response, len(pending) > 1)
                break  # the slot leaves the queue when the stream ends (stream_sent)
            # Not pop(0): compiled, a list less than half full pops through a method call.
            del pending[0]
            writer.respond(req, response, len(pending) > 0)
            writer.spill()
        if writer.paused & PAUSE_PIPELINE and len(pending) <= self.max_pipeline // 2:
            writer.unpause(PAUSE_PIPELINE)

    def stream_sent(self) -> None:
        """The streaming answer at the head of the queue went out whole."""
        del self.pending[0]

    def upgrade_asked(self, req: Request) -> None:
        """*req*, just read, asks to switch protocols (see ``upgrading``)."""
        self.upgrade = req

    def upgrading(self, tail: bytes) -> None:
        """The request just read asks to switch protocols: nothing after its head is HTTP.

        Its handler decides: ``SwitchProtocols`` hands the connection over (``switch_due``),
        anything else is answered as the connection's last response.
        """
        self.life.to(LAST)
        self.tail = tail
        self.writer.pause(PAUSE_UPGRADE)  # until the switch, or for good

    def more_tail(self, data: Any) -> None:
        """A read already under way when reading paused: it belongs to the next protocol."""
        self.tail += data

    def switch_due(self) -> Optional[SwitchProtocols]:
        """The protocol switch whose turn has come, taken off the queue; else None.

        Its turn has come when ``send_ready`` stopped at it: every earlier answer has left.
        """
        pending = self.pending
        if not pending or self.life.state >= CLOSING or self.writer.stream_task is not None:
            return None
        slot = pending[0]
        switch = slot.response
        if slot.request is not self.upgrade or type(switch) is not SwitchProtocols:
            return None
        del pending[0]
        return switch

    def fail(
        self,
        status: int,
        reason: str,
        req: Optional[Request],
        dispatched: bool,
        line: Optional[bytes],
    ) -> None:
        """The input is unusable: answer *status* in turn and close.

        *req* is the request being read, if any (*dispatched*: its handler has it);
        *line*, the refused request line for the access log when there is no request.
        *reason*, the rule that refused, is logged (see ``_connection_log.Refusals``),
        and with the ``debug`` setting also sent in the answer's body.
        """
        life = self.life
        life.to(LAST)
        life.drain_on_close()  # the client may still be sending: let it read our answer
        client = self.conn.client
        self.refusals.report(client, status, reason)
        err = error_response(status, primitives.date_block(), reason if self.debug else "")
        if req is not None and dispatched:
            # The handler already has this request: answer in its place unless it has answered.
            req._abort(ClientDisconnected("malformed request body"))
            for slot in self.pending:
                if slot.request is req:
                    if slot.response is None:
                        self.writer.log_answer(req, status, client, line)
                        slot.response = err  # handler_done ignores the handler's result
                        slot.deferred = False
                        if slot.task is not None:
                            slot.task.cancel()
                        self.send_ready()
                    return
            life.to(CLOSING)  # its answer is already out
            return
        self.writer.log_answer(req, status, client, line)
        if self.pending:
            self.enqueue(_Slot(None, err))
        else:
            self.writer.write(err)
            life.to(CLOSING)

    def abandon(self, gone: ClientDisconnected) -> None:
        """Nobody is left to read the answers owed: stop the work behind them."""
        self.upgrade, self.tail = None, b""
        streaming = self.writer.stream_task is not None  # the first answer's body is going out
        for slot in self.pending:
            if slot.request is not None:
                slot.request._abort(gone)
            if slot.task is not None:
                _outcomes.abandon(slot.task)
            if primitives.is_streaming(slot.response) and not streaming:
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

    Knows the transport, the output buffer and the lifecycle below it; the end of a
    streaming body is reported to the connection (``_Connection._stream_done``).
    """

    def __init__(self, conn: _Connection, server: Any, life: _Lifecycle) -> None:
        self.conn = conn  # what streaming bodies write through, and report their end to
        self.life = life
        self.transport: Any = None
        self.out = primitives.Output()
        self.response_parts = shared(server).response_parts
        self.serializing = False  # inside serialize(): no I/O, no change of state
        self.paused = 0  # why reading is paused: PAUSE_* bits
        self.write_paused = False
        self.room_waiter: Optional[asyncio.Future[None]] = None
        self.stream_task: Optional[asyncio.Task[None]] = None
        self.access_log = server.access_log  # an AccessLog: a line per answer
        # When each request still unanswered was read, if the access log is on.
        self.started: Optional[dict[Request, float]] = None if self.access_log is None else {}
        # Without the server's own Server or Date field, every answer is written as if it
        # had set that one itself (only the other line of the cached block goes out).
        self.omit = server.omit
        self.extra = server.extra_head  # fields the server adds to every answer, or None

    def cut(self) -> None:
        """Forget the connection once it is lost: nothing cycles."""
        self.conn = None  # type: ignore[assignment]

    def attach(self, transport: Any) -> None:
        """The connection is made: answers go to *transport*."""
        self.transport = transport

    def respond(self, req: Request, response: Any, owed_after: bool) -> None:
        """Serialize *response* to *req* into the output buffer (head of the line only).

        *owed_after*: answers to later requests are still owed after this one.
        """
        parts = self.response_parts  # the server's: read into locals before anything else runs
        status = parts.read(response)
        if status < 100:
            self.respond(req, _outcomes.unservable(req, invalid_field(response)), owed_after)
            return
        flags = parts.flags | self.omit
        field_lines = parts.head
        body = parts.body
        if self.access_log is not None:
            self.log_access(req, status, flags)
        keep = (
            req.keep_alive
            and req._body_done
            and not flags & FLAG_CLOSE
            and not self.life.through(owed_after)
        )
        has_body = status >= 200 and status != 204 and status != 304
        send_body = has_body and not req._is_head
        chunked = False
        inline_body = (
            send_body and body is not None and (len(body) < LARGE_BODY or self.serializing)
        )
        line = STATUS_LINE_TABLE[status]
        if flags & FLAG_STATUS_LINE:  # the application's own line: the head's first
            cut = field_lines.find(b"\n") + 1
            if cut:
                line, field_lines = field_lines[:cut], field_lines[cut:]
        block = primitives.date_block()
        out = self.out
        # Room for the longest head this can be, so the pieces below need no checks.
        out.reserve(
            len(line)
            + len(block)
            + len(field_lines)
            + HEAD_EXTRA
            + (len(body) if inline_body else 0)
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
        out.put(field_lines)
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
            if not keep and not self.serializing:
                self.life.to(CLOSING)
                if not req._body_done:
                    self.life.drain_on_close()
            if req._chunks is not None:
                req._release()  # answered: what the handler left unread goes (see the class doc)
        else:
            length = responses.declared_length(response) if flags & FLAG_CONTENT_LENGTH else -1
            task = asyncio.get_running_loop().create_task(
                _streaming.stream_body(self.conn, response, chunked, send_body, length)
            )
            self.stream_task = task
            task.add_done_callback(partial(self.conn._stream_done, req, keep))

    def stream_ended(self) -> bool:
        """The streaming body's Task ended: whether the transport is still there."""
        self.stream_task = None
        return self.transport is not None

    def serialize(self, req: Request, response: Any) -> bytes:
        """The bytes ``respond`` writes for *response*, taken back out of the buffer."""
        out = self.out
        start = out.size()
        self.serializing = True  # keeps even a large body in the buffer
        try:
            self.respond(req, response, False)
            answer: bytes = out.since(start)
            return answer
        finally:
            out.truncate(start)
            self.serializing = False

    def timed(self, req: Request) -> None:
        """Note when *req* was read, for the access log's duration."""
        assert self.started is not None
        self.started[req] = perf_counter()

    def log_access(self, req: Request, status: int, flags: int) -> None:
        """The access log's record of the answer being written (out of ``respond``'s way)."""
        started = self.started
        assert started is not None  # kept whenever the access log is on
        parts = self.response_parts
        when = started.pop(req, None)
        self.access_log.log(req, status, flags, parts.head, parts.body, when, parts.length)

    def log_answer(
        self,
        req: Optional[Request],
        status: int,
        client: Optional[Tuple[str, int]],
        line: Optional[bytes],
    ) -> None:
        """The access-log line of an answer of the server's own (when the log is on): to
        *req*, or to what *client* sent, whose request line was *line*."""
        access = self.access_log
        if access is not None:
            if req is not None:
                started = self.started
                when = started.pop(req, None) if started is not None else None
                access.log(req, status, 0, b"", None, when)
            else:
                access.refused(client, line, status)

    def continue_(self, req: Request) -> None:
        """``100 Continue``: the handler reads the body it was asked about."""
        req._expect = False
        if not req._body_done and self.life.state < CLOSING:
            self.out.write(CONTINUE)

    def write(self, data: bytes) -> None:
        """Buffer *data*, bytes already serialized, after everything before them."""
        self.out.write(data)

    def write_out(self) -> None:
        """Hand the buffered bytes to the transport."""
        if self.out.size():
            self.transport.write(self.out.take())

    def spill(self) -> None:
        """Write out early past the high-water mark: the transport's flow control sees
        it before the next answer is produced."""
        if self.out.size() > WRITE_HIGH_WATER:
            self.write_out()

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
    docstring). At the bottom of the parts, it calls none of them: the reader tells
    it where the request being read stands (``head_begun`` ... ``read_done``), the
    others move its state, and ``tick``, the server's sweep, enforces every timeout
    from the facts the connection gives it, saying which one fired.
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
        self.reading = False  # a request's head is complete and its message is not
        self.requests = 0  # requests read
        self.head_ticks = 0  # sweeps since the head being read began
        self.body_ticks = 0  # sweeps since the body being read last brought bytes
        self.body_progress = False  # it brought some since the last sweep
        self.linger_ticks = 0  # sweeps spent lingering
        self.write_ticks = 0
        self.idle = 0
        self.seen = 0  # requests read by the last sweep that saw the connection busy

    def to(self, state: int) -> None:
        """Move the lifecycle forward to *state* (never back)."""
        if self.state < state:
            self.state = state

    def through(self, owed: bool) -> bool:
        """Whether the connection closes once its output is out (the one closing rule):
        it is closing, or no request is taken any more, none is being read and no
        answer is owed (*owed*) besides what is written."""
        state = self.state
        return state >= CLOSING or (state == LAST and not owed and not self.reading)

    def drain_on_close(self) -> None:
        """The client may still be sending: close by half-closing and draining input."""
        self.half_close = True

    def begin_shutdown(self) -> None:
        """The server is stopping: the next request opened is the connection's last."""
        self.draining = True

    def head_begun(self) -> None:
        """A request's head has begun arriving (the head timeout runs from here)."""
        self.head_ticks = 0

    def head_done(self) -> None:
        """A request's head is complete (the body timeout runs from here)."""
        self.body_ticks = 0
        self.body_progress = False

    def opened(self) -> None:
        """The complete head became the current request: it is read until its end."""
        self.reading = True
        self.requests += 1

    def body_came(self) -> None:
        """The request being read brought body bytes."""
        self.body_progress = True

    def read_done(self) -> None:
        """The request being read is complete, or forgotten."""
        self.reading = False

    def recently_busy(self) -> bool:
        """Whether a request was read since the last sweep that saw the connection busy."""
        return self.requests != self.seen

    def unpark(self, left: int) -> None:
        """The sweep takes the idle connection back, *left* sweeps before its deadline."""
        self.idle = self.idle_limit - left

    def close(self, transport: Any) -> bool:
        """Close *transport* as ``half_close`` says; whether that began lingering (then
        every reason to pause reading is lifted: the input is drained)."""
        if not self.half_close:
            transport.close()
        elif self.state != LINGERING and transport.can_write_eof():
            # Closing outright while the client still sends would make the kernel
            # reset the connection and destroy our answer in flight (RFC 9112 §9.6).
            self.state = LINGERING
            self.linger_ticks = 0
            transport.write_eof()
            return True
        elif self.state != LINGERING:
            transport.close()
        return False

    def tick(self, transport: Any, write_paused: bool, in_head: bool, owed: bool) -> int:
        """One sweep of the server: enforces every timeout of this connection.

        *transport* is the connection's, *write_paused* whether it asked us to stop
        writing, *in_head* whether a request's head is arriving, *owed* whether answers
        are owed. Returns how many sweeps the connection may be left alone for when it
        is idle (its idle deadline; only a read can change that first), 0 when it must
        be ticked at the next sweep, or the ``TIMED_OUT_*`` that the connection acts on
        (an idle connection is ``CLOSING`` by then).
        """
        if self.state == LINGERING:
            self.linger_ticks += 1
            if self.linger_ticks >= self.linger_limit:
                transport.close()
            return 0
        if write_paused:
            self.write_ticks += 1
            if self.write_ticks >= self.write_limit:
                transport.abort()  # the client stopped reading
            return 0
        self.write_ticks = 0
        if in_head:
            self.head_ticks += 1
            if self.head_ticks >= self.head_limit:
                return TIMED_OUT_HEAD
        elif self.reading:
            if self.body_progress:
                self.body_progress = False
                self.body_ticks = 0
            else:
                self.body_ticks += 1
                if self.body_ticks >= self.body_limit:
                    return TIMED_OUT_BODY
        elif owed or self.requests != self.seen:
            self.seen = self.requests
            self.idle = 0
            if not owed:
                return self.idle_limit  # answered since the last sweep: idle from now on
        else:
            self.idle += 1
            if self.idle < self.idle_limit:
                return self.idle_limit - self.idle
            self.to(CLOSING)
            return TIMED_OUT_IDLE
        return 0


class _Connection:
    """One connection: the asyncio callbacks, and what requests and the server call.

    The work is the parts': ``_Reader``, ``_Queue``, ``_Writer`` and ``_Lifecycle``,
    made bottom up, each given only the parts below it. The connection passes each
    call to the part whose job it is, acts on what the parts report up (a Task's
    outcome, a stream's end, a timeout, a protocol switch whose turn has come), and
    decides when output leaves: at the end of a read, or at once outside one.
    ``HttpProtocol`` adds the asyncio base class.
    """

    def __init__(self, server: Any) -> None:
        self.server = server
        self.client: Optional[Tuple[str, int]] = None
        self.scheme: str = server.scheme
        # The server's sweep keeps these (Server._sweep): the sweep the connection is due
        # at, its place there, and whether it is parked idle (a read must wake it).
        self.sweep_due = 0
        self.sweep_slot = 0
        self.parked = False
        self.flush_due = False  # a flush is scheduled for the next loop turn (_flush_soon)
        self._shared = shared(server)
        life = self._life = _Lifecycle(server)
        writer = self._writer = _Writer(self, server, life)
        queue = self._queue = _Queue(self, server, writer, life)
        self._reader = _Reader(self, server, queue, writer, life)

    # -- asyncio callbacks -----------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self._writer.attach(transport)
        if not self.server.track(self):
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
        self._life.to(GONE)
        gone = ClientDisconnected("client disconnected")
        self._writer.gone(gone)
        self._reader.lost(gone)
        self._queue.abandon(gone)
        self.server.forget(self)
        # The parts refer to the connection; cut those references so that a lost
        # connection is freed at once, not by the cyclic GC long after. What may still
        # call in (a handler's body reader, a finishing Task) stops at the GONE checks.
        self._reader.cut()
        self._queue.cut()
        self._writer.cut()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._reader.buffer

    @cython.locals(nbytes=cython.Py_ssize_t, state=cython.int)
    def buffer_updated(self, nbytes: int) -> None:
        if self.parked:
            self.server.wake(self)  # the timeouts of what this read begins apply from now
        reader = self._reader
        if nbytes < 0 or nbytes > reader.buffer_size:
            # The event loop never does this; the compiled scanner reads the buffer in C.
            raise ValueError(f"buffer_updated({nbytes}) outside a {reader.buffer_size}-byte buffer")
        life = self._life
        queue = self._queue
        state = life.state
        if queue.upgrade is not None and state < CLOSING:
            # A read already under way when reading paused: it belongs to the next protocol.
            queue.more_tail(reader.buffer[:nbytes])
            return
        if life.through(False):
            # Nothing new is accepted (RFC 9112 §9.6: not even after the client's last
            # request); the input is dropped, and drained while closing so that it does
            # not turn the close into a reset.
            life.drain_on_close()
            return
        reader.read(nbytes)
        if queue.upgrade is not None:
            queue.send_ready()  # a switch the handler decided during this read happens now
            self._deliver()
        else:
            self._flush()

    def pause_writing(self) -> None:
        if self._life.state != GONE:
            self._writer.pause_writing()

    def resume_writing(self) -> None:
        if self._life.state != GONE:
            self._writer.resume_writing()
            if self._queue.pending and self._writer.transport is not None:
                self._queue.send_ready()  # backlogged requests may run now
                self._deliver()

    # -- what the parts report up ----------------------------------------------

    def _handler_done(self, slot: _Slot, task: asyncio.Task[Any]) -> None:
        """A handler's Task finished (its done callback)."""
        if self._queue.handler_done(slot, task):
            self._queue.send_ready()
            if not self._switched():
                # Handlers that finish in the same loop turn (pipelined requests) leave
                # in one write: the flush comes one turn later.
                self._flush_soon()

    def _stream_done(self, req: Request, keep: bool, task: asyncio.Task[None]) -> None:
        """A streaming body's Task ended (its done callback)."""
        if not self._writer.stream_ended():
            return
        req._release()  # answered: what the handler left unread goes (see _Writer)
        if not _streaming.streamed(req, task):
            # The head is already out: the only honest signal left is closing.
            self._life.to(CLOSING)
            self._flush()
            return
        self._queue.stream_sent()
        if not keep:
            self._life.to(CLOSING)
        self._queue.send_ready()
        self._deliver()

    # -- when output leaves ----------------------------------------------------

    def _flush(self) -> None:
        """Write out, and close if the lifecycle says the connection is through."""
        writer = self._writer
        transport = writer.transport
        if transport is None:
            return
        writer.write_out()
        life = self._life
        if life.through(len(self._queue.pending) > 0) and life.close(transport):
            writer.unpause(-1)  # lingering: drain the input, whatever held it back

    def _deliver(self) -> None:
        """After answers were written outside the parser: switch protocols if that
        answer's turn has come, else flush, unless a read is under way (it flushes)."""
        if not self._switched() and not self._reader.in_read:
            self._flush()

    def _switched(self) -> bool:
        """Hand the connection over if a protocol switch's turn has come and no read is
        under way (the read that brought its head holds the tail); whether it did."""
        queue = self._queue
        if queue.upgrade is None or self._reader.in_read:
            return False
        switch = queue.switch_due()
        if switch is None:
            return False
        writer = self._writer
        transport, tail = writer.transport, queue.tail
        writer.write(switch.answer(primitives.date_block()))
        writer.write_out()
        self.connection_lost(None)  # this protocol is done with the connection
        _handover.hand_over(transport, switch, tail)
        return True

    def _flush_soon(self) -> None:
        """Flush once the callbacks of this loop turn have run (see ``_handler_done``)."""
        if not self.flush_due:
            self.flush_due = True
            flushing = self._shared.flushing
            flushing.append(self)
            if len(flushing) == 1:
                self._shared.flush_soon()

    def _flush_later(self) -> None:
        self.flush_due = False
        if not self._reader.in_read:
            self._flush()

    # -- what Request and the shared slow paths call ---------------------------

    def _send_continue(self, req: Request) -> None:
        if self._life.state == GONE:
            return
        if not self._queue.first_is(req):
            req._expect = None  # owed: send_ready sends it when this request's turn comes
            return
        self._writer.continue_(req)
        if not self._reader.in_read:
            self._flush()

    def _resume_body(self) -> None:
        self._writer.unpause(PAUSE_BODY)

    def _send(self, data: bytes) -> None:
        self._writer.write(data)
        if not self._reader.in_read:
            self._flush()

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
        return sock.fileno(), self.server.config.write_timeout

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
        return self._writer.serialize(req, response)

    # -- what the server calls -------------------------------------------------

    def shutdown(self) -> None:
        """Accept no new request; close now if idle, else after the last answer.

        An answer still owed goes out with ``Connection: close``, which tells the
        client that nothing it sent after that request was taken. An idle connection
        that was busy a moment ago (a request since the last sweep) most likely has
        its next request on the wire already, and closing it now would reset that
        request: it gets ``DRAIN_GRACE`` more, and the next request to arrive is
        answered, with ``Connection: close``, as the last; if none comes, it closes.
        So does one that has sent no request yet: accepted a moment ago, its first
        request is most likely on the wire too (a worker recycled under load).
        """
        life = self._life
        busy = life.reading or self._queue.pending
        fresh = life.requests == 0 or life.recently_busy()
        if life.state == OPEN and not busy and fresh:
            life.begin_shutdown()
            asyncio.get_running_loop().call_later(DRAIN_GRACE, self._drained)
            return
        self._drained()

    def _drained(self) -> None:
        if self._life.state != GONE:
            self._life.to(LAST)
            if not self._reader.in_read:
                self._flush()

    def tick(self) -> int:
        """Called once per sweep of the server: enforces every timeout of this connection.

        Returns how many sweeps it may be left alone for, unless it reads (see ``unpark``):
        0 when it must be ticked at the next sweep, -1 when it is gone.
        """
        if self._life.state == GONE:
            return -1
        writer = self._writer
        transport = writer.transport
        if transport is None:
            return 0
        left = self._life.tick(
            transport, writer.write_paused, self._reader.in_head, len(self._queue.pending) > 0
        )
        if left >= 0:
            return left
        if left == TIMED_OUT_IDLE:
            _connection_log.idle_expired(transport, writer.paused)
            self._flush()
            return 0
        if left == TIMED_OUT_HEAD:
            self._reader.fail(408, "request head not complete within header_timeout")
        else:
            self._reader.fail(408, "request body stalled for body_timeout")
        self._deliver()
        return 0

    def unpark(self, left: int) -> None:
        """The sweep takes the idle connection back, *left* sweeps before its idle deadline
        (the sweeps it spent parked count as idle ones)."""
        self.parked = False
        self._life.unpark(left)

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
