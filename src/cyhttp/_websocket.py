"""WebSocket connections (RFC 6455, permessage-deflate RFC 7692): the one source of both builds.

Imported as is, this module serves the pure core; ``setup.py`` compiles it once
more as ``cyhttp._websocket_c`` (typed by ``_websocket_c.pxd``), where the frame
parser runs on C integers and unmasking XORs eight bytes at a time.

Theory of operation
-------------------
The handshake (``websocket.py``) makes a ``WebSocket`` before the ``101`` leaves;
``SwitchProtocols`` hands it the transport, and from then on it is the
connection's ``asyncio`` protocol. Reads are parsed into frames as they arrive
(``parse``): input that breaks the protocol fails the connection at once with the
close code that names the fault (1002, 1007, 1009), a close frame is answered and
the connection closed, pings are answered, and whole messages (``str`` for text,
``bytes`` for binary) are queued for the application's ``receive``. A full queue
stops both parsing and reading until the application has taken half of it.

The first small frame of a loop turn goes straight to the transport; those written
after it in the same turn are gathered and leave together at the turn's end, in
one ``transport.write`` (echoing a batch of messages costs two system calls, not
one each, and a lone message waits for nothing). A close frame, a large frame or
64 KiB gathered send what is pending at once. ``send`` waits while the transport
is over its high-water mark. The server's sweep calls ``tick``: keep-alive pings, the
pong timeout, the close handshake's timeout and the write timeout are counted in
sweeps, as the HTTP timeouts are. The connection counts as one of the server's
until the transport is gone *and* the application's task has finished, so a
graceful shutdown (close code 1001) waits for both.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
import zlib
from collections import deque
from typing import Any, Deque, List, Optional

from ._access import logger as access_log
from .request import WebSocketClosed

try:
    import cython
except ImportError:  # Cython is needed only to build the compiled core
    from . import _no_cython as cython  # type: ignore[no-redef]

if cython.compiled:
    from cython.cimports.cpython.bytes import PyBytes_AS_STRING, PyBytes_FromStringAndSize
    from cython.cimports.libc.string import memcpy

log = logging.getLogger("cyhttp.error")

# Opcodes (RFC 6455 §5.2).
CONTINUATION = 0x0
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA

# Close codes (RFC 6455 §7.4.1).
NORMAL = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
NO_STATUS = 1005
ABNORMAL = 1006
INVALID_DATA = 1007
TOO_BIG = 1009
INTERNAL_ERROR = 1011

# States.
OPEN = 0  # messages flow both ways
CLOSING = 1  # a close frame has been sent: waiting for the peer's
CLOSED = 2  # the transport is gone

# What ends every compressed message on the wire and is stripped from it (RFC 7692 §7.2.1).
DEFLATE_TAIL = b"\x00\x00\xff\xff"

# A frame at least this large that has not all arrived is unmasked read by read into
# its payload, instead of gathered whole first: each byte is copied once, not thrice.
STREAMED = 65536

_utf8_decoder = codecs.getincrementaldecoder("utf-8")


def frame_head(opcode: int, length: int, rsv1: bool) -> bytes:
    """The head of a final, unmasked frame (what a server sends)."""
    first = 0x80 | opcode | (0x40 if rsv1 else 0)
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return bytes((first, 126, length >> 8, length & 0xFF))
    return bytes((first, 127)) + length.to_bytes(8, "big")


def unmask(data: bytes, start: int, length: int, mask: bytes) -> bytes:
    """``data[start:start + length]`` XOR the four-byte *mask* (RFC 6455 §5.3)."""
    if cython.compiled:
        out: bytes = payload_buffer(length)
        unmask_into(out, 0, data, start, length, mask)
        return out
    # Plain Python: one XOR of two big integers is the fastest there is.
    whole = mask * ((length >> 2) + 1)
    value = int.from_bytes(data[start : start + length], "little")
    return (value ^ int.from_bytes(whole[:length], "little")).to_bytes(length, "little")


def payload_buffer(length: int) -> Any:
    """Room for a payload that ``unmask_into`` fills: in the compiled build a ``bytes``
    not yet filled (nothing else holds it until it is whole), else a ``bytearray``."""
    if cython.compiled:
        return PyBytes_FromStringAndSize(cython.NULL, length)
    return bytearray(length)


def unmask_into(out: Any, offset: int, data: bytes, start: int, length: int, mask: bytes) -> None:
    """Write ``data[start:start + length]``, unmasked, at *offset* of *out*
    (``payload_buffer``'s): the bytes of a payload from *offset* on."""
    if cython.compiled:
        # Pointers into the buffers in the compiled build (the .pxd's types).
        dst: Any = cython.cast(cython.p_uchar, PyBytes_AS_STRING(out))
        dst += offset
        src: Any = data
        src += start
        quad = key = word = 0
        memcpy(cython.address(quad), cython.cast(cython.p_uchar, mask), 4)
        turn = (offset & 3) << 3
        if turn:  # the payload resumes inside the mask (little-endian, as the XOR below)
            quad = (quad >> turn) | (quad << (32 - turn))
        key = quad
        key |= key << 32
        words = length >> 3
        for i in range(words):
            memcpy(cython.address(word), src + 8 * i, 8)
            word ^= key
            memcpy(dst + 8 * i, cython.address(word), 8)
        for i in range(words << 3, length):
            dst[i] = src[i] ^ mask[(offset + i) & 3]
        return
    turn = offset & 3
    out[offset : offset + length] = unmask(data, start, length, mask[turn:] + mask[:turn])


def valid_close_code(code: int) -> bool:
    """Whether *code* may travel in a close frame (RFC 6455 §7.4, IANA registry)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class Deflate:
    """One connection's permessage-deflate state (RFC 7692), as negotiated.

    Without context takeover a side's zlib object lives only while a message is
    compressed or inflated, so an idle connection holds no zlib state for it.
    """

    def __init__(
        self, server_takeover: bool, client_takeover: bool, server_bits: int, client_bits: int
    ) -> None:
        self.server_takeover = server_takeover
        self.client_takeover = client_takeover
        self.server_bits = server_bits
        self.client_bits = client_bits
        self.compressor: Any = None
        self.inflater: Any = None

    def compress(self, data: bytes) -> bytes:
        """One message's payload, compressed, without the deflate tail."""
        compressor = self.compressor
        if compressor is None:
            # memLevel 5: 16 KiB of hash tables instead of 128 KiB, for a few percent of ratio.
            compressor = zlib.compressobj(6, zlib.DEFLATED, -self.server_bits, 5)
            if self.server_takeover:
                self.compressor = compressor
        out: bytes = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        out = bytes(out[: len(out) - 4] if out.endswith(DEFLATE_TAIL) else out)
        return out

    def inflate(self, data: bytes, room: int, final: bool) -> Optional[bytes]:
        """A frame's payload inflated; None if it inflates to more than *room* bytes.

        The limit holds *while* inflating (zlib's ``max_length``): a compression bomb
        costs at most *room* bytes of memory before it is refused.
        """
        inflater = self.inflater
        if inflater is None:
            inflater = self.inflater = zlib.decompressobj(-self.client_bits)
        if final:
            data += DEFLATE_TAIL
        out: bytes = inflater.decompress(data, room + 1)
        if len(out) > room or inflater.unconsumed_tail:
            return None
        if final and not self.client_takeover:
            self.inflater = None
        return out


class WebSocket:
    """One WebSocket connection, as the application sees it.

    ``async for message in ws`` yields each message, ``str`` for text and
    ``bytes`` for binary, and ends when the connection closes; ``await
    ws.receive()`` takes one (``WebSocketClosed`` once closed). ``await
    ws.send(data)`` sends text for a ``str``, binary otherwise, waiting while the
    client reads too slowly. ``await ws.close(code, reason)`` closes and waits for
    the close handshake. ``request`` is the request that opened it (its headers,
    ``Origin`` among them), ``subprotocol`` the subprotocol chosen (or None);
    ``close_code`` and ``close_reason`` say how it closed.
    """

    def __init__(
        self,
        server: Any,
        request: Any,
        subprotocol: Optional[str],
        deflate: Optional[Deflate],
        session: Any,
    ) -> None:
        cfg = server.config
        self.server = server
        self.request = request
        self.subprotocol = subprotocol
        self.deflate = deflate
        self.session = session  # the native handler run once connected, or None (ASGI)
        self.loop = asyncio.get_running_loop()
        self.transport: Any = None
        self.state = OPEN
        self.input = bytearray()  # what is read but not yet parsed
        self.need = 2  # bytes the next frame needs before it can be parsed
        # A large frame being unmasked as it arrives (STREAMED): its payload so far.
        self.pending: Any = None
        self.pending_first = 0  # its first byte
        self.pending_mask = b""
        self.pending_have = 0
        self.pending_length = 0
        self.early: List[bytes] = []  # frames sent before the transport arrived
        self.gathering = False  # a frame has gone out this loop turn: gather the next ones
        self.out: List[bytes] = []  # the small frames gathered, for the end of the turn
        self.out_size = 0
        self.max_size = cfg.ws_max_size
        self.max_queue = cfg.ws_max_queue
        self.messages: Deque[Any] = deque()
        self.waiter: Optional[asyncio.Future[None]] = None  # receive() waits on it
        self.ended = False  # no more messages will come
        self.read_paused = False
        self.write_paused = False
        self.drains: List[asyncio.Future[None]] = []  # send() calls waiting for room
        self.lost: Optional[asyncio.Future[None]] = None  # done once the transport is gone
        # The message being assembled from fragments.
        self.kind = 0  # TEXT or BINARY while a message is fragmented, else 0
        self.parts: List[Any] = []
        self.size = 0
        self.compressed = False
        self.decoder: Any = None
        self.close_sent = False
        self.close_received = False
        self.close_code = ABNORMAL
        self.close_reason = ""
        self.fail_code = 0  # why the peer's input failed the connection (0: it did not)
        self.fail_reason = ""
        # Timeouts, counted in sweeps of the server (0: off).
        self.idle_ticks = self.pong_ticks = self.close_ticks = self.write_ticks = 0
        self.ping_limit = server.sweeps_for(cfg.ws_ping_interval)
        self.pong_limit = server.sweeps_for(cfg.ws_ping_timeout)
        self.close_limit = server.sweeps_for(cfg.ws_close_timeout)
        self.write_limit = server.sweeps_for(cfg.write_timeout)
        self.ping_payload: Optional[bytes] = None
        self.task: Optional[asyncio.Task[Any]] = None
        self.tracked = False
        # Where the server's sweep keeps it (Server._sweep_due); a WebSocket is never parked.
        self.sweep_due = 0
        self.sweep_slot = 0
        self.parked = False

    # -- the application's side ------------------------------------------------

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except WebSocketClosed:
            raise StopAsyncIteration from None

    async def receive(self) -> Any:
        """The next message: ``str`` (text) or ``bytes`` (binary)."""
        while not self.messages:
            if self.ended:
                raise WebSocketClosed(self.close_code, self.close_reason)
            waiter = self.waiter = self.loop.create_future()
            await waiter
        message = self.messages.popleft()
        if self.read_paused and len(self.messages) <= self.max_queue >> 1:
            self.resume()
        return message

    async def send(self, data: Any) -> None:
        """Send *data*: a ``str`` as a text message, bytes-like as a binary one."""
        if self.close_sent or self.state == CLOSED:
            raise WebSocketClosed(self.close_code, self.close_reason)
        if isinstance(data, str):
            self.message(TEXT, data.encode("utf-8"))
        elif isinstance(data, (bytes, bytearray, memoryview)):
            self.message(BINARY, bytes(data))
        else:
            raise TypeError(f"send() takes str or bytes, not {type(data).__name__}")
        if self.write_paused:
            waiter = self.loop.create_future()
            self.drains.append(waiter)
            await waiter

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Close with *code* and *reason*; returns once the connection is closed."""
        if type(code) is not int or not valid_close_code(code):
            raise ValueError(f"not a close code an application may send: {code!r}")
        if len(reason.encode("utf-8")) > 123:
            raise ValueError("a close reason is at most 123 bytes of UTF-8")
        self.start_close(code, reason)
        if self.lost is None:
            self.lost = self.loop.create_future()
        if self.state != CLOSED:
            await asyncio.shield(self.lost)

    async def ping(self, data: bytes = b"") -> None:
        """Send a ping (the keep-alive pings are the server's own)."""
        if self.close_sent or self.state == CLOSED:
            raise WebSocketClosed(self.close_code, self.close_reason)
        self.write(PING, bytes(data)[:125])

    def __repr__(self) -> str:
        return (
            f"<WebSocket {self.request.path!r} state={('open', 'closing', 'closed')[self.state]}>"
        )

    # -- the asyncio protocol ----------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.tracked = self.server.track(self)
        if not self.tracked:
            transport.abort()  # over max_connections
            return
        early = self.early
        if early:
            self.early = []
            transport.write(b"".join(early))
        if self.session is not None:
            self.task = self.loop.create_task(self.run(self.session))
            self.session = None
        if self.task is not None:
            self.task.add_done_callback(self.task_done)

    def data_received(self, data: bytes) -> None:
        if self.ended:
            return
        if self.pending is not None:
            used = self.stream(data, 0)
            if used == len(data) or self.ended:
                return
            data = data[used:]
        buf = self.input
        if buf:
            buf += data
            if len(buf) < self.need:
                return
            data = bytes(buf)
            buf.clear()
        elif len(data) < self.need:
            buf += data
            return
        self.parse(data)

    def eof_received(self) -> bool:
        return False  # close: a half-closed WebSocket is a dropped one

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self.input = bytearray()
        self.pending = None
        self.end()
        gone = WebSocketClosed(self.close_code, self.close_reason)
        for waiter in self.drains:
            if not waiter.done():
                waiter.set_exception(gone)
        self.drains = []
        if self.lost is None:
            self.lost = self.loop.create_future()
        if not self.lost.done():
            self.lost.set_result(None)
        if self.task is None or self.task.done():
            self.forget()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.write_ticks = 0
        drains = self.drains
        self.drains = []
        for waiter in drains:
            if not waiter.done():
                waiter.set_result(None)

    # -- the server's side -------------------------------------------------------

    def tick(self) -> int:
        """One sweep of the server: keep-alive, pong, close and write timeouts.

        Returns 0 (the next sweep comes here again), or -1 once the WebSocket is gone:
        as the HTTP connections answer the server's sweep.
        """
        transport = self.transport
        if transport is None or self.state == CLOSED:
            return -1
        if self.write_paused:
            self.write_ticks += 1
            if self.write_ticks >= self.write_limit:
                transport.abort()  # the client stopped reading
            return 0
        if self.close_sent:
            self.close_ticks += 1
            if self.close_ticks >= self.close_limit:
                transport.abort()  # no answer to our close frame
            return 0
        if self.ping_payload is not None:
            self.pong_ticks += 1
            if self.pong_ticks >= self.pong_limit:
                self.fail(INTERNAL_ERROR, "keepalive ping timeout")
        elif self.ping_limit:
            self.idle_ticks += 1
            if self.idle_ticks >= self.ping_limit:
                self.ping_payload = os.urandom(4)
                self.pong_ticks = 0
                self.write(PING, self.ping_payload)
        return 0

    def shutdown(self) -> None:
        """The server is shutting down: close with 1001 (Going Away)."""
        self.start_close(GOING_AWAY, "server shutting down")

    def abort(self) -> None:
        """Drop the connection now (the shutdown timeout ran out)."""
        if self.transport is not None:
            self.transport.abort()
        if self.task is not None:
            self.task.cancel()

    # -- the application's task ------------------------------------------------------

    async def run(self, session: Any) -> None:
        """Run the native handler *session*; close when it returns (1011 if it fails)."""
        code = NORMAL
        try:
            await session(self)
        except WebSocketClosed:
            pass  # the client went away while the handler sent or received
        except Exception:
            log.exception("WebSocket handler failed for %r", self.request.raw_path)
            code = INTERNAL_ERROR
        self.start_close(code, "")

    def task_done(self, task: asyncio.Task[Any]) -> None:
        if self.state == CLOSED:
            self.forget()

    def forget(self) -> None:
        if self.tracked:
            self.tracked = False
            if self.server.config.access_log:
                client = self.request.client
                access_log.info(
                    '%s - "WebSocket %s" %d',
                    f"{client[0]}:{client[1]}" if client else "-",
                    self.request.raw_path.decode("latin-1"),
                    self.close_code,
                )
            self.server.forget(self)

    # -- writing ------------------------------------------------------------------

    def write(self, opcode: int, payload: bytes, rsv1: bool = False) -> None:
        size = len(payload)
        head = frame_head(opcode, size, rsv1)
        transport = self.transport
        if transport is None:
            self.early.append(head + payload)
            return
        if size < 4096 and opcode != CLOSE:
            if not self.gathering:
                self.gathering = True
                self.loop.call_soon(self.flush)
                transport.write(head + payload)
                return
            self.out.append(head + payload)
            self.out_size += size
            if self.out_size >= 65536:
                self.flush()
            return
        self.flush()  # what was gathered goes first
        if size < 4096:
            transport.write(head + payload)
        else:
            transport.write(head)
            transport.write(payload)

    def flush(self) -> None:
        """Send the small frames gathered, in one write (the loop calls it back at the end
        of the turn)."""
        self.gathering = False
        out = self.out
        if out:
            self.out = []
            self.out_size = 0
            if self.state != CLOSED:
                self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def message(self, opcode: int, payload: bytes) -> None:
        deflate = self.deflate
        if deflate is not None:
            self.write(opcode, deflate.compress(payload), True)
        else:
            self.write(opcode, payload, False)

    def start_close(self, code: int, reason: str) -> None:
        """Send a close frame (once); close the transport if the peer's has come."""
        if self.state == CLOSED or self.close_sent:
            return
        if self.fail_code:  # whatever the application says, the close says why it failed
            code, reason = self.fail_code, self.fail_reason
        self.close_sent = True
        self.state = CLOSING
        self.close_ticks = 0
        if not self.close_received:
            self.close_code, self.close_reason = code, reason
        payload = b"" if code == NO_STATUS else code.to_bytes(2, "big") + reason.encode("utf-8")
        self.write(CLOSE, payload)
        if (self.close_received or self.fail_code) and self.transport is not None:
            self.transport.close()

    def fail(self, code: int, reason: str) -> None:
        """The peer broke the protocol: close with *code*, reading nothing more.

        Messages already queued get one loop turn first, so an application echoing them
        answers before the close frame (what Autobahn calls strict).
        """
        if self.fail_code:
            return
        self.fail_code, self.fail_reason = code, reason
        self.end()
        if self.messages:
            self.loop.call_soon(self.failed)
        else:
            self.failed()

    def failed(self) -> None:
        self.start_close(self.fail_code, self.fail_reason)
        if self.transport is not None:
            self.transport.close()

    # -- reading ------------------------------------------------------------------

    def end(self) -> None:
        """No message will come any more: wake the reader."""
        self.ended = True
        self.parts = []
        self.decoder = None
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def resume(self) -> None:
        """The application has taken enough messages: parse and read again."""
        self.read_paused = False
        if self.state != CLOSED:
            self.transport.resume_reading()
            if self.input and len(self.input) >= self.need:
                data = bytes(self.input)
                self.input.clear()
                self.parse(data)

    def parse(self, data: bytes) -> None:
        """Take every whole frame in *data*; keep the rest for the next read."""
        end = len(data)
        pos = 0
        while not self.ended:
            if self.read_paused or end - pos < 2:
                break
            first = data[pos]
            second = data[pos + 1]
            length = second & 0x7F
            at = pos + 2
            if length == 126:
                if end - at < 2:
                    break
                length = (data[at] << 8) | data[at + 1]
                at += 2
            elif length == 127:
                if end - at < 8:
                    break
                if data[at] & 0x80:
                    self.fail(PROTOCOL_ERROR, "frame length over 2**63")
                    return
                length = int.from_bytes(data[at : at + 8], "big")
                at += 8
            if not self.frame_allowed(first, second, length):
                return
            if end - at < 4 + length:
                if length < STREAMED or end - at < 4:
                    self.need = at - pos + 4 + length
                    break
                self.pending = payload_buffer(length)
                self.pending_first = first
                self.pending_mask = data[at : at + 4]
                self.pending_have = 0
                self.pending_length = length
                self.stream(data, at + 4)
                return
            payload = unmask(data, at + 4, length, data[at : at + 4])
            pos = at + 4 + length
            if not self.take(first, payload):
                return
        if pos < end and not self.ended:
            self.input += data[pos:]

    def stream(self, data: bytes, start: int) -> int:
        """Unmask what *data* holds of the frame being streamed, from *start*; act on the
        frame once whole. Returns where in *data* its payload ended."""
        have = self.pending_have
        size = min(len(data) - start, self.pending_length - have)
        unmask_into(self.pending, have, data, start, size, self.pending_mask)
        have += size
        if have < self.pending_length:
            self.pending_have = have
        else:
            payload = self.pending if cython.compiled else bytes(self.pending)
            self.pending = None
            self.take(self.pending_first, payload)
        return start + size

    def take(self, first: int, payload: bytes) -> bool:
        """A whole frame has been read; False once the connection is failing or closed."""
        self.need = 2
        self.idle_ticks = 0
        if not self.frame(first, payload):
            return False
        if len(self.messages) >= self.max_queue and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()
        return True

    def frame_allowed(self, first: int, second: int, length: int) -> bool:
        """Check a frame's head before its payload is read; fail the connection if not."""
        opcode = first & 0x0F
        if not second & 0x80:
            self.fail(PROTOCOL_ERROR, "unmasked frame")
            return False
        if first & 0x30 or (first & 0x40 and (self.deflate is None or opcode == CONTINUATION)):
            self.fail(PROTOCOL_ERROR, "reserved bit set")
            return False
        if opcode >= CLOSE:
            if opcode > PONG:
                self.fail(PROTOCOL_ERROR, "unknown opcode")
                return False
            if not first & 0x80 or length > 125 or first & 0x40:
                self.fail(PROTOCOL_ERROR, "fragmented or oversized control frame")
                return False
            return True
        if opcode == CONTINUATION:
            if not self.kind:
                self.fail(PROTOCOL_ERROR, "continuation without a message")
                return False
        elif opcode > BINARY:
            self.fail(PROTOCOL_ERROR, "unknown opcode")
            return False
        elif self.kind:
            self.fail(PROTOCOL_ERROR, "new message inside a fragmented one")
            return False
        compressed = self.compressed if opcode == CONTINUATION else bool(first & 0x40)
        # Compressed data may come out a little larger than what it holds.
        limit = self.max_size + 1024 if compressed else self.max_size
        if (0 if opcode != CONTINUATION else self.size) + length > limit:
            self.fail(TOO_BIG, "message too big")
            return False
        return True

    def frame(self, first: int, payload: bytes) -> bool:
        """Act on one whole frame; False once the connection is failing or closed."""
        opcode = first & 0x0F
        if opcode >= CLOSE:
            return self.control(opcode, payload)
        final = first & 0x80
        if opcode != CONTINUATION:
            self.kind = opcode
            self.compressed = bool(first & 0x40)
            self.size = 0
        deflate = self.deflate
        if self.compressed and deflate is not None:
            try:
                inflated = deflate.inflate(payload, self.max_size - self.size, bool(final))
            except zlib.error:
                self.fail(INVALID_DATA, "invalid compressed data")
                return False
            if inflated is None:
                self.fail(TOO_BIG, "message too big")
                return False
            payload = inflated
        self.size += len(payload)
        if self.size > self.max_size:
            self.fail(TOO_BIG, "message too big")
            return False
        if self.kind == TEXT:
            decoder = self.decoder
            try:
                if final and decoder is None:
                    message: Any = payload.decode("utf-8")
                else:
                    if decoder is None:
                        decoder = self.decoder = _utf8_decoder()
                    message = decoder.decode(payload, bool(final))
            except UnicodeDecodeError:
                self.fail(INVALID_DATA, "invalid UTF-8")
                return False
        else:
            message = payload
        if not final:
            self.parts.append(message)
            return True
        if self.parts:
            self.parts.append(message)
            message = ("" if self.kind == TEXT else b"").join(self.parts)
            self.parts = []
        self.kind = 0
        self.decoder = None
        if not self.close_sent:  # after our close frame, what is still coming is dropped
            self.messages.append(message)
            self.wake()
        return True

    def control(self, opcode: int, payload: bytes) -> bool:
        if opcode == PING:
            if not self.close_sent:
                self.write(PONG, payload)
            return True
        if opcode == PONG:
            if payload == self.ping_payload:
                self.ping_payload = None
                self.idle_ticks = 0
            return True
        # A close frame: its code and reason, checked (RFC 6455 §5.5.1, §7.4).
        code = NO_STATUS
        reason = ""
        if payload:
            if len(payload) < 2:
                self.fail(PROTOCOL_ERROR, "close frame with a one-byte payload")
                return False
            code = (payload[0] << 8) | payload[1]
            if not valid_close_code(code):
                self.fail(PROTOCOL_ERROR, "invalid close code")
                return False
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                self.fail(INVALID_DATA, "invalid UTF-8 in the close reason")
                return False
        self.close_received = True
        if not self.close_sent:
            self.close_code, self.close_reason = code, reason
            self.start_close(code, "")  # echo the code (RFC 6455 §5.5.1)
        elif self.transport is not None:
            self.transport.close()  # the handshake we began is complete
        self.end()
        return False
