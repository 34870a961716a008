"""Accepting connections: every connection waiting in the backlog, in one loop turn.

Why the server does not leave this to the event loop: uvloop's libuv (since 1.45)
accepts one connection per loop iteration. A server whose iterations are long (a
slow application, many connections each sending sixteen pipelined requests) then
lets a burst of new connections wait one iteration each: 64 connections opened at
once against a FastAPI application served at 100 µs a request waited up to 2.8 s
for their first answer (wrk's latency tail), while the connections already open
were served every 85 ms. asyncio's own loop accepts up to ``backlog`` connections
at a time, but with a Task for each.

So the server lets the loop bind and hold its listening sockets
(``create_server(..., start_serving=False)``, with the loop's own address and error
handling) and accepts on a duplicate of each: up to ``backlog`` connections per
readiness, each handed to the loop's ``connect_accepted_socket`` (stepped here, not
in a Task: it only waits for ``connection_made``). Where the loop cannot watch a
socket (Windows' proactor loop), the loop serves the sockets itself.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from functools import partial
from typing import Any, Callable, Coroutine, Dict, Iterable, Optional

log = logging.getLogger("cyhttp.error")

# accept() failing with one of these means the process or the system is out of a
# resource: the connections stay in the backlog and accepting pauses for a while,
# or the listening socket, always ready, would spin the loop.
OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
RETRY_DELAY = 1.0  # seconds (asyncio waits as long)


def can_accept(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether *loop* can watch a listening socket for the acceptor."""
    return not isinstance(loop, getattr(asyncio, "ProactorEventLoop", ()))


class Acceptor:
    """Accepts the connections of a server's listening sockets, eagerly."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listening: Iterable[socket.socket],
        factory: Callable[[], asyncio.BaseProtocol],
        backlog: int,
        tls: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.loop = loop
        self.factory = factory
        self.tls = tls or {}  # connect_accepted_socket's ssl arguments, for TLS
        self.batch = backlog
        # The loop keeps its own socket objects (and closes them); these share them.
        self.socks = [socket.socket(fileno=os.dup(s.fileno())) for s in listening]
        self.retry: Optional[asyncio.TimerHandle] = None
        for sock in self.socks:
            sock.setblocking(False)
            sock.listen(backlog)
        self.watch()

    def watch(self) -> None:
        self.retry = None
        for sock in self.socks:
            self.loop.add_reader(sock.fileno(), self.accept, sock)

    def unwatch(self) -> None:
        for sock in self.socks:
            self.loop.remove_reader(sock.fileno())

    def close(self) -> None:
        """Stop accepting; what waits in the backlog is refused when the loop's sockets close."""
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        else:
            self.unwatch()
        for sock in self.socks:
            sock.close()
        self.socks = []

    def accept(self, sock: socket.socket) -> None:
        for _ in range(self.batch):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # the backlog is empty
            except ConnectionAbortedError:
                continue  # the client gave up while waiting
            except OSError as exc:
                if exc.errno not in OUT_OF_RESOURCES:
                    raise
                log.error("accepting connections paused for %.0f s: %s", RETRY_DELAY, exc.strerror)
                self.unwatch()
                self.retry = self.loop.call_later(RETRY_DELAY, self.watch)
                return
            try:
                _step(self.loop.connect_accepted_socket(self.factory, conn, **self.tls))
            except Exception:
                conn.close()
                log.exception("could not serve an accepted connection")


def _step(coro: Coroutine[Any, Any, Any], _: Any = None) -> None:
    """Run *coro* on: it only waits for futures, so no Task is needed to carry it."""
    try:
        waiting = coro.send(None)
    except StopIteration:
        return
    except (ConnectionError, asyncio.CancelledError):
        return  # the connection was lost before it was made: nothing to serve
    waiting.add_done_callback(partial(_step, coro))


def inherited(fd: int) -> socket.socket:
    """The listening stream socket a parent process (systemd socket activation, a
    supervisor) passed as descriptor *fd*; ``ValueError`` saying why it cannot be one."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ValueError(f"fd {fd} is not an open socket: {exc.strerror or exc}") from None
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError as exc:
        sock.detach()
        raise ValueError(f"fd {fd} is not a socket: {exc.strerror or exc}") from None
    if sock.type != socket.SOCK_STREAM or not listening:
        sock.detach()  # not ours to close
        raise ValueError(f"fd {fd} is not a listening stream socket")
    sock.set_inheritable(True)  # worker processes share it
    return sock
