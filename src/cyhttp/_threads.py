"""A bounded pool of threads for blocking calls (WSGI applications).

Threads start on demand, up to ``size``; each takes calls from one queue, one at a
time, until it is empty, then sleeps on a wake-up call of its own (``wake``, the
core's ``Wake``) until it is given work again. How many are woken is the pool's one
policy:

* Under the GIL only one thread runs Python at a time, and every thread woken
  beyond that costs a context switch and a fight for the GIL. So calls come in
  batches (``submit``: what the loop read in one turn), and a batch wakes a thread
  only when none is awake (``awake``): one thread takes the whole burst, and a
  burst costs one wake-up. The compiled ``Wake`` lets go of the GIL before it wakes
  the thread, which then runs the batch at once.
* A thread may block in its call (a database, a file, ``time.sleep``) and leave
  the queue waiting. The loop that submits watches for that (``check``, every
  ``STALL`` seconds while calls wait): if no call was taken since it last looked,
  one more thread is woken; a slow request delays the others by ``STALL`` at most,
  never for its whole length.
* Without a GIL (free-threaded Python) threads run in parallel: each call of a
  batch wakes an idle thread, as a plain thread pool does.

Like ``_wsgi.py`` this is one source with two builds: ``setup.py`` compiles it
once more as ``cyhttp._threads_c`` (typed by ``_threads_c.pxd``), the pool of the
compiled WSGI layer, so that a thread's round between calls is C.

Every field is read and written under ``lock``, so the pool holds on a
free-threaded interpreter too; threads are woken after it is let go. ``close`` lets
the threads finish the calls they have, then end; they are daemons, so one stuck in
an application cannot keep the process alive.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from typing import Any, Callable, Deque, Iterable, List, Tuple

try:
    import cython
except ImportError:  # Cython is needed only to build the compiled core
    from . import _no_cython as cython  # type: ignore[no-redef]

if cython.compiled:
    from cython.cimports.cyhttp._primitives import Mutex
else:
    from threading import Lock as Mutex

__all__ = ["STALL", "Pool"]

log = logging.getLogger("cyhttp.error")

# How long calls may wait with no thread taking one before one more thread is woken.
STALL = 0.002
# Whether threads run Python in parallel (a free-threaded build with its GIL off).
PARALLEL = not getattr(sys, "_is_gil_enabled", lambda: True)()


class Pool:
    """Up to *size* threads named *name*-N running the callables given to :meth:`submit`;
    each sleeps on a *wake* (``wait``/``give``) while it has nothing to do."""

    def __init__(self, size: int, wake: Callable[[], Any], name: str = "cyhttp-wsgi") -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one thread, got {size}")
        self.size = size
        self.name = name
        self.new_wake = wake
        self.lock = Mutex()
        self.calls: Deque[Callable[[], None]] = deque()
        self.idle: List[Any] = []  # the wake-up call of each idle thread
        self.threads: List[threading.Thread] = []
        self.awake = 0  # threads taking calls (not idle)
        self.taken = 0  # calls taken so far: whether the queue moves (check)
        self.closed = False

    def submit(self, calls: Iterable[Callable[[], None]]) -> None:
        """Run each of *calls* on a pool thread (none may raise: nobody would see it)."""
        lock = self.lock
        lock.acquire()  # not ``with``: compiled, a C call, on every batch
        try:
            if self.closed:
                raise RuntimeError("the pool is closed")
            queue = self.calls
            queue.extend(calls)
            wakes = []
            if not self.awake:
                wakes.append(self._wake())
            if PARALLEL:
                while len(wakes) < len(queue) and self.awake < self.size:
                    wakes.append(self._wake())
        finally:
            lock.release()
        for wake in wakes:
            if wake is not None:
                wake.give()

    def check(self, seen: int) -> Tuple[bool, int]:
        """Wake one more thread if calls wait and none was taken since *seen* calls had
        been; returns whether calls wait, and how many have been taken."""
        wake = None
        with self.lock:
            if self.calls and self.taken == seen:
                wake = self._wake()
            waiting, taken = bool(self.calls), self.taken
        if wake is not None:
            wake.give()
        return waiting, taken

    def _wake(self) -> Any:
        """Count one more thread awake: an idle one's wake-up call to give (the most
        recently idle, the warmest), or None for a new thread, started here."""
        wake = None
        if self.idle:
            wake = self.idle.pop()
        elif len(self.threads) < self.size:
            thread = threading.Thread(
                target=self._work,
                args=(self.new_wake(),),
                name=f"{self.name}-{len(self.threads)}",
                daemon=True,
            )
            self.threads.append(thread)
            thread.start()
        else:
            return None  # every thread is awake already
        self.awake += 1
        return wake

    @cython.locals(lock=Mutex)
    def _work(self, wake: Any) -> None:
        lock, calls = self.lock, self.calls
        take = calls.popleft  # bound once: compiled, a method call looks it up each time
        while True:
            lock.acquire()  # not ``with``: compiled, a C call, on every call
            try:
                if calls:
                    call = take()
                    self.taken += 1
                else:
                    self.awake -= 1
                    if self.closed:
                        return
                    self.idle.append(wake)
                    call = None
            finally:
                lock.release()
            if call is None:
                wake.wait()  # given by submit(), check() or close(), which count it awake
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
            wakes, self.idle = self.idle, []
            self.awake += len(wakes)
        for wake in wakes:
            wake.give()

    def alive(self) -> List[threading.Thread]:
        """The threads still running (after :meth:`close`: still in a call)."""
        with self.lock:
            return [thread for thread in self.threads if thread.is_alive()]
