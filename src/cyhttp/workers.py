"""gunicorn worker classes: ``gunicorn -k cyhttp.workers.CyhttpWorker app:app``.

gunicorn's arbiter binds the sockets, forks, watches heartbeats and restarts
workers; each worker here serves the application gunicorn loaded (a cyhttp
handler or an ASGI 3 application, told apart as ``--interface auto`` does) with a
:class:`cyhttp.Server` on gunicorn's socket. gunicorn's settings that have a
meaning for cyhttp are mapped onto its own (see ``settings_from``); the rest are
gunicorn's business (binding, user, workers) or named at start as ignored.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any, Dict

from gunicorn.workers.base import Worker

from .server import Server, StartupFailed, _loop_factory

__all__ = ["CyhttpAsyncioWorker", "CyhttpWorker", "settings_from"]

# gunicorn's exit status for "the worker failed to boot": the arbiter stops instead of
# restarting the worker again and again.
WORKER_BOOT_ERROR = 3

# gunicorn settings that only its own workers read: named once at start when set.
IGNORED = ("threads", "worker_connections", "proxy_protocol", "limit_request_field_size")


def settings_from(cfg: Any, max_requests: int = 0) -> Dict[str, Any]:
    """cyhttp's settings for gunicorn's configuration *cfg*; *max_requests* is the
    worker's own request limit (gunicorn adds its jitter to ``--max-requests``)."""
    options: Dict[str, Any] = {
        "keepalive_timeout": float(cfg.keepalive) if cfg.keepalive > 0 else 5.0,
        "shutdown_timeout": float(cfg.graceful_timeout),
        "access_log": cfg.accesslog is not None,
        # gunicorn's atoms are cyhttp's too (_access): its format line works as is.
        "access_log_format": cfg.access_log_format,
        "forwarded_allow_ips": ",".join(cfg.forwarded_allow_ips)
        if isinstance(cfg.forwarded_allow_ips, list)
        else str(cfg.forwarded_allow_ips),
    }
    # gunicorn's 0 means "no limit": cyhttp's own default bound stays then.
    if cfg.limit_request_line > 0:
        options["max_url_size"] = cfg.limit_request_line
    if cfg.limit_request_fields > 0:
        options["max_headers"] = cfg.limit_request_fields
    if cfg.max_requests > 0:
        options["limit_max_requests"] = max_requests
    return options


class CyhttpWorker(Worker):  # type: ignore[misc]
    """A gunicorn worker serving with cyhttp on uvloop (asyncio's own loop without it)."""

    loop = "auto"

    def init_signals(self) -> None:
        # The event loop takes the signals (see serve); gunicorn's handlers would
        # interrupt it from outside.
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, lambda *_: self.log.reopen_files())
        signal.siginterrupt(signal.SIGUSR1, False)

    def run(self) -> None:
        self._route_logs()
        for name in IGNORED:
            if self.cfg.settings[name].value != self.cfg.settings[name].default:
                self.log.warning("cyhttp worker: gunicorn's %s is ignored", name)
        with asyncio.Runner(loop_factory=_loop_factory(self.loop)) as runner:
            status = runner.run(self.serve())
        sys.exit(status)

    def _route_logs(self) -> None:
        """cyhttp's loggers write where gunicorn's do (its --error-logfile, --access-logfile)."""
        for name, target in (
            ("cyhttp", self.log.error_log),
            ("cyhttp.access", self.log.access_log),
        ):
            logger = logging.getLogger(name)
            logger.handlers = list(target.handlers)
            logger.setLevel(target.level)
            logger.propagate = False

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        if len(self.sockets) != 1:
            self.log.error("cyhttp worker: serves one bound address; got %d", len(self.sockets))
            return WORKER_BOOT_ERROR
        try:
            options = settings_from(self.cfg, self.max_requests)
            server = Server(self.wsgi, sock=self.sockets[0].sock, **options)
            server.multiprocess = self.cfg.workers > 1
            await server.start()
        except (StartupFailed, ValueError, TypeError) as exc:
            self.log.error("cyhttp worker: %s", exc)
            return WORKER_BOOT_ERROR
        stop = asyncio.Event()
        quick = False

        def halt(now: bool) -> None:
            nonlocal quick
            quick = quick or now
            self.alive = False
            stop.set()

        loop.add_signal_handler(signal.SIGTERM, halt, False)
        for sig in (signal.SIGQUIT, signal.SIGINT):
            loop.add_signal_handler(sig, halt, True)

        def beat() -> None:
            # gunicorn's heartbeat; an orphaned worker (the arbiter gone) stops itself.
            if self.ppid != os.getppid():
                self.log.info("cyhttp worker: the arbiter is gone; stopping")
                halt(False)
                return
            self.notify()
            loop.call_later(max(0.5, self.timeout / 2), beat)

        beat()
        # Until told to stop, or until the server stops by itself (--max-requests).
        stopped = asyncio.ensure_future(server.serve_forever())
        told = asyncio.ensure_future(stop.wait())
        await asyncio.wait((stopped, told), return_when=asyncio.FIRST_COMPLETED)
        told.cancel()
        await server.shutdown(0 if quick else None)
        return 0


class CyhttpAsyncioWorker(CyhttpWorker):
    """The same on asyncio's own event loop."""

    loop = "asyncio"
