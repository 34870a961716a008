"""The slow paths both cores share: handlers that suspend, handlers that fail,
and streaming bodies.

A handler's coroutine is first stepped eagerly by the core, inside the protocol
callback. Only when that first step suspends does the core hand the coroutine to
:func:`resume`, which runs inside a real ``asyncio.Task`` and drives it to the end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import types
from contextvars import Context
from typing import TYPE_CHECKING, Any, Generator, Optional, Tuple, Union, cast

from . import response as responses
from ._contract import Connection
from .request import ClientDisconnected
from .response import Response, StreamingResponse, SwitchProtocols

if TYPE_CHECKING:
    from .request import Request

log = logging.getLogger("cyhttp.error")

AnyResponse = Union[Response, StreamingResponse]


def idle_expired(transport: Any, paused: int) -> None:
    """Log at DEBUG an idle connection closed with input it never read.

    A connection the server stopped reading, and never resumed, looks idle to the
    sweep: the client's next request waits in the socket until this close. Nothing
    else would tell such a stall from a client that simply went quiet.
    """
    if not log.isEnabledFor(logging.DEBUG):
        return
    unread = _unread_bytes(transport)
    if unread or paused:
        log.debug(
            "closing idle connection from %s with %d bytes unread in the socket"
            " (reading paused for reasons 0x%x)",
            transport.get_extra_info("peername"),
            unread,
            paused,
        )


def _unread_bytes(transport: Any) -> int:
    """Bytes waiting in the connection's socket, where the platform can tell."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        import fcntl
        import termios

        count = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (ImportError, OSError, ValueError):
        return 0  # not a POSIX socket (Windows), or it is closing
    return int.from_bytes(count, sys.byteorder, signed=True)


class StreamAborted(Exception):
    """A streaming body's producer gave up, and has said why in the log: the connection
    closes (the head is out), and nothing more is logged."""


INTERNAL_ERROR = Response(b"Internal Server Error\n", 500, content_type="text/plain; charset=utf-8")


@types.coroutine
def _wait(yielded: Any) -> Generator[Any, None, None]:
    # Re-yield to the Task exactly what the handler's coroutine yielded: a
    # Future (flagged as blocking by Future.__await__) or None for a bare
    # yield such as asyncio.sleep(0).
    yield yielded
    # The Task's first step resumes a primed runner (see start_task) before the
    # future is done: hand the same future to the Task, this time for real.
    while isinstance(yielded, asyncio.Future) and not yielded.done():
        yielded._asyncio_future_blocking = True
        yield yielded


async def resume(it: Any, yielded: Any, ctx: Optional[Context] = None) -> Any:
    """Drive the coroutine *it*, whose eager first step yielded *yielded*.

    When the awaited future completes (with a result, an exception or by
    cancellation) the coroutine is resumed with ``send(None)`` and reads the
    outcome from the future itself, exactly as under a plain Task. Anything
    thrown into this Task while it is not waiting on a finished future (a
    cancellation during a bare yield, or before the Task's first step) is
    thrown into the coroutine.
    """
    while True:
        try:
            await _wait(yielded)
        except BaseException as exc:
            if _outcome_of(yielded, exc):
                step = it.send
                arg: Any = None
            else:
                step = it.throw
                arg = exc
        else:
            step = it.send
            arg = None
        try:
            # In *ctx* when given: the coroutine's own context, not this Task's.
            yielded = step(arg) if ctx is None else ctx.run(step, arg)
        except StopIteration as stop:
            return stop.value


def _outcome_of(fut: Any, exc: BaseException) -> bool:
    """Whether *exc*, thrown into the Task, is just *fut* finishing with it.

    Then the handler is resumed normally and reads the outcome from the future
    itself. A cancellation that races with the future completing is not the
    future's outcome: it must reach the handler as a cancellation.
    """
    if not isinstance(fut, asyncio.Future) or not fut.done():
        return False
    if fut.cancelled():
        return isinstance(exc, asyncio.CancelledError)
    return fut.exception() is exc


def start_task(it: Any, yielded: Any, ctx: Context) -> asyncio.Task[Any]:
    """Finish the suspended handler coroutine *it* in a Task running in *ctx*.

    The runner is first advanced to its first wait, so that even a Task
    cancelled before its first step delivers the cancellation to the handler
    (an unstarted coroutine would drop it without running the handler's
    ``finally`` blocks).
    """
    runner = resume(it, yielded)
    runner.send(None)
    return asyncio.get_running_loop().create_task(runner, context=ctx)


async def awaited(result: Any) -> Any:
    """A coroutine awaiting *result*, an awaitable that is not a coroutine."""
    return await result


def awaitable(result: Any) -> Any:
    """The iterator behind an awaitable handler result; TypeError for anything else."""
    method = getattr(type(result), "__await__", None)
    if method is None:
        raise TypeError(
            f"handler returned {type(result).__name__}, expected Response, "
            "StreamingResponse or an awaitable of one"
        )
    return method(result)


def _peer(client: Optional[Tuple[str, int]]) -> str:
    return f"{client[0]}:{client[1]}" if client else "-"


class Refusals:
    """Logs the requests a server refuses, on ``cyhttp.error``, once each.

    Each refusal gives one line with the peer, the status and the rule that fired: a
    WARNING for the first from a peer address in a minute, DEBUG for the rest, so that
    a flood of bad requests cannot fill the log. At most ``PEERS`` addresses are
    remembered; while that many were warned about within the minute, other peers'
    refusals are logged at DEBUG only.
    """

    WINDOW = 60.0
    PEERS = 1024

    def __init__(self) -> None:
        # Peer address -> when it was warned about; in that order, oldest first.
        self.warned: dict[str, float] = {}

    def report(self, client: Optional[Tuple[str, int]], status: int, reason: str) -> None:
        """Log that the request from *client* was refused with *status* for *reason*."""
        warned = self.warned
        now = time.monotonic()
        while warned:
            oldest = next(iter(warned))
            if now - warned[oldest] < self.WINDOW:
                break
            del warned[oldest]
        address = client[0] if client else "-"
        level = logging.DEBUG
        if address not in warned and len(warned) < self.PEERS:
            warned[address] = now
            level = logging.WARNING
        log.log(level, "refused a request from %s: %d, %s", _peer(client), status, reason)


def checked(result: Any, request: Request) -> AnyResponse:
    """*result* if it is a response; a logged 500 otherwise."""
    if isinstance(result, responses.RESPONSE_TYPES):
        return cast(AnyResponse, result)
    return failed(
        request,
        TypeError(
            f"handler returned {type(result).__name__}, expected Response or StreamingResponse"
        ),
    )


def failed(request: Request, exc: BaseException) -> Response:
    """Log a handler's exception with its traceback and answer 500."""
    log.error("handler failed for %s %r", request.method, request.raw_path, exc_info=exc)
    return INTERNAL_ERROR


def unservable(request: Request, problem: str | None) -> Response:
    """Log why the handler's response cannot be served, and answer 500 instead."""
    log.error(
        "handler for %s %r returned an invalid response: %s",
        request.method,
        request.raw_path,
        problem,
    )
    return INTERNAL_ERROR


def outcome(task: asyncio.Task[Any], request: Request) -> AnyResponse:
    """The response a finished handler Task produced (a logged 500 if it failed)."""
    if task.cancelled():
        return failed(request, asyncio.CancelledError("handler was cancelled"))
    exc = task.exception()
    if exc is not None:
        return failed(request, exc)
    return checked(task.result(), request)


def discard(task: asyncio.Task[Any], request: Request) -> None:
    """Consume the outcome of a handler whose client is gone; log only real failures."""
    if not task.cancelled():
        exc = task.exception()
        if exc is not None and not isinstance(exc, ClientDisconnected):
            failed(request, exc)


def abandon(task: asyncio.Task[Any]) -> None:
    """Cancel the handler of a vanished client, after the wake-ups already scheduled.

    A handler waiting in ``body()`` or ``stream()`` was just handed
    ``ClientDisconnected``; cancelling at once would replace it with
    ``CancelledError``. One loop step later it has seen the promised exception,
    and a handler suspended anywhere else is cancelled all the same.
    """
    task.get_loop().call_soon(task.cancel)


def not_asked(request: Request) -> Response:
    """A logged 500 for ``SwitchProtocols`` answering a request that asked for no switch."""
    return unservable(request, "SwitchProtocols answers only a request to switch protocols")


def hand_over(transport: Any, switch: SwitchProtocols, tail: bytes) -> None:
    """Give *transport* to the protocol *switch* makes, with the bytes read past the head.

    The core has already written the ``101`` answer and let go of the transport;
    reading was paused since the head arrived, and resumes for the new owner.
    """
    try:
        protocol = switch.factory()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if tail:
            if isinstance(protocol, asyncio.BufferedProtocol):
                view = memoryview(tail)
                while view:
                    buffer = memoryview(protocol.get_buffer(len(view)))
                    size = min(len(buffer), len(view))
                    buffer[:size] = view[:size]
                    protocol.buffer_updated(size)
                    view = view[size:]
            else:
                cast(asyncio.Protocol, protocol).data_received(tail)
    except Exception:
        log.exception("the protocol switched to failed to start; closing the connection")
        transport.abort()
        return
    if not transport.is_closing():
        transport.resume_reading()


def streamed(request: Request, task: asyncio.Task[None]) -> bool:
    """Whether a streaming body went out whole; logs why not."""
    if task.cancelled():
        return False
    exc = task.exception()
    if exc is None:
        return True
    if not isinstance(exc, StreamAborted):
        log.error(
            "streaming response failed for %s %r", request.method, request.raw_path, exc_info=exc
        )
    return False


async def stream_body(
    conn: Connection, response: Any, chunked: bool, send: bool, length: int = -1
) -> None:
    """Send a streaming response's body after its head, waiting for the socket to drain.

    With a declared *length* (not -1) the chunks go out as they are and must add up
    to exactly that: a body that runs over (sent up to the length), or ends short,
    fails the stream.
    """
    content = response.content
    if not send:
        # HEAD, 204 or 304: nothing is read from the iterable; let it clean up.
        await close_content(response)
        return
    try:
        if type(content) is FileContent and not chunked:
            await _send_file(conn, content)
        else:
            await _send_body(conn, content, chunked, length)
    except BaseException:
        await close_content(response)  # stopped early (client gone, a bad piece): clean up
        raise


async def close_content(response: Any) -> None:
    """Let a streaming response's content clean up: nothing more is read from it."""
    aclose = getattr(response.content, "aclose", None)
    if aclose is not None:
        await aclose()


def unsent(response: Any) -> None:
    """A streaming response that will never be sent (its client is gone): close its content."""
    closing = close_content(response)
    asyncio.get_running_loop().create_task(closing)


FILE_CHUNK = 64 * 1024  # what a file is read in where sendfile cannot be used


class FileContent:
    """A file as a streaming body (ASGI's ``pathsend``, WSGI's ``wsgi.file_wrapper``):
    its *size* bytes from *offset*, sent by ``sendfile`` where the transport has a
    socket, else read in pieces. Owns the open *file*."""

    __slots__ = ("file", "offset", "size")

    def __init__(self, file: Any, size: int, offset: int = 0) -> None:
        self.file = file
        self.size = size
        self.offset = offset

    def __aiter__(self) -> Any:
        return _file_pieces(self.file, self.offset, self.size)

    async def aclose(self) -> None:
        self.file.close()


async def _file_pieces(file: Any, offset: int, size: int) -> Any:
    with file:
        file.seek(offset)
        while size > 0 and (chunk := file.read(min(FILE_CHUNK, size))):
            size -= len(chunk)
            yield chunk


async def _send_file(conn: Connection, content: FileContent) -> None:
    """Send a whole file with ``os.sendfile``: no copy through Python, none in user space.

    The transport's buffer is drained first (the head, and anything before it, must
    reach the socket before the file does), then the file goes to the socket directly;
    a client that reads nothing for the write timeout is dropped.
    """
    target = conn._sendfile_begin()
    if target is None:  # no socket under this transport: read it in pieces
        await _send_body(conn, content, False, content.size)
        return
    fd, timeout = target
    loop = asyncio.get_running_loop()
    # uvloop watches the socket's own descriptor for the transport: wait on a copy.
    watch = os.dup(fd)
    try:
        drained = conn._write_room()
        if drained is not None:
            await drained
        offset, source = content.offset, content.file.fileno()
        end = offset + content.size
        while offset < end:
            try:
                sent = os.sendfile(fd, source, offset, end - offset)
            except BlockingIOError:
                await asyncio.wait_for(_writable(loop, watch), timeout)
                continue
            if sent == 0:
                raise ValueError(f"the file ended {end - offset} bytes short of its size")
            offset += sent
    finally:
        os.close(watch)
        content.file.close()
        conn._sendfile_end()


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready = loop.create_future()
    loop.add_writer(fd, ready.set_result, None)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


async def _send_body(conn: Connection, content: Any, chunked: bool, length: int) -> None:
    async for chunk in content:
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8")
        if not chunk:
            continue  # an empty chunk would end a chunked body early
        if length >= 0:
            length -= len(chunk)
            if length < 0:
                conn._send(bytes(chunk[: len(chunk) + length]))  # up to the declared length
                raise ValueError("streaming body ran over its Content-Length: cut there")
        if chunked:
            conn._send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            conn._send(bytes(chunk))
        drained = conn._write_room()
        if drained is not None:
            await drained
    if chunked:
        conn._send(b"0\r\n\r\n")
    elif length > 0:
        raise ValueError(f"streaming body ended {length} bytes short of its Content-Length")
