"""Streaming bodies: a ``StreamingResponse``'s pieces, or a file by ``sendfile``, sent
after the head with the socket's flow control, and how such a stream ended."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from ._contract import Connection

if TYPE_CHECKING:
    from .request import Request

log = logging.getLogger("cyhttp.error")


class StreamAborted(Exception):
    """A streaming body's producer gave up, and has said why in the log: the connection
    closes (the head is out), and nothing more is logged."""


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
