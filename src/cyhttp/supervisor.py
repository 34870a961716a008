"""Worker processes: one supervisor that serves nothing, and N workers that serve.

The supervisor binds the listening socket once and forks the workers, which inherit
it: every worker accepts from the same queue. While any worker lives, and even while
none does (between a crash and its replacement), the socket stays open in the
supervisor, so a connection is never refused: it waits in the backlog until a worker
takes it. (``SO_REUSEPORT`` with a socket per worker would spread accepts by hash, but
connections queued on a dying worker's socket are lost with it.)

The supervisor imports no application and holds no application state: each worker
loads the application itself after the fork, runs the ASGI lifespan, and reports
over a pipe: ``R`` when serving, ``H`` heartbeats from its event loop, ``F`` and a
message when its startup failed. The supervisor's loop only reacts: to signals
(``SIGHUP`` replaces the workers one by one, each new one serving before its old one
is told to stop; ``SIGTTIN``/``SIGTTOU`` add or remove one; ``SIGTERM``/``SIGINT``
stop them all gracefully), to workers that exit (replaced, with a growing delay when
they die young in a row, so a broken application cannot fork-bomb), to workers that
go silent (killed and replaced after the health-check timeout) or grow past the
memory limit (replaced gracefully). A startup failure ends the supervisor with status
1 and the application's message instead of a restart loop. A worker never trusts its
supervisor to be alive: one orphaned (its parent gone) shuts itself down.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import selectors
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from ._listen import Loads

__all__ = ["Supervisor", "SupervisorSettings"]

log = logging.getLogger("cyhttp")

READY = b"R"
BEAT = b"H"
FAILED = b"F"
STARTUP_FAILED = 3  # a worker's exit status when the application could not start
HANDLED = (
    signal.SIGHUP,
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGCHLD,
    signal.SIGTTIN,
    signal.SIGTTOU,
)


@dataclass(frozen=True)
class SupervisorSettings:
    """How the supervisor keeps its workers (the CLI's ``--workers`` options)."""

    workers: int = 2
    #: A worker that sends no heartbeat for this long is killed and replaced.
    healthcheck_timeout: float = 5.0
    #: Replace a worker whose resident memory grows past this many MiB (None: never).
    max_rss_mib: Optional[int] = None
    #: Graceful shutdown of a worker: how long it may take before it is killed.
    shutdown_timeout: float = 10.0
    #: How long a new worker may take to start serving before it counts as failed.
    startup_timeout: float = 60.0

    def __post_init__(self) -> None:
        if type(self.workers) is not int or self.workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {self.workers!r}")
        if self.healthcheck_timeout <= 0:
            raise ValueError("healthcheck_timeout must be a positive number of seconds")
        if self.max_rss_mib is not None and self.max_rss_mib < 1:
            raise ValueError(f"workers_max_rss must be MiB >= 1, got {self.max_rss_mib!r}")


@dataclass
class _Worker:
    pid: int
    pipe: int  # the read end of the worker's report pipe
    started: float
    ready: bool = False
    beat: float = 0.0
    retiring: bool = False  # told to stop: its exit is not a failure
    replaced_by: Optional[int] = None  # during a rolling replacement, the newcomer's pid
    report: bytes = b""
    failure: str = ""
    slot: Optional[int] = None  # its connection count's place in the shared Loads


@dataclass
class _Rolling:
    """Workers to replace one at a time (SIGHUP, memory): a newcomer first, then the old."""

    queue: List[int] = field(default_factory=list)
    newcomer: Optional[int] = None
    old: Optional[int] = None


class Supervisor:
    """Forks *settings.workers* processes that each run ``serve(sock, report)``.

    *serve* is called in the worker after the fork with the listening socket, a pipe
    to report readiness and heartbeats on, the supervisor's pid and the workers'
    shared connection counts (see :func:`worker_main`); it returns
    the worker's exit status. :meth:`run` returns the supervisor's: 0 after a graceful
    stop, 1 after a worker's startup failure.
    """

    def __init__(
        self,
        sockets: List[socket.socket],
        serve: Callable[[List[socket.socket], int, int, Loads], int],
        settings: SupervisorSettings,
    ) -> None:
        self.sockets = sockets
        self.serve = serve
        # Before any fork, so that the workers share it; room for a rolling replacement.
        self.loads = Loads(2 * settings.workers + 2)
        self.settings = settings
        self.count = settings.workers
        self.workers: Dict[int, _Worker] = {}
        self.rolling = _Rolling()
        self.stopping = False
        self.status = 0
        #: Why the workers could not start (status 1), for the one line the user sees.
        self.failure = ""
        self.failures: List[float] = []  # when recent young workers died
        self.respawn_at = 0.0
        self.selector = selectors.DefaultSelector()
        self.pid = os.getpid()

    # -- the loop ----------------------------------------------------------------

    def run(self) -> int:
        """Start the workers and keep them until told to stop; the exit status."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        old_handlers = {sig: signal.signal(sig, lambda *_: None) for sig in HANDLED}
        self.selector.register(wake_r, selectors.EVENT_READ, None)
        try:
            log.info("supervisor %d starting %d workers", self.pid, self.count)
            self.fill()
            deadline: Optional[float] = None
            while True:
                # Signals first: a worker that exits as SIGTERM arrives is not replaced.
                events = sorted(
                    self.selector.select(timeout=0.25), key=lambda e: e[0].data is not None
                )
                for key, _ in events:
                    if key.data is None:
                        self.signals(os.read(wake_r, 512))
                    else:
                        self.read_report(key.data)
                self.reap()
                now = time.monotonic()
                if self.stopping:
                    if not self.workers:
                        return self.status
                    if deadline is None:
                        deadline = now + self.settings.shutdown_timeout + 5
                    elif now > deadline:
                        for pid in list(self.workers):
                            _kill(pid, signal.SIGKILL)
                    continue
                self.check_health(now)
                self.roll(now)
                if now >= self.respawn_at:
                    self.fill()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            self.selector.close()
            os.close(wake_r)
            os.close(wake_w)

    def signals(self, received: bytes) -> None:
        for number in received:
            sig = signal.Signals(number)
            if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
                self.stop(sig)
            elif sig == signal.SIGHUP and not self.stopping:
                log.info("SIGHUP: replacing %d workers one by one", len(self.live()))
                self.rolling.queue.extend(
                    pid for pid in self.live() if pid not in self.rolling.queue
                )
            elif sig == signal.SIGTTIN:
                self.count += 1
                log.info("SIGTTIN: %d workers", self.count)
            elif sig == signal.SIGTTOU and self.count > 1:
                self.count -= 1
                log.info("SIGTTOU: %d workers", self.count)
                newest = max(self.live(), key=lambda pid: self.workers[pid].started, default=None)
                if newest is not None:
                    self.retire(newest)

    def stop(self, sig: signal.Signals, status: int = 0) -> None:
        if not self.stopping:
            log.info("%s: stopping %d workers", sig.name, len(self.workers))
            self.stopping = True
            self.status = status
        for pid, worker in self.workers.items():
            worker.retiring = True
            _kill(pid, signal.SIGQUIT if sig == signal.SIGQUIT else signal.SIGTERM)

    # -- workers -------------------------------------------------------------------

    def live(self) -> List[int]:
        """The workers that are not on their way out."""
        return [pid for pid, w in self.workers.items() if not w.retiring]

    def fill(self) -> None:
        """Start workers until *count* serve or start (a rolling newcomer counts extra)."""
        extra = 1 if self.rolling.newcomer is not None else 0
        while len(self.live()) < self.count + extra:
            self.spawn()

    def spawn(self) -> int:
        report_r, report_w = os.pipe()
        slot = self.loads.claim()
        # The signals wait while the worker is forked: until the child has dropped the
        # supervisor's handlers, one sent to it (SIGTTOU retires the newest worker) would
        # run them and write into the wake-up pipe it shares with the supervisor, which
        # would take the worker's SIGTERM for its own and stop everything.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        if pid == 0:  # the worker
            status = 1
            self.loads.slot = slot
            try:
                os.close(report_r)
                self.selector.close()
                for sig in HANDLED:
                    signal.signal(sig, signal.SIG_DFL)
                signal.set_wakeup_fd(-1)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # what waited acts now
                status = self.serve(self.sockets, report_w, self.pid, self.loads)
            except BaseException:
                log.exception("worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(status)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(report_w)
        os.set_blocking(report_r, False)
        worker = _Worker(pid, report_r, time.monotonic(), slot=slot)
        self.workers[pid] = worker
        self.selector.register(report_r, selectors.EVENT_READ, worker)
        log.info("worker %d started", pid)
        return pid

    def read_report(self, worker: _Worker) -> None:
        try:
            data = os.read(worker.pipe, 4096)
        except BlockingIOError:
            return
        if not data:
            self.selector.unregister(worker.pipe)
            os.close(worker.pipe)
            worker.pipe = -1
            return
        worker.beat = time.monotonic()
        if data.startswith(FAILED) or worker.report:  # a failed start says only that
            worker.report += data
            worker.failure = worker.report[1:].decode("utf-8", "replace").strip()
        if READY in data and not worker.ready:
            worker.ready = True
            log.info("worker %d serving", worker.pid)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            self.gone(worker, status)

    def gone(self, worker: _Worker, status: int) -> None:
        self.loads.release(worker.slot)
        if worker.pipe >= 0:
            self.read_report(worker)  # what it said last
            if worker.pipe >= 0:
                self.selector.unregister(worker.pipe)
                os.close(worker.pipe)
        code = os.waitstatus_to_exitcode(status)
        how = f"exit status {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
        if worker.retiring or self.stopping:
            log.info("worker %d stopped (%s)", worker.pid, how)
            return
        if code == STARTUP_FAILED and not worker.ready:
            log.error("worker %d could not start: %s", worker.pid, worker.failure or how)
            self.failure = worker.failure or f"a worker could not start ({how})"
            self.stop(signal.SIGTERM, status=1)
            return
        if code == 0:
            log.info("worker %d finished (%s): replacing it", worker.pid, how)
            return
        log.warning("worker %d died (%s): replacing it", worker.pid, how)
        now = time.monotonic()
        if now - worker.started < 5:
            # Dying young, again and again: wait longer before each new try.
            self.failures = [t for t in self.failures if now - t < 60] + [now]
            delay = min(10.0, 0.1 * 2 ** len(self.failures))
            self.respawn_at = now + delay
            if delay >= 1:
                log.warning("workers keep dying at start: next one in %.1f s", delay)
        if self.rolling.newcomer == worker.pid:
            self.rolling.newcomer = None  # try again with another

    def retire(self, pid: int, sig: signal.Signals = signal.SIGTERM) -> None:
        worker = self.workers.get(pid)
        if worker is not None and not worker.retiring:
            worker.retiring = True
            _kill(pid, sig)

    def check_health(self, now: float) -> None:
        limit = self.settings.max_rss_mib
        for pid, worker in list(self.workers.items()):
            if worker.retiring:
                continue
            if not worker.ready:
                if now - worker.started > self.settings.startup_timeout:
                    log.error(
                        "worker %d did not start serving within %.0f s: killing it",
                        pid,
                        self.settings.startup_timeout,
                    )
                    _kill(pid, signal.SIGKILL)
                continue
            if now - worker.beat > self.settings.healthcheck_timeout:
                log.error(
                    "worker %d sent no heartbeat for %.1f s: killing it", pid, now - worker.beat
                )
                _kill(pid, signal.SIGKILL)
            elif limit is not None and pid not in self.rolling.queue and self.rolling.old != pid:
                rss = _rss_mib(pid)
                if rss is not None and rss > limit:
                    log.warning(
                        "worker %d uses %d MiB (limit %d MiB): replacing it", pid, rss, limit
                    )
                    self.rolling.queue.append(pid)

    def roll(self, now: float) -> None:
        """Replace the queued workers one at a time: the newcomer serves, then the old stops."""
        rolling = self.rolling
        if rolling.newcomer is None:
            while rolling.queue and rolling.queue[0] not in self.live():
                rolling.queue.pop(0)
            if not rolling.queue:
                return
            rolling.old = rolling.queue.pop(0)
            rolling.newcomer = self.spawn()
            return
        newcomer = self.workers.get(rolling.newcomer)
        if newcomer is None:
            rolling.newcomer = None
            return
        if newcomer.ready:
            if rolling.old is not None:
                self.retire(rolling.old)
            rolling.newcomer = rolling.old = None


def _kill(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _rss_mib(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def bind(config: Any) -> List[socket.socket]:
    """The listening socket the workers share, bound as *config* says."""
    if config.uds is not None:
        if os.path.exists(config.uds) and _is_socket(config.uds):
            os.unlink(config.uds)  # a stale socket file of a server gone
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(config.uds)
        sock.listen(config.backlog)
    else:
        sock = socket.create_server(
            (config.host, config.port),
            family=socket.AF_INET6 if ":" in config.host else socket.AF_INET,
            backlog=config.backlog,
            reuse_port=config.reuse_port,
        )
    sock.set_inheritable(True)
    return [sock]


def _is_socket(path: str) -> bool:
    import stat

    return stat.S_ISSOCK(os.stat(path).st_mode)


# -- the worker's side --------------------------------------------------------------


def worker_main(
    make_server: Callable[[List[socket.socket]], Any],
    loop_factory: Optional[Callable[[], asyncio.AbstractEventLoop]],
    sockets: List[socket.socket],
    report: int,
    parent: int,
    beat_interval: float,
    loads: Optional[Loads] = None,
) -> int:
    """Serve in a worker until told to stop; the worker's exit status.

    *make_server* loads the application and builds the :class:`cyhttp.Server` on the
    inherited sockets (an exception there is a startup failure); *report* is the
    pipe to the supervisor (pid *parent*).
    """
    from .server import StartupFailed

    def tell(what: bytes) -> None:
        try:
            os.write(report, what)
        except BlockingIOError:
            pass  # the supervisor is behind on reading: a heartbeat can be skipped
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    try:
        server = make_server(sockets)
    except Exception as exc:
        tell(FAILED + f"cannot load the application: {exc}".encode())
        return STARTUP_FAILED
    server.loads = loads  # the workers share the socket: spread its connections

    async def serve() -> int:
        loop = asyncio.get_running_loop()
        try:
            await server.start()
        except StartupFailed as exc:
            tell(FAILED + str(exc).encode())
            return STARTUP_FAILED
        os.set_blocking(report, False)
        tell(READY)
        stop = asyncio.Event()
        quick = False

        def halt(now: bool) -> None:
            nonlocal quick
            quick = quick or now
            stop.set()

        loop.add_signal_handler(signal.SIGTERM, halt, False)
        loop.add_signal_handler(signal.SIGINT, halt, False)
        loop.add_signal_handler(signal.SIGQUIT, halt, True)
        stopped = asyncio.ensure_future(server.serve_forever())

        def beat() -> None:
            if os.getppid() != parent:
                log.warning("worker %d: the supervisor is gone; stopping", os.getpid())
                halt(False)
                return
            tell(BEAT)
            loop.call_later(beat_interval, beat)

        beat()
        await asyncio.wait(
            [stopped, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED
        )
        await server.shutdown(0 if quick else None)
        await stopped
        return 0

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(serve())
