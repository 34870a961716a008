"""WSGI (PEP 3333) over the protocol: each request's application call on a pool thread.

Like ``_asgi.py`` this is one source with two builds: imported as is it serves the
pure core; ``setup.py`` compiles it once more as ``cyhttp._wsgi_c`` (typed by
``_wsgi_c.pxd``), which serves the compiled core with the compiled primitives.

Theory of operation
-------------------
To the protocol a WSGI application is one more handler: ``Wsgi`` is called on the
loop with each request and answers with a future of its response (the request's
``_Call``, which has what the protocol uses of one), as the ASGI layer does; the
protocol keeps doing everything else (parsing, the order of pipelined answers,
framing, timeouts, flow control, closing). The application is called on a thread
of a bounded pool (``_threads.Pool``), since WSGI applications block; the
request's environ is built there too, from what the loop took of the request
(``_Call``), so the loop does as little as it can per request.

What crosses between the two threads goes through the ``_Call`` of the request,
under the handler's one lock (``Wsgi.lock``), so that nothing is shared unguarded
(a free-threaded interpreter runs the pool in parallel):

* loop to thread: the calls made in one loop turn go to the pool together, once
  the turn's reads are done (``kick``); on the compiled core the loop's thread
  lets go of the GIL to wake a pool thread, and has it back once that thread is
  done with the batch, blocks, or is asked for it (the switch interval);
* thread to loop: the thread puts what it made in the call (a whole response, or
  the head and the pieces of a streamed body, or the end) and posts the call to
  the handler's outbox (``post``). Answers posted while the loop waits in ``kick``
  are landed as it returns; otherwise only the first post since the loop last
  emptied the outbox wakes the loop (``call_soon_threadsafe``), so answers made
  in a burst cost one wake-up;
* a thread that must wait (for room, when it has more of a
  streamed body queued than ``STREAM_HIGH_WATER``; for a piece of the request
  body that has not arrived) blocks on a ``_Wait`` that the loop releases. The
  loop never blocks.

A body known whole before any of it was handed over (a list, or an iterable that
ended before the loop took its head) becomes one ``Response``, written as a native
handler's; anything else streams as a ``StreamingResponse`` whose pieces the
writer takes as the client reads them. ``close()`` of the application's iterable
is called on the thread on every path, before the end of the response is posted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
from functools import partial
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import _outcomes, _streaming
from ._proxy import TrustedProxies
from ._streaming import StreamAborted
from ._threads import STALL
from ._wire import FLAG_STATUS_LINE, STATUS_LINES, encode_headers
from .errors import ClientDisconnected

try:
    import cython
except ImportError:  # Cython is needed only to build the compiled core
    from . import _no_cython as cython  # type: ignore[no-redef]

if cython.compiled:
    from cython.cimports.cpython.contextvars import PyContext_CopyCurrent as copy_context
    from cython.cimports.cpython.contextvars import PyContext_Enter, PyContext_Exit
    from cython.cimports.cyhttp import _primitives as primitives
    from cython.cimports.cyhttp._asgi_c import forwarded_by
    from cython.cimports.cyhttp._request import Request as CRequest
    from cython.cimports.cyhttp._response import Response, StreamingResponse, new_response
    from cython.cimports.cyhttp._threads_c import Pool
else:
    from contextvars import copy_context

    from . import _primitives_py as primitives
    from ._asgi import forwarded_by
    from ._threads import Pool
    from .request import Request as CRequest
    from .response import Response, StreamingResponse

    new_response = Response  # the compiled core makes one without a Python call

__all__ = ["FileWrapper", "Wsgi"]

log = logging.getLogger("cyhttp.error")

# Streamed body a thread may have queued for the writer before it waits for room.
STREAM_HIGH_WATER = 64 * 1024
# How long shutdown waits at least for idle threads to end, and how often it looks.
DRAIN_GRACE = 0.1
DRAIN_POLL = 0.01
# "200 OK"...: a status whose line the core's table has (the application's is kept else).
STANDARD_STATUSES = frozenset(line[9:-2].decode("latin-1") for line in STATUS_LINES.values())
# Posted for a body that started streaming: the loop makes its head when it lands it.
# Most bodies end before the loop looks (a framework's iterable of one piece); the
# thread then posts one whole Response and no stream is ever made.
HEAD_DUE = object()
# The environ keys of Host and of the fields a trusted proxy speaks through.
HOST_KEY = "HTTP_HOST"
FORWARDED_FOR_KEY = "HTTP_X_FORWARDED_FOR"
FORWARDED_PROTO_KEY = "HTTP_X_FORWARDED_PROTO"
# Header names whose environ keys are remembered (a client cannot grow it past this);
# the same bound holds the statuses and Host values remembered.
KEYS_CACHED = 256
# The keys an environ holds before its dict grows: the 18 every one has and 22 header
# fields (a browser sends 10 to 15).
ENVIRON_ROOM = 40

# A response that failed before its head: the client reads 500; where the failure may
# have left the exchange in doubt (output the server cannot frame), the connection closes.
INTERNAL_ERROR = _outcomes.INTERNAL_ERROR
CLOSING_ERROR = Response(
    b"Internal Server Error\n",
    500,
    headers=[("Connection", "close")],
    content_type="text/plain; charset=utf-8",
)


def parse_status(status: Any) -> Tuple[int, Optional[str]]:
    """The code of a ``start_response`` *status*, and the status itself where its
    reason is not the core's (its line is sent as given); raises for a bad one."""
    if type(status) is not str:
        raise TypeError(f"status must be a str, not {type(status).__name__}")
    code = status[:3]
    if not (len(status) >= 4 and code.isdigit() and status[3] == " "):
        raise ValueError(f"status must be 'NNN reason', got {status!r}")
    if not 200 <= int(code) <= 599:
        raise ValueError(f"status must be from 200 to 599, got {status!r}")
    return int(code), None if status in STANDARD_STATUSES else status


def environ_key(keys: Dict[bytes, str], name: bytes) -> str:
    """The environ key of header *name* (lower case), kept in *keys* while it has room:
    "" for a field not passed on. A module function, not a method, so that the handler
    can hand it to the core without a bound method that refers back to it."""
    key = keys.get(name)
    if key is None:
        if b"_" in name:
            # An underscore would read as a dash in the key: X_Auth_User could pose
            # as X-Auth-User, which a proxy in front may have vetted. Dropped.
            key = ""
        elif name == b"content-type" or name == b"content-length":
            key = name.decode("latin-1").upper().replace("-", "_")
        else:
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        if len(keys) < KEYS_CACHED:
            keys[name] = key
    return key


# The fields browsers, API clients and proxies send, whose keys are found without a
# lower-case name made per field (FieldKeys); any other's key is made once and kept.
KNOWN_NAMES = (
    b"accept", b"accept-charset", b"accept-encoding", b"accept-language", b"authorization",
    b"cache-control", b"connection", b"content-encoding", b"content-length",
    b"content-type", b"cookie", b"dnt", b"expect", b"forwarded", b"if-match",
    b"if-modified-since", b"if-none-match", b"if-range", b"if-unmodified-since",
    b"keep-alive", b"origin", b"pragma", b"priority", b"range", b"referer", b"sec-ch-ua",
    b"sec-ch-ua-mobile", b"sec-ch-ua-platform", b"sec-fetch-dest", b"sec-fetch-mode",
    b"sec-fetch-site", b"sec-fetch-user", b"te", b"transfer-encoding", b"upgrade",
    b"upgrade-insecure-requests", b"user-agent", b"via", b"x-csrftoken",
    b"x-forwarded-host", b"x-real-ip", b"x-request-id", b"x-requested-with",
)  # fmt: skip
KNOWN_FIELDS = primitives.FieldKeys(
    {
        **{name: environ_key({}, name) for name in KNOWN_NAMES},
        # The very strings environ() tells these apart by.
        b"host": HOST_KEY,
        b"x-forwarded-for": FORWARDED_FOR_KEY,
        b"x-forwarded-proto": FORWARDED_PROTO_KEY,
    }
)


class _Gone(Exception):
    """Nobody reads the response any more: the thread stops producing it."""


class _Unframeable(TypeError):
    """The application produced what the server cannot send (not ``bytes``)."""


class _Wait:
    """What a pool thread blocks on until the loop answers (a lock, released once)."""

    __slots__ = ("error", "lock", "value")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()
        self.value: Any = None
        self.error: Optional[BaseException] = None

    def give(self, value: Any = None) -> None:
        self.value = value
        self.lock.release()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.lock.release()

    def result(self) -> Any:
        self.lock.acquire()
        if self.error is not None:
            raise self.error
        return self.value


class FileWrapper:
    """``wsgi.file_wrapper``: a file-like object as a response body.

    Iterated, it reads *filelike* in *block_size* pieces; returned as the
    application's result, when *filelike* has a real file descriptor of a regular
    file, the server sends it from its current position with ``os.sendfile``.
    """

    def __init__(self, filelike: Any, block_size: int = 8192) -> None:
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self) -> Any:
        read, size = self.filelike.read, self.block_size
        while True:
            piece = read(size)
            if not piece:
                return
            yield piece

    def close(self) -> None:
        """Close *filelike*, if it has a ``close`` (PEP 3333: the server calls this)."""
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


class _Input:
    """``wsgi.input``: the request body as it arrives, read on the application's thread.

    A body already whole when the request was dispatched is read from memory;
    any other is asked of the loop piece by piece (``_Call.fetch``), which sends
    ``100 Continue`` on the first read if the client asked for it.
    """

    __slots__ = ("buffer", "call", "eof", "pos")

    def __init__(self, call: _Call, body: Optional[bytes]) -> None:
        self.call = call
        self.buffer = b"" if body is None else body
        self.pos = 0
        self.eof = body is not None

    def _more(self) -> bool:
        """Wait for the next piece of the body; False at its end."""
        if self.eof:
            return False
        piece = self.call.fetch()
        if not piece:
            self.eof = True
            return False
        self.buffer = self.buffer[self.pos :] + piece
        self.pos = 0
        return True

    def _take(self, end: int) -> bytes:
        data = self.buffer[self.pos : end]
        self.pos += len(data)
        return data

    def read(self, size: Optional[int] = -1) -> bytes:
        """Up to *size* bytes (all that is left with -1 or None); b"" at the end."""
        if size is None or size < 0:
            while self._more():
                pass
            return self._take(len(self.buffer))
        while len(self.buffer) - self.pos < size and self._more():
            pass
        return self._take(self.pos + size)

    def readline(self, size: Optional[int] = -1) -> bytes:
        """One line, its ``\\n`` included (at most *size* bytes when given)."""
        limit = -1 if size is None else size
        start = self.pos
        while True:
            end = self.buffer.find(b"\n", start)
            if end >= 0:
                end += 1
                break
            start = len(self.buffer)
            if 0 <= limit <= start - self.pos or not self._more():
                end = len(self.buffer)
                break
            start -= self.pos  # _more dropped what was read
        if 0 <= limit < end - self.pos:
            end = self.pos + limit
        return self._take(end)

    def readlines(self, hint: int = -1) -> List[bytes]:
        """The lines left (stopping once *hint* bytes were read, when given)."""
        lines: List[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self) -> _Input:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


# ``wsgi.input`` of a request with no body: it reads nothing, so every such request
# can share it (nothing in it changes).
NO_INPUT = _Input(None, b"")  # type: ignore[arg-type]


class _Errors:
    """``wsgi.errors``: what the application writes there goes to the ``cyhttp.error`` log,
    a line at a time."""

    __slots__ = ("lock", "partial")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.partial = ""

    def write(self, text: str) -> int:
        """Log each whole line of *text*; keep the rest for the next write."""
        with self.lock:
            lines = (self.partial + text).split("\n")
            self.partial = lines.pop()
        for line in lines:
            log.error("%s", line)
        return len(text)

    def writelines(self, lines: Any) -> None:
        """``write`` each of *lines*."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Log what was written without a line end yet."""
        with self.lock:
            partial, self.partial = self.partial, ""
        if partial:
            log.error("%s", partial)


class Wsgi(primitives.Launcher):  # type: ignore[misc]  # Any to mypy: the compiled one
    """The handler the protocol calls for each request of a WSGI application: a
    ``Launcher``, as it runs the application on a pool thread, none of it on the loop."""

    def __init__(
        self,
        app: Callable[..., Any],
        threads: int,
        root_path: str = "",
        proxies: Optional[TrustedProxies] = None,
        scheme: str = "http",
    ) -> None:
        self.app = app
        #: The threads that run the application (``--threads``).
        self.pool = Pool(threads, primitives.Wake)
        self.batch: List[_Call] = []  # calls made this loop turn (kick)
        self.proxies = proxies  # whose X-Forwarded-For/-Proto to believe (None: nobody's)
        self.scheme = scheme
        self.lock = primitives.Mutex()  # guards the outbox and every _Call's shared fields
        self.outbox: List[_Call] = []
        self.wake_due = False  # a deliver() is scheduled on the loop
        self.watching = False  # a watch() is scheduled on the loop
        self.kicking = False  # the loop waits in kick(): posts need not wake it
        self.loop: Optional[asyncio.AbstractEventLoop] = None  # the server's, once started
        self.listening: Optional[Tuple[str, Optional[int]]] = None  # see server
        self.port_of_host = True  # SERVER_PORT is Host's: no port of the server's own
        # Header name -> environ key ("" for none), for the names not in KNOWN_FIELDS.
        self.keys: Dict[bytes, str] = {}
        self.statuses: Dict[str, Tuple[int, Optional[str]]] = {}  # status -> code, own line
        self.hosts: Dict[str, Tuple[str, str]] = {}  # Host -> name, port ("" for none)
        # The last request's Host: the next one that reads the same reuses its string
        # (nothing decoded; its hash, the key in hosts, already known).
        self.last_host: Optional[str] = None
        # Client -> the environ its requests start from, and whether it is a trusted
        # proxy (peer_of): made once per connection, not once per request, as the
        # requests of many connections interleave; emptied when ``base`` changes.
        self.peers: Dict[Any, Tuple[Dict[str, Any], bool]] = {}
        # What every environ is copied from (each key there, so that filling one in
        # never grows the copy); changed only by set_base(), which empties peers.
        # Made with room for ENVIRON_ROOM keys, which each copy keeps: a request's
        # header fields are added to a copy without its table growing.
        self._base: Dict[str, Any] = primitives.roomy_copy(
            {
                # What most requests have: an environ sets these only where it differs.
                "REQUEST_METHOD": "GET",
                "SCRIPT_NAME": root_path,
                "PATH_INFO": "",
                "QUERY_STRING": "",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "SERVER_NAME": "",
                "SERVER_PORT": "",
                "REMOTE_ADDR": "",
                "REMOTE_PORT": "",
                "wsgi.version": (1, 0),
                "wsgi.url_scheme": scheme,
                "wsgi.errors": _Errors(),
                "wsgi.multithread": True,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
                "wsgi.input_terminated": True,
                "wsgi.file_wrapper": FileWrapper,
                "wsgi.input": None,
            },
            ENVIRON_ROOM,
        )

    def __call__(self, req: Any) -> Any:
        """Start the application for *req* on the pool: a future of its response."""
        return self.launch(req)

    def launch(self, req: Any) -> Any:
        """``__call__``'s work: what the protocol calls, in C when compiled."""
        loop = self.loop
        if loop is None:  # not started by a Server (in-process tests, benchmarks)
            loop = asyncio.get_running_loop()
        call = _Call.__new__(_Call)  # compiled: no argument tuple, no __init__ call
        call.start(self, req, loop)
        batch = self.batch
        batch.append(call)  # called by a pool thread (no bound method made per request)
        if len(batch) == 1:
            loop.call_soon(self.kick, loop)
        return call

    def kick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Once the loop turn's reads are done: the calls they made go to the pool; the
        answers made while this thread waits for the GIL back are landed at once."""
        batch, self.batch = self.batch, []
        lock = self.lock
        lock.acquire()  # not ``with``: compiled, a C call
        self.kicking = True
        lock.release()
        try:
            self.pool.submit(batch)
        except RuntimeError:  # the pool is closed (shutdown under way): answered 500
            log.error("WSGI pool closed: %d request(s) answered 500", len(batch))
            for call in batch:
                call.give_whole(INTERNAL_ERROR)
        finally:
            self.deliver()
        if not self.watching:
            self.watching = True
            loop.call_later(STALL, self.watch, loop, self.pool.taken)

    def watch(self, loop: asyncio.AbstractEventLoop, seen: int) -> None:
        """Every ``STALL`` seconds while calls wait: one more thread if the queue is stuck
        behind threads blocked in the application (see ``_threads``)."""
        waiting, taken = self.pool.check(seen)
        if waiting:
            loop.call_later(STALL, self.watch, loop, taken)
        else:
            self.watching = False

    def deliver(self) -> None:
        """On the loop: land what the threads posted since the last time."""
        lock = self.lock
        lock.acquire()  # once for the whole outbox
        try:
            calls, self.outbox = self.outbox, []
            self.wake_due = False
            self.kicking = False
            responses = []
            for call in calls:
                responses.append(call.take())
        finally:
            lock.release()
        for i in range(len(calls)):
            call = calls[i]
            call.land(responses[i])

    async def drain(self, timeout: float) -> None:
        """Let the pool's threads finish within *timeout*, then stop waiting for them
        (the server's shutdown calls this once its connections are closed)."""
        self.pool.close()
        loop = asyncio.get_running_loop()
        # Idle threads end at once; a moment for them even when no time is left.
        deadline = loop.time() + max(timeout, DRAIN_GRACE)
        while self.pool.alive() and loop.time() < deadline:
            await asyncio.sleep(DRAIN_POLL)
        stuck = self.pool.alive()
        if stuck:
            log.warning(
                "shutdown timeout: %d WSGI thread(s) still running the application", len(stuck)
            )

    def environ(self, call: _Call) -> Dict[str, Any]:
        """The environ of *call*'s request (PEP 3333), built on the application's thread."""
        raw_path, query = primitives.split_target(call.target)
        if b"%" in raw_path:
            from urllib.parse import unquote_to_bytes

            raw_path = unquote_to_bytes(raw_path)
        client = call.client
        peer = self.peers.get(client)
        if peer is None:
            peer = self.peer_of(client)
        # A copy of a dict that has every key: a copy of its table, then overwrites
        # (compiled, a typed dict's copy is PyDict_Copy, with no method looked up).
        template = peer[0]
        env = template.copy()
        method = call.method
        if method != "GET":  # base has GET, HTTP/1.1 and no query: each set only if not
            env["REQUEST_METHOD"] = method
        env["PATH_INFO"] = raw_path.decode("latin-1")
        if query:
            env["QUERY_STRING"] = query.decode("latin-1")
        protocol = call.protocol
        if protocol != "HTTP/1.1":
            env["SERVER_PROTOCOL"] = protocol
        # The keys of Host and the proxy's fields are the cache's own objects (see
        # __init__), told apart by identity.
        last_host = self.last_host
        host, proxied = primitives.wsgi_fields(
            call.fields,
            env,
            KNOWN_FIELDS,
            self.keys,
            environ_key,
            HOST_KEY,
            FORWARDED_FOR_KEY,
            FORWARDED_PROTO_KEY,
            last_host,
        )
        if proxied and peer[1]:
            self.forwarded(env, primitives.asgi_headers(call.fields))
        if host:
            if host is not last_host:
                self.last_host = host  # a str, replaced whole: safe between threads
            self.server_name(env, host)
        body = call.body
        env["wsgi.input"] = NO_INPUT if body is not None and not body else _Input(call, body)
        return env

    def peer_of(self, client: Optional[Tuple[str, int]]) -> Tuple[Dict[str, Any], bool]:
        """What the environ takes of a client: ``base`` with its address and port, and
        whether it is a proxy trusted with X-Forwarded-* (a Unix socket's peer, which
        has no port, only by "*"); kept for its next requests."""
        proxies = self.proxies
        start = self._base.copy()
        if client is None:
            del start["REMOTE_PORT"]
            trusted = proxies is not None and proxies.everyone
        else:
            start["REMOTE_ADDR"] = client[0]
            start["REMOTE_PORT"] = str(client[1])
            trusted = proxies is not None and proxies.trusts(client[0])
        peer = (start, trusted)
        peers = self.peers
        if len(peers) >= KEYS_CACHED:
            peers.clear()  # bounded: connections come and go, each asks once again
        peers[client] = peer
        return peer

    @property
    def server(self) -> Optional[Tuple[str, Optional[int]]]:
        """Where the server listens: ``(host, port)``, or ``(path, None)`` on a Unix
        socket; what every environ's SERVER_NAME and SERVER_PORT start from."""
        return self.listening

    @server.setter
    def server(self, where: Optional[Tuple[str, Optional[int]]]) -> None:
        self.listening = where
        name, port = ("", None) if where is None else where
        self.set_base("SERVER_NAME", name)
        self.set_base("SERVER_PORT", "" if port is None else str(port))
        self.port_of_host = port is None

    @property
    def base(self) -> Mapping[str, Any]:
        """What every environ starts with (read-only: see :meth:`set_base`)."""
        return MappingProxyType(self._base)

    def set_base(self, key: str, value: Any) -> None:
        """What every environ starts with under *key* from now on (``base``; a server
        running under worker processes sets ``wsgi.multiprocess``)."""
        self._base[key] = value
        self.peers.clear()  # their environs were copied from the old one

    def server_name(self, env: Dict[str, Any], host: str) -> None:
        """SERVER_NAME from *host* (Host's value; else it stays where the server
        listens); SERVER_PORT the port the request came in on (RFC 3875 §4.1.15, as
        gunicorn gives it). A Unix socket has no port: there it is Host's, else the
        scheme's default (80 or 443)."""
        known = self.hosts.get(host)
        if known is None:
            name, colon, port = host.rpartition(":")
            if not colon or "]" in port:  # no port (IPv6 literals' colons are in [])
                name, port = host, ""
            known = (name, port)
            if len(self.hosts) < KEYS_CACHED:
                self.hosts[host] = known
        env["SERVER_NAME"] = known[0]
        if self.port_of_host:
            scheme = env["wsgi.url_scheme"]
            env["SERVER_PORT"] = known[1] or ("443" if scheme == "https" else "80")

    def forwarded(self, env: Dict[str, Any], fields: Any) -> None:
        """What a trusted proxy says of the client and the scheme (see ``_proxy``)."""
        assert self.proxies is not None
        scheme, host = forwarded_by(fields, self.proxies)
        if scheme is not None:
            env["wsgi.url_scheme"] = scheme
        if host is not None:
            env["REMOTE_ADDR"] = host
            env["REMOTE_PORT"] = "0"  # the proxy does not say which port

    def post(self, call: _Call) -> None:
        """On a pool thread, holding ``lock``: *call* has something for the loop."""
        if call.posted:
            return
        call.posted = True
        self.outbox.append(call)
        if not self.wake_due and not self.kicking:
            self.wake_due = True
            call.loop.call_soon_threadsafe(self.deliver)


class _Call(primitives.Landing):  # type: ignore[misc]  # Any to mypy: the compiled one
    """One request's call of the application: what the loop took of the request, and
    what crosses between the loop and the thread (fields under ``Wsgi.lock``).

    To the protocol it is the future of the request's response, a ``Landing``: the
    protocol reads the response from ``answer`` and is called back through
    ``on_done`` as it lands, with no future made and no callback made or scheduled
    per request. To anyone else (a wrapper such as ``limit_concurrency``'s awaits
    it) it is what asyncio's duck type asks of a future (``add_done_callback``,
    ``cancel``, ``cancelled``, ``exception``, ``result``, ``get_loop``,
    ``__await__`` and the ``_asyncio_future_blocking`` mark).
    """

    @cython.locals(r=CRequest)
    def start(self, wsgi: Wsgi, req: Any, loop: asyncio.AbstractEventLoop) -> None:
        """Take what the application's call needs of *req* (made by ``Wsgi.__call__``)."""
        self.wsgi = wsgi
        self.req = r = req  # compiled, r is typed: its fields are read in C
        self.loop = loop
        # To the protocol, on the loop: the future's state (and Landing's answer, the
        # response once landed).
        self.dropped = False  # cancelled: the protocol answered in its place, or the client left
        self.callback: Optional[Callable[[Any], None]] = None
        self._asyncio_future_blocking = False  # asyncio.isfuture's mark; a Task sets it
        # What the environ is built from, taken on the loop.
        self.method: str = r.method
        self.target: bytes = r.raw_path
        self.protocol = "HTTP/1.0" if r._is_http10 else "HTTP/1.1"
        # The connection's, read there: the request's property is a Python call.
        self.client: Optional[Tuple[str, int]] = r._conn.client
        self.fields = r._fields  # as the request has them (read into the environ in C)
        self.is_head: bool = r._is_head
        # A copy of the context the request was read in: what the application sets
        # there does not leak into the next request its thread serves.
        self.context = copy_context()
        # A body already whole is handed over at once; the rest is fetched as read.
        self.body: Optional[bytes] = None
        if r._body_done and r._error is None:
            self.body = r._release()
        # The application's answer, on its thread.
        self.status = 0
        self.reason: Optional[str] = None  # the status as given, where its reason is not standard
        self.headers: Any = None
        self.streaming = False  # the head was handed over with the first piece of body
        self.final: Any = None  # the whole response, made before close() was called
        # Shared with the loop (under Wsgi.lock).
        self.posted = False  # in the outbox
        self.response: Any = None  # for the loop to hand to the protocol
        self.pieces: List[bytes] = []  # streamed body not yet taken by the writer
        self.buffered = 0  # bytes in pieces
        self.ended = False  # the thread is done with the body
        self.problem = ""  # why a streamed body ends early (the connection closes)
        self.gone = False  # nobody reads the answer any more
        self.room: Optional[_Wait] = None  # the thread waits for the writer to take pieces
        # On the loop only: the writer waits for pieces.
        self.more: Optional[asyncio.Future[None]] = None

    # -- on the application's thread -------------------------------------------

    def __call__(self) -> None:
        """A pool thread's job: the request in its own context, as a native handler's."""
        if cython.compiled:  # entered by the C API: no bound method, no run() call
            context = self.context
            PyContext_Enter(context)
            try:
                self.serve()
            finally:
                PyContext_Exit(context)
        else:
            self.context.run(self.serve)

    def serve(self) -> None:
        """Call the application and consume what it returns."""
        try:
            environ = self.wsgi.environ(self)
            result = self.wsgi.app(environ, self.start_response)
        except BaseException as exc:
            self.failed(exc)
            return
        outcome: Optional[BaseException] = None
        try:
            self.consume(result)
        except _Gone:
            pass
        except BaseException as exc:
            outcome = exc
        finally:
            # A list (the usual body) has no close(): not looked up.
            close = None if type(result) is list else getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except BaseException as exc:
                    outcome = outcome or exc
        if outcome is None:
            try:
                self.end()
            except Exception as exc:  # a head the core refuses, seen only now: no body
                outcome = exc
        if outcome is not None:
            self.failed(outcome)

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        """PEP 3333's ``start_response``: the status and headers, and ``write``."""
        if exc_info is not None:
            try:
                if self.streaming:  # the head is out: too late to replace it
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no cycle through the traceback
        elif self.status:
            raise RuntimeError("start_response called a second time without exc_info")
        if type(headers) is not list:
            raise TypeError(
                f"headers must be a list of (name, value), not {type(headers).__name__}"
            )
        statuses = self.wsgi.statuses
        known = statuses.get(status) if type(status) is str else None
        if known is None:
            known = parse_status(status)
            if len(statuses) < KEYS_CACHED:
                statuses[status] = known
        self.status, self.reason = known
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333's ``write`` callable: *data* goes out before the application goes on
        (queued for the writer, within the high-water mark)."""
        if not self.status:
            raise RuntimeError("write() called before start_response")
        if type(data) is not bytes:
            raise _Unframeable(f"write() takes bytes, not {type(data).__name__}")
        if data:
            self.put(data)

    def consume(self, result: Any) -> None:
        """Take the body the application returned (its iterable), piece by piece."""
        if type(result) is FileWrapper and not self.streaming and self.send_file(result):
            return
        if type(result) is list and not self.streaming:
            for piece in result:
                if type(piece) is not bytes:
                    raise _Unframeable(f"the application yielded a {type(piece).__name__}")
            self.final = self.complete(b"".join(result))  # posted once close() has run
            return
        for piece in result:
            if type(piece) is not bytes:
                raise _Unframeable(f"the application yielded a {type(piece).__name__}")
            if piece:
                self.put(piece)

    def check_started(self) -> None:
        if not self.status:
            raise RuntimeError("the application returned without calling start_response")

    def complete(self, body: bytes) -> Any:
        """The response for the whole *body*: a ``Response``; or, where the body does not
        match the Content-Length declared, a stream the writer cuts at that length or
        closes short, so that it never frames the next response."""
        response = self.whole(body)
        if response is None:
            if body:  # an empty piece would read as "more to come": the writer would wait
                self.pieces.append(body)  # not posted yet: the loop does not read it
                self.buffered = len(body)
            response = self.reasoned(StreamingResponse(_Body(self), self.status, self.headers))
        return response

    def whole(self, body: bytes) -> Any:
        """A ``Response`` for *body*, or None where it does not match the declared length."""
        self.check_started()
        code, headers = self.status, self.headers
        try:
            response = new_response(body, code, headers)
        except ValueError:
            encode_headers(headers, None, code)  # raises for a header the core refuses
            if self.is_head:  # only the head goes out: the length stands as declared
                return self.reasoned(new_response(b"", code, headers))
            return None
        if body or self.is_head or encode_headers(headers, None, code)[2] <= 0:
            return self.reasoned(response)
        return None  # empty, and declared longer

    def reasoned(self, response: Any) -> Any:
        """*response* with the application's status line, where its reason phrase is not
        the core's; ValueError (a 500) for one that cannot be sent."""
        status = self.reason
        if status is None:
            return response
        if any((c < " " and c != "\t") or c == "\x7f" for c in status):
            raise ValueError(f"status has a control character: {status!r}")
        line = b"HTTP/1.1 " + status.encode("latin-1") + b"\r\n"  # UnicodeError: a ValueError
        if isinstance(response, Response):
            plain = response
            plain._head = line + plain._head
            plain._flags |= FLAG_STATUS_LINE
        else:
            streaming = response
            streaming._head = line + streaming._head
            streaming._flags |= FLAG_STATUS_LINE
        return response

    def give_whole(self, response: Any) -> None:
        """The whole response, before any of its body was handed over."""
        lock = self.wsgi.lock
        lock.acquire()  # not ``with``: compiled, a C call, on every request
        try:
            if not self.gone:
                self.response = response
                self.ended = True
                self.wsgi.post(self)
        finally:
            lock.release()

    def put(self, piece: bytes) -> None:
        """A piece of a streamed body: the head goes with the first; waits for room."""
        first = not self.streaming
        if first:
            self.check_started()
        lock = self.wsgi.lock
        lock.acquire()  # not ``with``: compiled, a C call
        try:
            if self.gone:
                raise _Gone
            if first:
                self.streaming = True
                self.response = HEAD_DUE
            self.pieces.append(piece)
            self.buffered += len(piece)
            room = None
            if self.buffered > STREAM_HIGH_WATER:
                room = self.room = _Wait()
            self.wsgi.post(self)
        finally:
            lock.release()
        if room is not None:
            room.result()
            if self.gone:
                raise _Gone

    def end(self) -> None:
        """The body is complete: posted; whole if the loop has not taken the head yet."""
        if self.ended:  # only this thread sets it: a file handed over whole (send_file)
            return
        if not self.streaming:
            self.give_whole(self.final if self.final is not None else self.complete(b""))
            return
        lock = self.wsgi.lock
        lock.acquire()
        try:
            if self.response is HEAD_DUE:
                # The loop has not taken the head since the first piece: one response
                # after all (None where the body does not match its Content-Length).
                whole = self.whole(b"".join(self.pieces))
                if whole is not None:
                    self.response = whole
                    self.pieces.clear()
                    self.buffered = 0
            self.ended = True
            self.wsgi.post(self)
        finally:
            lock.release()

    def failed(self, exc: BaseException) -> None:
        """The application raised (or made what cannot be sent): logged; a 500, or the
        connection closed where the head is out already."""
        req = self.req
        if isinstance(exc, _Gone):
            problem = ""
        else:
            problem = f"it raised {exc!r}"
            log.error("WSGI application failed for %s %r", req.method, req.raw_path, exc_info=exc)
        with self.wsgi.lock:
            if not self.streaming:
                self.response = CLOSING_ERROR if isinstance(exc, _Unframeable) else INTERNAL_ERROR
            else:
                self.problem = problem or "its client is gone"
            self.ended = True
            self.wsgi.post(self)

    def send_file(self, wrapper: FileWrapper) -> bool:
        """Hand a file to the writer to send with ``os.sendfile``: False if it cannot be
        (no descriptor, not a regular file, shorter than its Content-Length)."""
        filelike = wrapper.filelike
        try:
            fd = filelike.fileno()
            info = os.fstat(fd)
            offset = filelike.tell()
        except (AttributeError, OSError, ValueError):
            return False
        if not stat.S_ISREG(info.st_mode):
            return False
        self.check_started()
        code, headers = self.status, self.headers
        size = max(0, info.st_size - offset)
        _, _, declared = encode_headers(headers, None, code)
        if declared > size:
            return False  # iterated, it ends short: the stream says so
        if declared < 0:
            headers = [*headers, ("Content-Length", str(size))]
        else:
            size = declared
        file = open(os.dup(fd), "rb")  # the writer closes it once sent
        content = _streaming.FileContent(file, size, offset)
        try:
            response = self.reasoned(StreamingResponse(content, code, headers))
        except BaseException:
            file.close()
            raise
        with self.wsgi.lock:
            gone = self.gone
            if not gone:
                self.streaming = True
                self.response = response
                self.ended = True
                self.wsgi.post(self)
        if gone:
            file.close()
        return True

    def fetch(self) -> bytes:
        """The next piece of the request body (b"" at its end), waited for on the loop."""
        wait = _Wait()
        self.loop.call_soon_threadsafe(self.fetch_on_loop, wait)
        return wait.result()  # type: ignore[no-any-return]

    # -- on the loop ------------------------------------------------------------

    def take(self) -> Any:
        """Under ``Wsgi.lock``, out of the outbox: the response posted, if one was."""
        self.posted = False
        response, self.response = self.response, None
        return response

    def land(self, response: Any) -> None:
        """What the thread posted: the response to the protocol, pieces to the writer."""
        if response is HEAD_DUE:
            response = self.stream_head()
        if response is not None:
            if not self.dropped:
                self.answer = response
                self.notify(False)
            else:
                self.stop()
                if isinstance(response, StreamingResponse):
                    _streaming.unsent(response)  # a file to close
        more, self.more = self.more, None  # only the loop sets it
        if more is not None and not more.done():
            more.set_result(None)

    def stream_head(self) -> Any:
        """The streamed response of a body whose first piece is out: its head is made
        here, from the status and headers fixed before that piece was posted; a 500
        for a head the core refuses (the thread stops at its next piece)."""
        try:
            return self.reasoned(StreamingResponse(_Body(self), self.status, self.headers))
        except Exception as exc:
            req = self.req
            log.error("WSGI application failed for %s %r", req.method, req.raw_path, exc_info=exc)
            self.stop()
            return INTERNAL_ERROR

    # -- to the protocol, on the loop: the future of the response ---------------

    def add_done_callback(self, callback: Callable[[Any], None], *, context: Any = None) -> None:
        """Call *callback* with this call once its response lands (soon, if it has); in
        *context* when given (a Task's wake-up). One callback: the protocol's, or the
        Task awaiting it."""
        if context is not None:
            callback = partial(context.run, callback)
        if self.done():
            self.loop.call_soon(callback, self)
        else:
            self.callback = callback

    def done(self) -> bool:
        """Whether the response landed or the call was cancelled."""
        return self.answer is not None or self.dropped

    def cancel(self) -> bool:
        """Nobody wants the response: the thread stops at its next piece of body."""
        if self.done():
            return False
        self.dropped = True
        self.stop()
        self.notify(True)
        return True

    def notify(self, soon: bool) -> None:
        """The future is done: its callback runs, now or *soon* (at the next loop turn,
        where the one who cancels does not expect it to run inside ``cancel``)."""
        on_done: Any = self.on_done  # type: ignore[has-type]  # Landing's, Any to mypy
        self.on_done = None
        if on_done is not None:
            slot: Any = self.slot  # type: ignore[has-type]
            self.slot = None
            if soon:
                self.loop.call_soon(on_done, slot, self)
            else:
                on_done(slot, self)
        callback, self.callback = self.callback, None
        if callback is not None:
            if soon:
                self.loop.call_soon(callback, self)
            else:
                callback(self)

    def cancelled(self) -> bool:
        """Whether :meth:`cancel` came before the response."""
        return self.dropped

    def exception(self) -> Optional[BaseException]:
        """None: a failing application is answered 500, not raised to the protocol."""
        if self.dropped:
            raise asyncio.CancelledError()
        return None

    def result(self) -> Any:
        """The response that landed."""
        if self.dropped:
            raise asyncio.CancelledError()
        if self.answer is None:
            raise asyncio.InvalidStateError("the response has not landed yet")
        return self.answer

    def get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the response lands on."""
        return self.loop

    def __await__(self) -> Any:
        """Awaited (by a wrapper such as ``limit_concurrency``'s): the response."""
        if not self.done():
            self._asyncio_future_blocking = True
            yield self
        return self.result()

    def fetch_on_loop(self, wait: _Wait) -> None:
        req = self.req
        if req._expect and self.done():
            req._expect = False  # no 1xx after the final answer's head (RFC 9110 §15.2)
        if req._chunks:
            wait.give(req._release())
        elif req._body_done and req._error is None:
            wait.give(b"")
        else:
            self.loop.create_task(self.fetch_later(wait))

    async def fetch_later(self, wait: _Wait) -> None:
        req = self.req
        try:
            more = await req._next_piece()
        except BaseException as exc:  # the thread raises it to the application
            wait.fail(exc if isinstance(exc, Exception) else ClientDisconnected(repr(exc)))
            if not isinstance(exc, Exception):
                raise
            return
        wait.give(req._release() if more else b"")

    def next_piece(self) -> Tuple[bytes, bool]:
        """For the writer: what the thread queued (joined), and whether the body ended."""
        with self.wsgi.lock:
            pieces = self.pieces
            if not pieces:
                if self.ended and self.problem:
                    raise StreamAborted(f"WSGI application failed mid-body: {self.problem}")
                return b"", self.ended
            piece = pieces[0] if len(pieces) == 1 else b"".join(pieces)
            pieces.clear()
            self.buffered = 0
            room, self.room = self.room, None
        if room is not None:
            room.give()
        return piece, False

    def stop(self) -> None:
        """Nobody reads the answer any more: the thread stops at its next piece."""
        with self.wsgi.lock:
            self.gone = True
            room, self.room = self.room, None
            self.pieces.clear()
        if room is not None:
            room.give()


if not cython.compiled:
    # asyncio.isfuture looks for the mark on the class (compiled, it is a field there).
    _Call._asyncio_future_blocking = False


class _Body:
    """A streamed WSGI body as the core's writer reads it (an async iterator)."""

    __slots__ = ("call",)

    def __init__(self, call: _Call) -> None:
        self.call = call

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        call = self.call
        while True:
            piece, ended = call.next_piece()
            if piece:
                return piece
            if ended:
                raise StopAsyncIteration
            more = call.more = call.loop.create_future()
            try:
                await more
            except asyncio.CancelledError:
                call.stop()  # the writer was stopped: the client is gone
                raise

    async def aclose(self) -> None:
        """The writer stops reading (the client is gone, or the body is not sent)."""
        self.call.stop()
