"""Server lifecycle: listening, the periodic sweep, graceful shutdown, and ``run``."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import os
import signal
import socket
from contextlib import contextmanager
from typing import (
    Any,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Set,
    Tuple,
    Union,
)

from . import _impl
from ._impl import protocol_class
from ._interface import detect
from ._lifespan import Lifespan, LifespanFailed
from ._listen import Acceptor, can_accept
from ._proxy import TrustedProxies
from .config import LOOPS, Config
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
        #: ``"native"`` or ``"asgi"``: how the application is called (``interface``).
        self.interface = detect(app, cfg.interface)
        #: The ASGI lifespan state: what the application's startup stored, copied into
        #: each request's scope.
        self.state: dict[str, Any] = {}
        self.app: Any = app
        if self.interface == "asgi":
            # To the core an ASGI application is one more handler.
            proxies = TrustedProxies(cfg.forwarded_allow_ips) if cfg.proxy_headers else None
            self.app = _impl.asgi_class(self._implementation)(
                app, cfg.root_path, self.state, proxies
            )
            if cfg.lifespan != "off":
                lifespan = Lifespan(app, cfg.lifespan, self.state)
                self._on_startup = (lifespan.startup, *self._on_startup)
                self._on_shutdown = (*self._on_shutdown, lifespan.shutdown)
        self.connections: Set[Any] = set()
        # Reads are handed to the parser synchronously and nothing keeps a view
        # of them, so every connection of this server can read into one buffer.
        self.read_buffer = memoryview(bytearray(READ_BUFFER_SIZE))
        self._protocol: Callable[[Server], asyncio.BaseProtocol] = protocol_class(
            self.config.implementation
        )
        self._sock = sock
        self._server: Optional[asyncio.Server] = None
        self._acceptor: Optional[Acceptor] = None
        self._uds_made: Optional[Tuple[int, int]] = None  # the socket file's (device, inode)
        self._sweeper: Optional[asyncio.TimerHandle] = None
        self._all_closed: Optional[asyncio.Future[None]] = None
        self._stopped: Optional[asyncio.Future[None]] = None
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
                raise StartupFailed(f"startup hook {_name(hook)} failed: {exc!r}") from exc
        loop = asyncio.get_running_loop()
        cfg = self.config
        protocol = self._protocol

        def factory() -> asyncio.BaseProtocol:
            return protocol(self)

        # The loop binds the sockets; the acceptor takes connections from them (_listen).
        eager = can_accept(loop)
        if self._sock is not None:
            self._server = await loop.create_server(
                factory, sock=self._sock, backlog=cfg.backlog, start_serving=not eager
            )
        elif cfg.uds is not None:
            # The loop replaces a stale socket file left at the path by a server gone.
            self._server = await loop.create_unix_server(
                factory, cfg.uds, backlog=cfg.backlog, start_serving=not eager
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
            )
        if eager:
            self._acceptor = Acceptor(loop, self._server.sockets, factory, cfg.backlog)
        if self.interface == "asgi":
            name = self._server.sockets[0].getsockname()
            # A Unix socket's server is [path, None] (ASGI spec).
            self.app.server = (name[0], name[1]) if isinstance(name, tuple) else (name, None)
            self.app.loop = loop
        self._stopped = loop.create_future()
        self._sweeper = loop.call_later(self._sweep_interval, self._sweep)

    def _sweep(self) -> None:
        # One coarse timer for every connection instead of a timer per request.
        for conn in list(self.connections):
            conn.tick()
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(self._sweep_interval, self._sweep)

    def track(self, conn: Any) -> bool:
        """Called by a core when a connection opens; False: over the limit, close it."""
        if len(self.connections) >= self.config.max_connections:
            return False
        self.connections.add(conn)
        return True

    def forget(self, conn: Any) -> None:
        """Called by a core when a connection is gone."""
        self.connections.discard(conn)
        waiter = self._all_closed
        if waiter is not None and not self.connections and not waiter.done():
            waiter.set_result(None)

    async def shutdown(self, timeout: Optional[float] = None) -> None:
        """Stop gracefully; in-flight requests get up to *timeout* seconds (default from config)."""
        server = self._server
        if server is None or self._stopped is None or self._stopped.done():
            return
        if timeout is None:
            timeout = self.config.shutdown_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._acceptor is not None:
            self._acceptor.close()
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
        if self.interface == "asgi":
            # ASGI applications may still run after their responses (background work).
            await self.app.drain(max(0.0, deadline - loop.time()))
        for hook in self._on_shutdown:
            try:
                await _call(hook)
            except Exception:
                log.exception("shutdown hook %s failed", _name(hook))
        self._stopped.set_result(None)

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


def _loop_factory(loop: str) -> Optional[Callable[[], asyncio.AbstractEventLoop]]:
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
    app: Handler,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    loop: str = "auto",
    **options: Any,
) -> None:
    """Serve *app* until SIGINT or SIGTERM, then shut down gracefully.

    *loop* is ``"auto"`` (uvloop when installed), ``"uvloop"`` or ``"asyncio"``.
    ``on_startup``/``on_shutdown`` are :class:`Server`'s hooks; a failing startup
    hook ends the program with status 1 and a one-line message. Other keyword
    options are the fields of :class:`cyhttp.config.Config`.
    """
    server = Server(app, host, port, **options)
    factory = _loop_factory(loop)

    async def main() -> None:
        await server.start()
        running = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                running.add_signal_handler(sig, stop.set)
            except NotImplementedError:  # Windows' loops: a plain handler, then the loop
                signal.signal(sig, lambda *_: running.call_soon_threadsafe(stop.set))
        cfg = server.config
        where = f"unix:{cfg.uds}" if cfg.uds is not None else f"http://{cfg.host}:{server.port}"
        log.info("cyhttp (%s core) serving on %s", server.implementation, where)
        await stop.wait()
        log.info("shutting down")
        await server.shutdown()

    with _reporting(), asyncio.Runner(loop_factory=factory) as runner:
        try:
            runner.run(main())
        except StartupFailed as exc:
            log.error("%s", exc, exc_info=exc.__cause__)
            raise SystemExit(f"cyhttp: error: {exc}") from None


@contextmanager
def _reporting() -> Iterator[None]:
    """Show where ``run`` listens and why it stops, on stderr, when the program has set up
    no logging of its own (the CLI has; an embedding program decides for itself)."""
    if logging.getLogger().handlers or log.handlers:
        yield
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    level = log.level
    log.addHandler(handler)
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
