"""A bounded pool of threads for blocking calls (WSGI applications).

Threads start on demand, up to ``size``, and each one takes calls from one queue
until it is empty, then waits on a lock of its own until a call is submitted for
it: a submission wakes one idle thread at most, the most recently idle one (its
stack and caches are the warmest), so a burst of calls that one thread answers
quickly wakes no other. Every field is read and written under ``lock``, so the
pool holds on a free-threaded interpreter too.

``close`` lets the threads finish the calls they have, then end; they are
daemons, so one stuck in an application cannot keep the process alive.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Callable, Deque, List

__all__ = ["Pool"]

log = logging.getLogger("cyhttp.error")


class Pool:
    """Up to *size* threads named *name*-N running the callables given to :meth:`submit`."""

    def __init__(self, size: int, name: str = "cyhttp-wsgi") -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one thread, got {size}")
        self.size = size
        self.name = name
        self.lock = threading.Lock()
        self.calls: Deque[Callable[[], None]] = deque()
        self.idle: List[threading.Lock] = []  # the wake-up lock of each idle thread
        self.threads: List[threading.Thread] = []
        self.closed = False

    def submit(self, call: Callable[[], None]) -> None:
        """Run *call* on a pool thread (it must not raise: nobody would see it)."""
        with self.lock:
            if self.closed:
                raise RuntimeError("the pool is closed")
            self.calls.append(call)
            if self.idle:
                self.idle.pop().release()
            elif len(self.threads) < self.size:
                self._start()

    @property
    def waiting(self) -> int:
        """Calls submitted that no thread has taken yet."""
        return len(self.calls)

    def _start(self) -> None:
        wake = threading.Lock()
        wake.acquire()
        thread = threading.Thread(
            target=self._work, args=(wake,), name=f"{self.name}-{len(self.threads)}", daemon=True
        )
        self.threads.append(thread)
        thread.start()

    def _work(self, wake: threading.Lock) -> None:
        lock, calls = self.lock, self.calls
        while True:
            with lock:
                if calls:
                    call = calls.popleft()
                elif self.closed:
                    return
                else:
                    self.idle.append(wake)
                    call = None
            if call is None:
                wake.acquire()  # released by submit() or close()
                continue
            try:
                call()
            except BaseException:  # a bug of the caller's: the thread serves on
                log.exception("a call on the %s pool failed", self.name)

    def close(self) -> None:
        """Take no more calls: each thread ends once the calls queued are done."""
        with self.lock:
            self.closed = True
            for wake in self.idle:
                wake.release()
            self.idle.clear()

    def alive(self) -> List[threading.Thread]:
        """The threads still running (after :meth:`close`: still in a call)."""
        with self.lock:
            return [thread for thread in self.threads if thread.is_alive()]
