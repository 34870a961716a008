"""A bounded pool of threads for blocking calls (WSGI applications).

Threads start on demand, up to ``size``; each takes calls from one queue until it
is empty, then waits on a lock of its own until it is woken again. How many are
woken is the pool's one policy:

* Under the GIL only one thread runs Python at a time, and every thread woken
  beyond that costs a context switch and a fight for the GIL. So a submission
  wakes a thread only when none is awake (``awake``): one thread takes the whole
  burst, and a burst costs one wake-up.
* A thread may block in its call (a database, a file, ``time.sleep``) and leave
  the queue waiting. The loop that submits watches for that (``check``, every
  ``STALL`` seconds while calls wait): if no call was taken since it last looked,
  one more thread is woken; a slow request delays the others by ``STALL`` at most,
  never for its whole length.
* Without a GIL (free-threaded Python) threads run in parallel: each submission
  wakes an idle thread, as a plain thread pool does.

Every field is read and written under ``lock``, so the pool holds on a
free-threaded interpreter too. ``close`` lets the threads finish the calls they
have, then end; they are daemons, so one stuck in an application cannot keep the
process alive.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from typing import Callable, Deque, List, Tuple

__all__ = ["STALL", "Pool"]

log = logging.getLogger("cyhttp.error")

# How long calls may wait with no thread taking one before one more thread is woken.
STALL = 0.002
# Whether threads run Python in parallel (a free-threaded build with its GIL off).
PARALLEL = not getattr(sys, "_is_gil_enabled", lambda: True)()


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
        self.awake = 0  # threads taking calls (not idle)
        self.taken = 0  # calls taken so far: whether the queue moves (check)
        self.closed = False

    def submit(self, call: Callable[[], None]) -> None:
        """Run *call* on a pool thread (it must not raise: nobody would see it)."""
        with self.lock:
            if self.closed:
                raise RuntimeError("the pool is closed")
            self.calls.append(call)
            if not self.awake or PARALLEL:
                self._wake()

    def check(self, seen: int) -> Tuple[bool, int]:
        """Wake one more thread if calls wait and none was taken since *seen* calls had
        been; returns whether calls wait, and how many have been taken."""
        with self.lock:
            if self.calls and self.taken == seen:
                self._wake()
            return bool(self.calls), self.taken

    def _wake(self) -> None:
        if self.idle:
            self.idle.pop().release()  # the most recently idle: the warmest
        elif len(self.threads) < self.size:
            wake = threading.Lock()
            wake.acquire()
            thread = threading.Thread(
                target=self._work,
                args=(wake,),
                name=f"{self.name}-{len(self.threads)}",
                daemon=True,
            )
            self.threads.append(thread)
            thread.start()
        else:
            return  # every thread is awake already
        self.awake += 1

    def _work(self, wake: threading.Lock) -> None:
        lock, calls = self.lock, self.calls
        while True:
            with lock:
                if calls:
                    call = calls.popleft()
                    self.taken += 1
                else:
                    self.awake -= 1
                    if self.closed:
                        return
                    self.idle.append(wake)
                    call = None
            if call is None:
                wake.acquire()  # released by _wake() or close(), which count it awake
                continue
            try:
                call()
            except BaseException:  # a bug of the caller's: the thread serves on
                log.exception("a call on the %s pool failed", self.name)

    @property
    def waiting(self) -> int:
        """Calls submitted that no thread has taken yet."""
        return len(self.calls)

    def close(self) -> None:
        """Take no more calls: each thread ends once the calls queued are done."""
        with self.lock:
            self.closed = True
            for wake in self.idle:
                wake.release()
            self.awake += len(self.idle)
            self.idle.clear()

    def alive(self) -> List[threading.Thread]:
        """The threads still running (after :meth:`close`: still in a call)."""
        with self.lock:
            return [thread for thread in self.threads if thread.is_alive()]
