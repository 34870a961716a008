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

Worker processes share one listening socket, and the kernel wakes every one waiting
on it: the first to run takes what waits, so a burst of keep-alive connections (wrk's
64, or the few a proxy keeps open) went all to one worker, which then served them
alone while its siblings idled. So each worker publishes how many connections it holds
in memory shared with its siblings (:class:`Loads`), and takes a connection only while
none of them holds fewer: the sibling that does was woken too, and takes it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import mmap
import os
import socket
from functools import partial
from typing import Any, Callable, Coroutine, Dict, Iterable, List, Optional, Tuple

log = logging.getLogger("cyhttp.error")

# accept() failing with one of these means the process or the system is out of a
# resource: the connections stay in the backlog and accepting pauses for a while,
# or the listening socket, always ready, would spin the loop.
OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
RETRY_DELAY = 1.0  # seconds (asyncio waits as long)
# How long a worker leaves waiting connections to a less loaded sibling before it
# looks again (0: at its loop's next turn); and how long no sibling's count may stay
# the same, connections waiting, before it takes them itself (a sibling stuck in its
# application, or gone): in a burst siblings move within microseconds, and this is
# the most a connection waits for a sibling busy in a long request.
FAIR_DELAY = 0.0  # seconds
STUCK = 0.05  # seconds
# How many connections more than the least loaded sibling a worker may hold and still
# accept: where connections come and go by the thousand a second (one request each),
# counts within a few of each other are even, and leaving each new one to a sibling
# costs both workers a wake-up and a re-watch of the socket for nothing.
SLACK = 4


class Loads:
    """How many connections each worker sharing a listening socket holds.

    Made by the supervisor before it forks, so the memory is shared with every worker;
    the supervisor gives each worker a slot (:meth:`claim`, :meth:`release`), and the
    worker's server publishes its count there as connections open and close.
    """

    FREE = 2**31 - 1  # an unused slot: never the fewest
    STARTING = FREE - 1  # a worker not serving yet: not the fewest either

    def __init__(self, slots: int) -> None:
        #: Workers beyond *slots* at once (SIGTTIN) take no part: they accept freely.
        self.slots = slots
        self._memory = mmap.mmap(-1, 4 * slots)  # anonymous: shared across fork
        self.counts = memoryview(self._memory).cast("i")
        for i in range(slots):
            self.counts[i] = self.FREE
        #: This worker's slot (set in the worker after the fork), or None: no part.
        self.slot: Optional[int] = None

    def claim(self) -> Optional[int]:
        """A free slot for a new worker (in the supervisor), or None if all are taken."""
        for i in range(self.slots):
            if self.counts[i] == self.FREE:
                self.counts[i] = self.STARTING
                return i
        return None

    def release(self, slot: Optional[int]) -> None:
        """The worker of *slot* is gone (in the supervisor)."""
        if slot is not None:
            self.counts[slot] = self.FREE

    def publish(self, count: int) -> None:
        """This worker holds *count* connections now."""
        if self.slot is not None:
            self.counts[self.slot] = count

    def leave(self) -> None:
        """This worker accepts no more (shutting down): its siblings count without it."""
        if self.slot is not None:
            self.counts[self.slot] = self.FREE
            self.slot = None

    def fair(self, taken: int) -> bool:
        """Whether this worker may take another connection, having taken *taken* it has
        not published yet: no sibling holds fewer (``SLACK`` or a tenth more than the
        fewest is fair too: counts move all the time)."""
        slot = self.slot
        if slot is None:
            return True
        counts = self.counts
        fewest = min(c for i, c in enumerate(counts) if i != slot) if self.slots > 1 else self.FREE
        return counts[slot] + taken <= fewest + max(SLACK, fewest // 10)

    def others(self) -> List[int]:
        """The siblings' counts, to tell later whether any of them moved."""
        slot = self.slot
        return [c for i, c in enumerate(self.counts) if i != slot]


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
        loads: Optional[Loads] = None,
    ) -> None:
        self.loop = loop
        self.factory = factory
        self.tls = tls or {}  # connect_accepted_socket's ssl arguments, for TLS
        self.batch = backlog
        self.loads = loads  # shared with sibling workers, if any
        if loads is not None:
            loads.publish(0)  # serving from now on: count this worker
        # The siblings' loads when connections were first left to them, and when.
        self.left: Optional[Tuple[List[int], float]] = None
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
        loads, left = self.loads, self.left
        if loads is not None and left is not None:
            others, now = loads.others(), self.loop.time()
            if others != left[0]:
                self.left = None  # the siblings are taking them
            elif now - left[1] >= STUCK:
                loads = self.left = None  # none of them moved for long: take them
        for taken in range(self.batch):
            if loads is not None and not loads.fair(taken):
                if taken == 0:  # a sibling holds fewer, and was woken too: leave these to it
                    if self.left is None:
                        self.left = (loads.others(), self.loop.time())
                    self.unwatch()
                    self.retry = self.loop.call_later(FAIR_DELAY, self.watch)
                return  # else the next readiness counts these, published by then
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
