"""Server lifecycle: listening, the periodic sweep, graceful shutdown, and ``run``."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import os
import random
import signal
import socket
import sys
import time
from contextlib import contextmanager
from contextvars import Context
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Set,
    Tuple,
    Union,
)

from . import _connection_log, _impl, _process, _tls, _uvicorn
from ._access import AccessLog
from ._impl import protocol_class
from ._interface import detect
from ._lifespan import Lifespan, LifespanFailed
from ._listen import Acceptor, Loads, can_accept, inherited
from ._overload import ConcurrencyLimit
from ._proxy import TrustedProxies
from ._wire import FLAG_DATE, FLAG_SERVER, encode_headers
from .config import LOOPS, Config, body_limit
from .request import Request
from .response import Response, StreamingResponse

__all__ = ["Handler", "Hook", "Server", "StartupFailed", "run"]

log = logging.getLogger("cyhttp")

Hook = Callable[[], Union[Awaitable[None], None]]
"""A startup or shutdown hook: a callable taking nothing; a coroutine function is awaited."""


class StartupFailed(RuntimeError):
    """A startup hook raised: the server did not start (the hook's exception is the cause)."""


def _hooks(hooks: Iterable[Hook], what: str) -> tuple[Hook, ...]:
    try:
        found = tuple(hooks)
    except TypeError:
        raise TypeError(f"{what} must be a list of callables, got {type(hooks).__name__}") from None
    for hook in found:
        if not callable(hook):
            raise TypeError(f"{what} must hold callables, got {type(hook).__name__}")
    return found


async def _call(hook: Hook) -> None:
    result = hook()
    if inspect.isawaitable(result):
        await result


def _name(hook: Hook) -> str:
    return getattr(hook, "__qualname__", None) or repr(hook)


class Sweeps(NamedTuple):
    """The timeouts of a server, in seconds or (``Server.sweeps``) counted in its sweeps."""

    idle: float
    head: float
    body: float
    write: float
    linger: float


READ_BUFFER_SIZE = 64 * 1024

AnyResponse = Union[Response, StreamingResponse]
Handler = Callable[[Request], Union[AnyResponse, Awaitable[AnyResponse]]]
"""A handler: a plain function or a coroutine function taking a Request."""


class Server:
    """An HTTP/1.1 server bound to one address, on the running event loop.

    ``await start()`` listens (``port=0`` picks a free port, see :attr:`port`);
    ``await shutdown()`` stops accepting, lets in-flight requests finish within
    the timeout, closes idle connections, then drops the rest. Also usable as
    ``async with Server(app, ...) as server:``. Keyword options are the fields
    of :class:`cyhttp.config.Config`.

    *on_startup* hooks run in order before the server listens; if one raises,
    :meth:`start` raises :class:`StartupFailed` and nothing listens. *on_shutdown*
    hooks run in order once :meth:`shutdown` has closed every connection; one that
    raises is logged and the others still run. A hook is a callable taking no
    arguments; a coroutine function's result is awaited.
    """

    def __init__(
        self,
        app: Handler,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        sock: Optional[socket.socket] = None,
        on_startup: Iterable[Hook] = (),
        on_shutdown: Iterable[Hook] = (),
        **options: Any,
    ) -> None:
        self.config = cfg = Config(host=host, port=port, **options)
        self._on_startup = _hooks(on_startup, "on_startup")
        self._on_shutdown = _hooks(on_shutdown, "on_shutdown")
        self._implementation = cfg.implementation or _impl.implementation
        #: ``"native"``, ``"asgi"`` or ``"wsgi"``: how the application is called
        #: (``interface``).
        self.interface = detect(app, cfg.interface)
        self.config = cfg = body_limit(cfg, self.interface)
        #: The ASGI lifespan state: what the application's startup stored, copied into
        #: each request's scope.
        self.state: dict[str, Any] = {}
        #: What the core calls for each request: the handler, or the ASGI adapter.
        self.app: Any = app
        #: The TLS context (``ssl_certfile``), or None for plain HTTP.
        self.ssl = _tls.context(cfg)
        #: ``"https"`` over TLS, else ``"http"``: what requests report as their scheme.
        self.scheme = "http" if self.ssl is None else "https"
        #: Worker processes sharing the listening socket set their shared connection
        #: counts here, so that connections spread over them (see ``_listen``).
        self.loads: Optional[Loads] = None
        self._lifespan: Optional[Lifespan] = None
        self._asgi: Any = None
        self._wsgi: Any = None
        if self.interface == "wsgi":
            # The application runs on a pool of threads; to the core it is one more handler.
            proxies = TrustedProxies(cfg.forwarded_allow_ips) if cfg.proxy_headers else None
            self.app = self._wsgi = _impl.wsgi_class(self._implementation)(
                app, cfg.threads, cfg.root_path, proxies, self.scheme
            )
        elif self.interface == "asgi":
            # To the core an ASGI application is one more handler.
            proxies = TrustedProxies(cfg.forwarded_allow_ips) if cfg.proxy_headers else None
            self.app = self._asgi = _impl.asgi_class(self._implementation)(
                app, cfg.root_path, self.state, proxies, self.scheme
            )
            if cfg.lifespan != "off":
                self._lifespan = lifespan = Lifespan(app, cfg.lifespan, self.state)
                self._on_startup = (lifespan.startup, *self._on_startup)
                self._on_shutdown = (*self._on_shutdown, lifespan.shutdown)
        if cfg.limit_concurrency is not None:
            self.app = ConcurrencyLimit(self.app, cfg.limit_concurrency)
        if cfg.limit_max_requests is not None:
            limit = cfg.limit_max_requests + random.randint(0, cfg.limit_max_requests_jitter)
            self.app = _Counting(self.app, limit, self._exhausted)
        #: The access log the cores write to (None: off).
        self.access_log = AccessLog(cfg.access_log_format) if cfg.access_log else None
        #: The fields every answer carries besides the response's own, and the FLAG_*
        #: bits of the Date/Server lines the cores leave out.
        head, flags, _ = encode_headers(cfg.headers, None)
        self.extra_head: Optional[bytes] = head or None
        self.omit = flags & (FLAG_SERVER | FLAG_DATE)
        if not cfg.server_header:
            self.omit |= FLAG_SERVER
        if not cfg.date_header:
            self.omit |= FLAG_DATE
        self.connections: Set[Any] = set()
        self._full_logged = -60.0  # when max_connections was last said to be reached
        # Reads are handed to the parser synchronously and nothing keeps a view
        # of them, so every connection of this server can read into one buffer.
        self.read_buffer = memoryview(bytearray(READ_BUFFER_SIZE))
        #: Logs the requests the cores refuse, rate-limited per peer across connections.
        self.refusals = _connection_log.Refusals()
        #: What the core's connections share beyond it (made by the first connection).
        self.shared: Any = None
        self._protocol: Callable[[Server], asyncio.BaseProtocol] = protocol_class(
            self.config.implementation
        )
        self._sock = sock
        self._server: Optional[asyncio.Server] = None
        self._acceptor: Optional[Acceptor] = None
        self._uds_made: Optional[Tuple[int, int]] = None  # the socket file's (device, inode)
        self._sweeper: Optional[asyncio.TimerHandle] = None
        # The sweep's wheel: the connections due at each sweep, by its number (see _sweep).
        self._wheel: Dict[int, List[Any]] = {}
        self._swept = 0  # sweeps done
        self._all_closed: Optional[asyncio.Future[None]] = None
        self._stopped: Optional[asyncio.Future[None]] = None
        self._stopping: Optional[asyncio.Task[None]] = None
        cfg = self.config
        timeouts = Sweeps(
            cfg.keepalive_timeout,
            cfg.header_timeout,
            cfg.body_timeout,
            cfg.write_timeout,
            cfg.linger_timeout,
        )
        ws = (cfg.ws_ping_timeout, cfg.ws_close_timeout, cfg.ws_ping_interval or math.inf)
        interval = min(1.0, min(*timeouts, *ws) / 4)
        self._sweep_interval = interval
        #: Each timeout counted in sweeps of the server; the cores read it.
        self.sweeps = Sweeps(*(max(1, math.ceil(t / interval)) for t in timeouts))

    @property
    def multiprocess(self) -> bool:
        """Whether other processes serve the same application (worker processes): what
        WSGI applications read as ``wsgi.multiprocess``. Set by the process that makes
        the server; False until then."""
        return bool(self._wsgi is not None and self._wsgi.base["wsgi.multiprocess"])

    @multiprocess.setter
    def multiprocess(self, value: bool) -> None:
        if self._wsgi is not None:
            self._wsgi.set_base("wsgi.multiprocess", bool(value))

    def sweeps_for(self, seconds: float) -> int:
        """*seconds* counted in sweeps of this server (at least one; 0 stays 0: off)."""
        return max(1, math.ceil(seconds / self._sweep_interval)) if seconds else 0

    @property
    def implementation(self) -> str:
        """Which core serves this server's connections: ``"cython"`` or ``"python"``."""
        return self._implementation

    @property
    def sockets(self) -> List[socket.socket]:
        """The listening sockets (empty before :meth:`start`)."""
        return list(self._server.sockets) if self._server is not None else []

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        if self.config.uds is not None:
            raise RuntimeError(f"the server listens on the Unix socket {self.config.uds}: no port")
        for sock in self.sockets:
            return int(sock.getsockname()[1])
        raise RuntimeError("the server is not listening")

    @property
    def where(self) -> str:
        """Where the server listens, for people: ``unix:PATH`` or ``SCHEME://HOST:PORT``."""
        for sock in self.sockets:
            return where(sock, self.scheme)
        raise RuntimeError("the server is not listening")

    async def start(self) -> None:
        """Listen and start serving on the running loop."""
        if self._server is not None:
            raise RuntimeError("server already started")
        for hook in self._on_startup:
            try:
                await _call(hook)
            except LifespanFailed as exc:
                raise StartupFailed(str(exc)) from exc
            except Exception as exc:
                if self._lifespan is not None:  # started before the other hooks: stop it
                    await self._stop([self._lifespan.shutdown])
                raise StartupFailed(f"startup hook {_name(hook)} failed: {exc!r}") from exc
        loop = asyncio.get_running_loop()
        self.shared = None  # made again by the first connection: it keeps this run's loop
        try:
            if self.config.reset_contextvars:
                # A handler runs in a copy of the context its connection was accepted in:
                # accepting in an empty one hides whatever the server's context holds.
                await loop.create_task(self._listen(loop), context=Context())
            else:
                await self._listen(loop)
        except Exception:
            # Everything started stops in order (the application's lifespan shutdown
            # included, which it would otherwise see as a cancellation); the error itself
            # (a port in use) is for the caller to report.
            await self._stop(self._on_shutdown)
            raise
        self._stopped = loop.create_future()
        self._sweeper = loop.call_later(self._sweep_interval, self._sweep)

    async def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        cfg = self.config
        protocol = self._protocol

        def factory() -> asyncio.BaseProtocol:
            return protocol(self)

        # The loop binds the sockets; the acceptor takes connections from them (_listen).
        eager = can_accept(loop)
        # A TLS handshake is bounded as a request head is.
        tls: Dict[str, Any] = {}
        if self.ssl is not None:
            tls = {"ssl": self.ssl, "ssl_handshake_timeout": cfg.header_timeout}
        if self._sock is not None:
            self._server = await loop.create_server(
                factory, sock=self._sock, backlog=cfg.backlog, start_serving=not eager, **tls
            )
        elif cfg.uds is not None:
            # The loop replaces a stale socket file left at the path by a server gone.
            self._server = await loop.create_unix_server(
                factory, cfg.uds, backlog=cfg.backlog, start_serving=not eager, **tls
            )
            made = os.stat(cfg.uds)
            self._uds_made = (made.st_dev, made.st_ino)
        else:
            self._server = await loop.create_server(
                factory,
                cfg.host,
                cfg.port,
                backlog=cfg.backlog,
                reuse_address=True,
                reuse_port=cfg.reuse_port or None,
                start_serving=not eager,
                **tls,
            )
        if eager:
            self._acceptor = Acceptor(
                loop, self._server.sockets, factory, cfg.backlog, tls, self.loads
            )
        layer = self._asgi or self._wsgi
        if layer is not None:
            name = self._server.sockets[0].getsockname()
            # A Unix socket's server is [path, None] (ASGI spec).
            layer.server = (name[0], name[1]) if isinstance(name, tuple) else (name, None)
            layer.loop = loop

    def reload_tls(self) -> None:
        """Read the TLS certificate and key again (``SIGHUP`` under :func:`run`): new
        handshakes use them, open connections go on. A file that cannot be loaded now is
        logged and the previous certificate stays."""
        if self.ssl is None:
            return
        try:
            _tls.reload(self.ssl, self.config)
        except _tls.TlsError as exc:
            log.error("TLS certificate not reloaded: %s", exc)
            return
        log.info("TLS certificate reloaded from %s", self.config.ssl_certfile)

    def _sweep(self) -> None:
        # One coarse timer for every connection instead of a timer per request.
        self._sweep_due()
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(self._sweep_interval, self._sweep)

    def _sweep_due(self) -> int:
        """One sweep: tick the connections due now; returns how many that was.

        A connection busy with a request is due at every sweep (its head, body, write and
        linger timeouts count sweeps); an idle one only at its idle deadline, parked until
        then unless it reads first (``wake``). So idle connections cost the sweep nothing,
        however many there are.
        """
        now = self._swept + 1
        due = self._wheel.pop(now, ())
        for conn in due:
            conn.sweep_due = 0
            if conn.parked:
                conn.unpark(1)  # its idle deadline is this sweep
            left = conn.tick()
            if left >= 0:
                self._due(conn, now + (left or 1), left > 0)
        self._swept = now
        return len(due)

    def _due(self, conn: Any, sweep: int, parked: bool) -> None:
        """Put *conn* in the wheel at *sweep* (parked: idle until then)."""
        bucket = self._wheel.get(sweep)
        if bucket is None:
            bucket = self._wheel[sweep] = []
        conn.sweep_due = sweep
        conn.sweep_slot = len(bucket)
        conn.parked = parked
        bucket.append(conn)

    def _undue(self, conn: Any) -> None:
        """Take *conn* out of the wheel (in place: the last of its bucket takes its slot)."""
        sweep, conn.sweep_due = conn.sweep_due, 0
        bucket = self._wheel.get(sweep)
        if bucket is None:
            return  # not in the wheel, or in the bucket the sweep is visiting
        last = bucket.pop()
        if last is not conn:
            bucket[conn.sweep_slot] = last
            last.sweep_slot = conn.sweep_slot
        elif not bucket:
            del self._wheel[sweep]  # no empty bucket waits for its sweep

    def wake(self, conn: Any) -> None:
        """Called by a core when a parked connection reads: it is due at the next sweep."""
        left = conn.sweep_due - self._swept
        self._undue(conn)
        conn.unpark(left)
        self._due(conn, self._swept + 1, False)

    def track(self, conn: Any) -> bool:
        """Called by a core when a connection opens; False: over the limit, close it."""
        if len(self.connections) >= self.config.max_connections:
            now = time.monotonic()
            if now - self._full_logged >= 60:  # once a minute, however many are turned away
                self._full_logged = now
                log.warning(
                    "max_connections (%d) reached: new connections are closed",
                    self.config.max_connections,
                )
            return False
        self.connections.add(conn)
        self._due(conn, self._swept + 1, False)
        if self.loads is not None:
            self.loads.publish(len(self.connections))
        return True

    def forget(self, conn: Any) -> None:
        """Called by a core when a connection is gone."""
        self.connections.discard(conn)
        self._undue(conn)
        if self.loads is not None:
            self.loads.publish(len(self.connections))
        waiter = self._all_closed
        if waiter is not None and not self.connections and not waiter.done():
            waiter.set_result(None)

    def _exhausted(self, served: int) -> None:
        """The request limit is reached: stop as on a signal, once."""
        if self._stopping is None and self._stopped is not None:
            log.info("served %d requests (limit_max_requests): shutting down", served)
            self._stopping = asyncio.get_running_loop().create_task(self._shutdown(None))

    async def shutdown(self, timeout: Optional[float] = None) -> None:
        """Stop gracefully; in-flight requests get up to *timeout* seconds (default from config).

        A shutdown already under way (the request limit reached) is waited for.
        """
        if self._stopped is None:
            return  # never started
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_task(self._shutdown(timeout))
        await asyncio.shield(self._stopping)

    async def _shutdown(self, timeout: Optional[float]) -> None:
        server = self._server
        if server is None or self._stopped is None or self._stopped.done():
            return
        if timeout is None:
            timeout = self.config.shutdown_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._acceptor is not None:
            self._acceptor.close()
        if self.loads is not None:
            self.loads.leave()
        server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._all_closed = loop.create_future()
        for conn in list(self.connections):
            conn.shutdown()
        if self.connections:
            try:
                await asyncio.wait_for(asyncio.shield(self._all_closed), timeout)
            except TimeoutError:
                log.warning("shutdown timeout: dropping %d connection(s)", len(self.connections))
                for conn in list(self.connections):
                    conn.abort()
                await asyncio.sleep(0)  # let connection_lost run
        await server.wait_closed()
        self._remove_uds()
        layer = self._asgi or self._wsgi
        if layer is not None:
            # ASGI applications may still run after their responses (background work);
            # WSGI ones on the pool's threads (a response streamed to a client gone).
            await layer.drain(max(0.0, deadline - loop.time()))
        await self._stop(self._on_shutdown)
        self._stopped.set_result(None)

    @staticmethod
    async def _stop(hooks: Iterable[Hook]) -> None:
        """Run shutdown *hooks* in order; one that raises is logged and the others run."""
        for hook in hooks:
            try:
                await _call(hook)
            except LifespanFailed as exc:  # the application's own words say it all
                log.error("%s", exc)
            except Exception:
                log.exception("shutdown hook %s failed", _name(hook))

    def _remove_uds(self) -> None:
        """Remove the Unix socket's file, unless another server has made one there since."""
        path = self.config.uds
        if path is None or self._uds_made is None:
            return
        try:
            now = os.stat(path)
            if (now.st_dev, now.st_ino) == self._uds_made:
                os.unlink(path)
        except OSError:
            pass  # already gone
        self._uds_made = None

    async def serve_forever(self) -> None:
        """Start if needed, then wait until :meth:`shutdown` has finished."""
        if self._server is None:
            await self.start()
        assert self._stopped is not None
        await asyncio.shield(self._stopped)

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()


class _Counting:
    """The handler of a server with a request limit: counts, then calls the real one."""

    __slots__ = ("exhausted", "handler", "limit", "served")

    def __init__(self, handler: Any, limit: int, exhausted: Callable[[int], None]) -> None:
        self.handler = handler
        self.limit = limit
        self.exhausted = exhausted
        self.served = 0

    def __call__(self, request: Request) -> Any:
        self.served += 1
        if self.served == self.limit:
            self.exhausted(self.served)
        return self.handler(request)


def where(sock: socket.socket, scheme: str = "http") -> str:
    """``unix:PATH`` or ``SCHEME://HOST:PORT`` for the listening socket *sock*."""
    name = sock.getsockname()
    if not isinstance(name, tuple):
        return f"unix:{name}"
    host = f"[{name[0]}]" if ":" in name[0] else name[0]
    return f"{scheme}://{host}:{name[1]}"


def loop_factory_for(loop: str) -> Optional[Callable[[], asyncio.AbstractEventLoop]]:
    """What makes the event loop *loop* names (one of ``LOOPS``); None for asyncio's own."""
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {', '.join(LOOPS)}, got {loop!r}")
    if loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if loop == "uvloop":
            raise
        return None
    return uvloop.new_event_loop


def run(
    app: Union[Handler, str],
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    loop: str = "auto",
    factory: bool = False,
    app_dir: Optional[str] = None,
    env_file: Optional[Union[str, os.PathLike[str]]] = None,
    log_config: Any = None,
    log_level: Optional[Union[str, int]] = None,
    use_colors: Optional[bool] = None,
    fd: Optional[int] = None,
    **options: Any,
) -> None:
    """Serve *app* until SIGINT or SIGTERM, then shut down gracefully.

    *app* is a handler or an ASGI application, or where to import it from as
    ``"MODULE:ATTR"`` (looked for in *app_dir* first, if given), which with *factory*
    is called once to make it. *loop* is ``"auto"`` (uvloop when installed),
    ``"uvloop"`` or ``"asyncio"``. *env_file* is a dotenv file whose variables are set
    (unless already set) before the application is imported; *log_config* a
    ``logging.config`` dict or a JSON, YAML or INI file applied first; *log_level* the
    threshold of cyhttp's loggers; *use_colors* colours the level of the lines ``run``
    writes when the program has set up no logging (default: on a terminal). *fd* is an
    inherited listening socket's descriptor to serve (``sock=`` takes the socket).
    ``on_startup``/``on_shutdown`` are :class:`Server`'s hooks; a failing startup
    hook ends the program with status 1 and a one-line message. Other keyword
    options are the fields of :class:`cyhttp.config.Config`, or ``uvicorn.run``'s names
    for them (``timeout_keep_alive=``, ...); a uvicorn setting cyhttp cannot honour
    raises ``ValueError`` saying so (docs/uvicorn.md).
    """
    problem = _uvicorn.refusal("loop", loop)
    if problem is not None:
        raise ValueError(problem)
    options = _uvicorn.translate(options)
    if fd is not None:
        options["sock"] = inherited(fd)
    if log_config is not None:
        _process.configure_logging(log_config)
    if log_level is not None:
        log.setLevel(_process.level_of(log_level))
    if env_file is not None:
        _process.load_env_file(env_file)
    handler: Any = app
    if isinstance(app, str):
        if app_dir is not None:
            sys.path.insert(0, app_dir)
        handler = _process.load_app(app)
    if factory:
        handler = handler()
    server = Server(handler, host, port, **options)
    loop_factory = loop_factory_for(loop)

    async def main() -> None:
        await server.start()
        running = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                running.add_signal_handler(sig, stop.set)
            except NotImplementedError:  # Windows' loops: a plain handler, then the loop
                signal.signal(sig, lambda *_: running.call_soon_threadsafe(stop.set))
        if server.ssl is not None and hasattr(signal, "SIGHUP"):
            running.add_signal_handler(signal.SIGHUP, server.reload_tls)
        log.info("cyhttp (%s core) serving on %s", server.implementation, server.where)
        signalled = asyncio.ensure_future(stop.wait())
        assert server._stopped is not None
        await asyncio.wait((signalled, server._stopped), return_when=asyncio.FIRST_COMPLETED)
        if signalled.done():
            log.info("shutting down")
        else:  # the server stopped itself (limit_max_requests)
            signalled.cancel()
        await server.shutdown()

    with _reporting(use_colors), asyncio.Runner(loop_factory=loop_factory) as runner:
        try:
            runner.run(main())
        except StartupFailed as exc:
            log.error("%s", exc, exc_info=exc.__cause__)
            raise SystemExit(f"cyhttp: error: {exc}") from None


@contextmanager
def _reporting(use_colors: Optional[bool]) -> Iterator[None]:
    """Show where ``run`` listens and why it stops, on stderr, when the program has set up
    no logging of its own (the CLI has; an embedding program decides for itself)."""
    if logging.getLogger().handlers or log.handlers:
        yield
        return
    handler = logging.StreamHandler()
    handler.setFormatter(_process.log_format(use_colors))
    level = log.level
    log.addHandler(handler)
    if log.level == logging.NOTSET and log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
