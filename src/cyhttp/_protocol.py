"""The HTTP/1.1 connection protocol: the one source of both cores.

Imported as is, this module is the pure-Python core. The build compiles it once
more as ``cyhttp._protocol_c`` (a copy made by ``setup.py``, typed by
``_protocol_c.pxd``: Cython's pure-Python mode), which is the compiled core. The
two differ only in the primitives they import (``_primitives.pyx`` in C,
``_primitives_py.py`` their twins) and in the ``Request`` class they make.

Theory of operation
-------------------
One ``HttpProtocol`` serves one connection. uvloop (or asyncio) reads straight
into a buffer the protocol owns (``get_buffer``/``buffer_updated``).

* Reading. At a message boundary each head is first offered to the
  ``Scanner``, which in the compiled build reads plain heads straight from the
  read buffer with no parser callbacks (``_head.pyx``; the pure scanner accepts
  nothing). Whatever it does not accept, and every read after it, is fed to an
  ``httptools.HttpRequestParser`` until httptools is between messages again, so
  httptools decides every case that is not plain; its callbacks (``on_*``)
  build the request, and ``_frames`` follows the request lines it does not report.
  Either way a complete, acceptable head becomes the current request (``_open``).
* Dispatch. A request is *dispatched* to the handler when its message is
  complete, or, if its body is still arriving when a read ends, at the end of
  that read (so the handler can stream the body; ``Expect: 100-continue`` lands
  here too). A handler's coroutine is stepped once, eagerly (``call_handler``);
  if it finishes, no Task exists; only a coroutine that really suspends is
  finished inside a Task (``_runner.resume``). Each handler runs in its own
  ``contextvars`` context.
* The queue. Responses go out strictly in request order. While nothing is
  waiting, a finished response is serialized straight into the output buffer;
  otherwise each request gets a ``_Slot`` in ``_pending`` and its answer is
  written as soon as it is ready (``_send_ready``). A request that asks to switch
  protocols is the connection's last: if its handler returns ``SwitchProtocols``,
  once every earlier answer has left the connection is handed to the new protocol
  with the bytes read past the head (``_switch``).
* Writing. Everything produced during one read leaves in one
  ``transport.write`` at the end of that read (``_flush``), but a body of 16 KiB
  or more is handed over as it is, and the buffer is flushed early past the
  256 KiB write high-water mark. Reading pauses for any of four reasons (a bit
  each in ``_paused``): the transport asked us to stop writing, a streaming body
  reader fell behind, too many pipelined requests are waiting, or a protocol
  switch is pending.
* The lifecycle is one state (``_state``), which only moves forward: ``OPEN``
  (requests are taken), ``LAST`` (no new request: the client's last one, a parse
  error, a protocol switch, server shutdown; the answers still owed go out, then
  the connection closes), ``CLOSING`` (close once the output is flushed; nothing
  more is answered), ``LINGERING`` (half-closed after an answer the client may
  not have waited for: input is drained until the client closes or the linger
  timeout), ``GONE`` (the transport was lost or handed to another protocol).
  ``_half_close`` says how to close: by lingering when the client may still be
  sending. The server's sweep calls ``tick``, which enforces every timeout.
"""

from __future__ import annotations

import asyncio
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any, Deque, List, Optional, Tuple

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserInvalidMethodError,
    HttpParserUpgrade,
    HttpRequestParser,
)

from . import _runner, _strict
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


class _Connection:
    """State and logic of one connection; ``HttpProtocol`` adds the asyncio base class."""

    def __init__(self, server: Any) -> None:
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
        self._buffer: memoryview = server.read_buffer
        self._buffer_size = len(self._buffer)
        self._buffer_bytes = self._buffer.obj  # what _frames reads the request lines from
        assert isinstance(self._buffer_bytes, bytearray)
        self._scanner = native.Scanner(self._buffer, cfg)
        self._parser: Optional[HttpRequestParser] = HttpRequestParser(self)
        self._frames = Frames()  # request-line positions for the httptools path
        self._out = native.Output()
        self._fields = native.ResponseFields()
        self._transport: Any = None
        self.client: Optional[Tuple[str, int]] = None
        self._stall_limit = self._max_url + self._max_head + STALL_SLACK
        self._url = b""
        self._headers: List[Tuple[bytes, bytes]] = []
        self._trailers: Optional[List[Tuple[bytes, bytes]]] = None
        self._expect = False
        self._in_head = False  # a request has begun and its head is not complete
        self._advanced = False  # this read completed a head or a message, or brought body
        self._stalled = 0  # bytes of reads in a message that did not advance it
        self._head_size = 0
        self._hosts: List[bytes] = []  # Host values
        self._codings: List[bytes] = []  # Transfer-Encoding values
        self._keep_option = False  # a Connection field asked for keep-alive
        self._content_length = 0
        self._body_size = 0
        self._body_progress = False
        # httptools has begun a message it has not completed; between messages it holds
        # nothing, so heads go to the scanner first.
        self._in_message = False
        self._followed = False  # the last read ended in httptools (and _frames may hold bytes)
        self._scanned_left = 0  # body bytes still due to a scanned request
        self._req: Optional[Request] = None
        self._upgrade: Optional[Request] = None  # the request that asked to switch protocols
        self._tail = b""  # what the client sent after that request's head
        self._dispatched = False
        self._pending: Deque[_Slot] = deque()
        self._in_read = False
        self._state = OPEN
        self._serializing = False  # inside serialize(): no I/O
        self._half_close = False  # close by half-closing and draining input (see _close)
        self._linger_ticks = 0  # sweeps spent lingering
        self._paused = 0
        self._write_paused = False
        self._room_waiter: Optional[asyncio.Future[None]] = None
        self._stream_task: Optional[asyncio.Task[None]] = None
        self._requests = 0
        self._seen = 0
        self._idle = 0
        self._head_ticks = 0
        self._body_ticks = 0
        self._write_ticks = 0

    # -- asyncio callbacks ---------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        if not self._server.track(self):
            self._to(CLOSING)
            transport.close()
            return
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.client = (peer[0], peer[1])
        transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)

    @cython.locals(slot=_Slot)
    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self._transport = None
        self._state = GONE
        self._parser = None  # it holds bound methods of ours: break the cycle
        self._out.truncate(0)
        self._upgrade, self._tail = None, b""
        gone = ClientDisconnected("client disconnected")
        if self._req is not None:
            self._req._abort(gone)
            self._req = None
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

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def pause_writing(self) -> None:
        self._write_paused = True
        self._pause(PAUSE_WRITE)

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter = self._room_waiter
        if waiter is not None:
            self._room_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        self._unpause(PAUSE_WRITE)
        if self._pending and self._transport is not None:
            self._send_ready()  # backlogged requests may run now

    # -- reading ---------------------------------------------------------------

    @cython.locals(nbytes=cython.Py_ssize_t, done=cython.Py_ssize_t, boundary=cython.bint)
    def buffer_updated(self, nbytes: int) -> None:
        """Take the *nbytes* just read into the buffer: heads to the scanner, then httptools."""
        if nbytes < 0 or nbytes > self._buffer_size:
            # The event loop never does this; the compiled scanner reads the buffer in C.
            raise ValueError(f"buffer_updated({nbytes}) outside a {self._buffer_size}-byte buffer")
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
        done = 0
        boundary = not self._in_message and (not self._followed or self._frames.at_boundary())
        if boundary:
            done = self._scan(nbytes)
        self._followed = done < nbytes
        if self._followed:
            if boundary:
                self._frames.restart()  # httptools starts at a message boundary
            data = self._buffer[done:nbytes]
            self._frames.begin(self._buffer_bytes, done, nbytes)
            try:
                self._parser.feed_data(data)  # type: ignore[union-attr]
                self._frames.end()
            except HttpParserUpgrade as exc:
                self._upgrading(bytes(self._buffer[done + exc.args[0] : nbytes]))
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

    # -- reading: the head scanner -------------------------------------------

    def _scan(self, nbytes: int) -> int:
        """Answer the plain requests at the start of this read (see ``Scanner``).

        Returns how far it got: httptools takes the rest, from a message boundary.
        """
        scanner = self._scanner
        pos = 0
        if self._scanned_left:
            pos = self._scanned_body(0, nbytes)
            if self._scanned_left:
                return pos
            self._message_done()
        while pos < nbytes and self._state == OPEN:
            size = scanner.scan(pos, nbytes)
            if size == 0:
                break
            self._body_size = self._body_ticks = 0
            self._body_progress = False
            start = pos + scanner.head.target
            self._open(
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
                self._scanned_left = scanner.head.length
                pos += self._scanned_body(pos, nbytes)
                if self._scanned_left:
                    break  # the rest of the body comes in later reads
            self._message_done()
        return pos

    def _scanned_body(self, pos: int, end: int) -> int:
        """Take what is here of the body due to a scanned request; how much that was."""
        size = end - pos
        if size > self._scanned_left:
            size = self._scanned_left
        if size:
            self._scanned_left -= size
            self._body(self._scanner.take(pos, pos + size))
        return size

    # -- reading: parser callbacks -------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message = True

    def on_url(self, url: bytes) -> None:
        if self._url:
            self._url += url
        else:
            # A request's head starts here for the timeouts and the stall guard
            # (cheaper than one more callback; before this the idle sweep applies).
            self._url = url
            self._in_head = True
            self._head_ticks = 0
        if len(self._url) > self._max_url:
            raise Reject(414)

    @cython.locals(name=bytes, value=bytes, size=cython.Py_ssize_t)
    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(value)
        if size and (value[size - 1] == 32 or value[size - 1] == 9):
            value = value.rstrip(b" \t")  # llhttp keeps it; a field value has none (RFC 9110 §5.5)
        if not self._in_head:
            # After the head, httptools reports the trailer section's fields the same way.
            self._on_trailer(name, value)
            return
        size = len(name)
        self._headers.append((name, value))
        self._head_size += size + len(value) + 4
        if self._head_size > self._max_head or len(self._headers) > self._max_headers:
            raise Reject(431)
        # Only the few headers the core acts on are looked at, by length first.
        if size == 4:
            if native.is_name(name, b"host"):
                self._hosts.append(value)
        elif size == 6:
            if native.is_name(name, b"expect"):
                self._expect = value.lower() == b"100-continue"
        elif size == 10:
            if native.is_name(name, b"connection") and _strict.asks_keep_alive(value):
                self._keep_option = True
        elif size == 14:
            if native.is_name(name, b"content-length"):
                self._content_length = int(value)  # llhttp has checked the digits
        elif size == 17 and native.is_name(name, b"transfer-encoding"):
            self._codings.append(value)

    def _on_trailer(self, name: bytes, value: bytes) -> None:
        # Never part of the header section (RFC 9110 §6.5): kept apart for request.trailers,
        # within the same limits as a head (the count restarted when the head completed).
        if self._trailers is None:
            self._trailers = []
        self._trailers.append((name, value))
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self._max_head or len(self._trailers) > self._max_headers:
            raise Reject(431)
        if name.lower() in _strict.FORBIDDEN_TRAILERS:
            raise Reject(400)

    @cython.locals(
        expect=cython.bint,
        keep_option=cython.bint,
        length=cython.ulonglong,
        version=str,
        method=str,
        upgrade=cython.bint,
        status=cython.int,
        keep_alive=cython.bint,
    )
    def on_headers_complete(self) -> None:
        url = self._url
        headers = self._headers
        hosts = self._hosts
        codings = self._codings
        expect = self._expect
        keep_option = self._keep_option
        length = self._content_length
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
        assert parser is not None
        # From the request line, whatever the fields say.
        version = parser.get_http_version()
        method = method_name(parser.get_method())
        upgrade = parser.should_upgrade()
        status = _strict.head_error(line, method, url, version, hosts, codings, upgrade, length)
        if status:
            raise Reject(status)
        if length > self._max_body:
            raise Reject(413)  # refused before a byte of the body is read
        self._frames.body(length, bool(codings))
        # llhttp keeps HTTP/1.0 alive for Proxy-Connection too; only Connection counts.
        # A protocol switch is the connection's last request, whatever the handler says.
        keep_alive = (
            parser.should_keep_alive() and (version == "1.1" or keep_option) and not upgrade
        )
        self._open(method, url, headers, version == "1.0", keep_alive, expect)
        if upgrade:
            self._upgrade = self._req

    def on_body(self, body: bytes) -> None:
        if self._body_size + len(body) > self._max_body:
            raise Reject(413)  # a chunked body ran over
        self._body(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        self._message_done()

    def _refused(self, exc: HttpParserError) -> None:
        """httptools refused the input."""
        if self._state >= LAST:
            # Bytes after the client's last request (RFC 9112 §9.6): not answered, but
            # drained while closing, so that they do not turn the close into a reset.
            self._half_close = True
        else:
            invalid_method = isinstance(exc, HttpParserInvalidMethodError)
            self._fail(_strict.parse_error(invalid_method, self._frames.pending()))
        self._frames.stop()

    def _guard_stall(self, nbytes: int) -> None:
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

    # -- reading: one request, whichever parser read it ----------------------

    def _open(
        self,
        method: str,
        url: bytes,
        headers: Any,
        http10: bool,
        keep_alive: bool,
        expect: bool,
    ) -> None:
        """A complete, acceptable head: it becomes the current request."""
        req = requests.new_request(self, method, url, headers, http10, keep_alive)
        if expect:
            req._expect = True
        self._advanced = True
        self._req = req
        self._dispatched = False
        self._requests += 1

    def _body(self, body: bytes) -> None:
        self._body_size += len(body)
        self._body_progress = self._advanced = True
        if self._req is not None and self._req._feed(body):
            self._pause(PAUSE_BODY)

    def _message_done(self) -> None:
        req = self._req
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

    # -- the queue: handlers and the order of their answers ------------------

    def _dispatch(self, req: Request) -> None:
        self._dispatched = True
        if self._write_paused or len(self._pending) >= self._max_pipeline:
            # Backlogged: keep the request, run its handler when the queue drains.
            slot = _Slot(req, None)
            slot.deferred = True
            self._enqueue(slot)
            return
        result = native.call_handler(self._app, req)
        if not self._pending and type(result) is Response:
            self._respond(req, result, True)
            if self._out.size() > WRITE_HIGH_WATER:
                self._flush()  # let the transport's flow control see it before the next one
            return
        slot = _Slot(req, None)
        self._enqueue(slot)
        self._settle(slot, result)
        self._send_ready()

    def _settle(self, slot: _Slot, result: Any) -> None:
        if native.is_response(result):
            slot.response = result
        else:
            slot.task = result
            result.add_done_callback(partial(self._handler_done, slot))

    def _enqueue(self, slot: _Slot) -> None:
        self._pending.append(slot)
        if len(self._pending) > self._max_pipeline:
            self._pause(PAUSE_PIPELINE)

    @cython.locals(slot=_Slot)
    def _handler_done(self, slot: _Slot, task: asyncio.Task[Any]) -> None:
        assert slot.request is not None
        if self._transport is None or slot.response is not None:
            # The connection is gone, or the server answered in its place.
            _runner.discard(task, slot.request)
            return
        slot.response = _runner.outcome(task, slot.request)
        if self._pending and self._pending[0] is slot:
            self._send_ready()

    def _send_ready(self) -> None:
        """Write every ready response at the head of the queue, in order."""
        pending = self._pending
        while pending and self._state < CLOSING and self._stream_task is None:
            slot = pending[0]
            if slot.deferred:
                if self._write_paused:
                    break
                slot.deferred = False
                self._settle(slot, native.call_handler(self._app, slot.request))
            response = slot.response
            if response is None:
                req = slot.request
                if req is not None and req._expect is None:
                    self._continue(req)
                break
            if type(response) is bytes:  # an error answer of the server's own: the last
                pending.popleft()
                self._out.write(response)
                self._to(CLOSING)
                break
            req = slot.request
            assert req is not None
            if type(response) is SwitchProtocols:
                if req is self._upgrade:
                    if self._in_read:
                        break  # the read that brought the head ends first: it holds the tail
                    pending.popleft()
                    self._switch(response)
                    return
                response = slot.response = _runner.not_asked(req)
            if native.is_streaming(response):
                self._respond(req, response, len(pending) == 1)
                break  # the slot leaves the queue when the stream ends
            pending.popleft()
            self._respond(req, response, not pending)
            if self._out.size() > WRITE_HIGH_WATER:
                self._flush()
        if self._paused & PAUSE_PIPELINE and len(pending) <= self._max_pipeline // 2:
            self._unpause(PAUSE_PIPELINE)
        if not self._in_read:
            self._flush()

    def _upgrading(self, tail: bytes) -> None:
        """The request just read asks to switch protocols: nothing after its head is HTTP.

        Its handler decides: ``SwitchProtocols`` hands the connection over (``_switch``),
        anything else is answered as the connection's last response.
        """
        self._to(LAST)
        self._tail = tail
        self._pause(PAUSE_UPGRADE)  # until the switch, or for good

    def _switch(self, switch: SwitchProtocols) -> None:
        """Every earlier answer has left: answer 101 and give the connection away."""
        transport, tail = self._transport, self._tail
        self._out.write(switch.answer(native.date_block()))
        self._write_out()
        self.connection_lost(None)  # this protocol is done with the connection
        _runner.hand_over(transport, switch, tail)

    def _callback_failed(self, exc: HttpParserCallbackError) -> None:
        cause = exc.__context__
        if isinstance(cause, Reject):
            self._fail(cause.status)
        else:
            _runner.log.error("internal error in a parser callback", exc_info=cause or exc)
            self._fail(500)

    def _fail(self, status: int) -> None:
        """The input is unusable: answer *status* in turn and close."""
        self._to(LAST)
        self._in_head = False
        self._half_close = True  # the client may still be sending: let it read our answer
        req = self._req
        self._req = None
        err = error_response(status, native.date_block())
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
            self._out.write(err)
            self._to(CLOSING)

    # -- writing: serializing answers ----------------------------------------

    def _respond(self, req: Request, response: Any, last: bool) -> None:
        """Serialize *response* to *req* into the output buffer (head of the line only)."""
        fields = self._fields
        status = fields.read(response)
        if status < 100:
            self._respond(req, _runner.unservable(req, invalid_field(response)), last)
            return
        flags = fields.flags
        head = fields.head
        body = fields.body
        keep = (
            req.keep_alive
            and req._body_done
            and not flags & FLAG_CLOSE
            and not (self._state >= LAST and last and self._req is None)
        )
        has_body = status >= 200 and status != 204 and status != 304
        send_body = has_body and not req._is_head
        chunked = False
        inline_body = (
            send_body and body is not None and (len(body) < LARGE_BODY or self._serializing)
        )
        line = STATUS_LINE_TABLE[status]
        block = native.date_block()
        out = self._out
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
        out.put(head)
        if body is not None:
            if has_body and not flags & FLAG_CONTENT_LENGTH:
                out.put_length(len(body))
        else:
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

    def _stream_done(self, req: Request, keep: bool, task: asyncio.Task[None]) -> None:
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

    def _continue(self, req: Request) -> None:
        req._expect = False
        if not req._body_done and self._state < CLOSING:
            self._out.write(CONTINUE)

    # -- writing: to the transport, and its flow control ----------------------

    def _write_out(self) -> None:
        """Hand the buffered bytes to the transport."""
        if self._out.size():
            self._transport.write(self._out.take())

    def _flush(self) -> None:
        transport = self._transport
        if transport is None:
            return
        self._write_out()
        if self._state >= CLOSING or (
            self._state == LAST and not self._pending and self._req is None
        ):
            self._close(transport)

    def _pause(self, reason: int) -> None:
        if not self._paused and self._transport is not None:
            self._transport.pause_reading()
        self._paused |= reason

    def _unpause(self, reason: int) -> None:
        if self._paused & reason:
            self._paused &= ~reason
            if not self._paused and self._transport is not None:
                self._transport.resume_reading()

    # -- the lifecycle -------------------------------------------------------

    def _to(self, state: int) -> None:
        """Move the lifecycle forward to *state* (never back)."""
        if self._state < state:
            self._state = state

    def _close(self, transport: Any) -> None:
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

    def _expire(self) -> None:
        self._fail(408)
        self._flush()

    # -- what Request and the shared slow paths call -------------------------

    @cython.locals(first=_Slot)
    def _send_continue(self, req: Request) -> None:
        first = self._pending[0] if self._pending else None
        if first is not None and first.request is not req:
            req._expect = None  # owed: _send_ready sends it when this request's turn comes
            return
        self._continue(req)
        if not self._in_read:
            self._flush()

    def _resume_body(self) -> None:
        self._unpause(PAUSE_BODY)

    def _send(self, data: bytes) -> None:
        self._out.write(data)
        if not self._in_read:
            self._flush()

    def _write_room(self) -> Optional[asyncio.Future[None]]:
        if self._transport is None:
            raise ClientDisconnected("client disconnected")
        if not self._write_paused:
            return None
        if self._room_waiter is None:
            self._room_waiter = asyncio.get_running_loop().create_future()
        return self._room_waiter

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
        req = requests.new_request(self, method, b"/", [], http_version == "1.0", keep_alive)
        req._body_done = True
        start = self._out.size()
        state = self._state
        self._serializing = True  # keeps even a large body in the buffer
        try:
            self._respond(req, response, True)
            answer: bytes = self._out.since(start)
            return answer
        finally:
            self._out.truncate(start)
            self._state = state
            self._serializing = False

    # -- what the server calls -----------------------------------------------

    def shutdown(self) -> None:
        """Accept no new request; close now if idle, else after the last answer."""
        self._to(LAST)
        if not self._in_read:
            self._flush()

    def tick(self) -> None:
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

    def abort(self) -> None:
        """Drop the connection now (the shutdown timeout ran out)."""
        if self._transport is not None:
            self._transport.abort()


class HttpProtocol(_Connection, asyncio.BufferedProtocol):
    """An HTTP/1.1 server connection.

    Inheriting ``asyncio.BufferedProtocol`` makes the stock asyncio loop read
    into our buffer as uvloop does; in the compiled build the state stays in the
    C fields of ``_Connection``.
    """

    __slots__ = ()
