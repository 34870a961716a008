"""ASGI 3 over the protocol: one request's exchange with an ASGI application.

Like ``_protocol.py`` this is one source with two builds: imported as is it serves
the pure core; ``setup.py`` compiles it once more as ``cyhttp._asgi_c`` (typed by
``_asgi_c.pxd``), which serves the compiled core with the compiled primitives.

Theory of operation
-------------------
To the protocol an ASGI application is one more handler: ``Asgi`` is called with
each request once its head (and, usually, its body) has arrived, and answers with
a response, or with a future of one, exactly as a native handler does; the
protocol keeps doing everything else (the order of pipelined answers, timeouts,
flow control, ``Expect: 100-continue``, closing).

For each request ``Asgi`` builds the scope and an ``_Exchange``, whose bound
methods are the application's ``receive`` and ``send``, and runs the application
in a Task of its own, as frameworks need (anyio's task groups and cancel scopes,
``asyncio.timeout`` and Django's thread-sensitive context all ask for the current
Task), but eagerly: its first step is taken at once (``_Carrier`` on Python 3.11,
asyncio's ``eager_start`` on 3.12+).
``send`` and ``receive`` return coroutines, already finished (``_Completed``) whenever
they need not wait, so an application that answers without waiting for anything else is
done before ``Asgi`` returns: its messages become one ``Response``, written with
the other answers of the same read. Otherwise ``Asgi`` answers with the exchange's
``head`` future, resolved with the response as soon as the application has given
it (or with a ``StreamingResponse`` once it streams), while the Task goes on
(streaming, background work after the response).

The exchange checks every message against the spec (``bad``): what is wrong
is logged once, naming it, and raised into the application as a
``RuntimeError``; a response not begun is answered ``500``, one begun ends
with the connection closed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from asyncio.tasks import _enter_task, _leave_task, current_task
from collections import deque
from collections.abc import Coroutine, Mapping
from contextvars import Context, copy_context
from types import CoroutineType
from typing import Any, Deque, Dict, List, Optional, Set, Tuple

from . import _asgi_ws, _outcomes, _stepping, _streaming
from ._proxy import TrustedProxies
from ._streaming import StreamAborted
from ._wire import FLAG_CONTENT_LENGTH, encode_headers
from .errors import ClientDisconnected

try:
    import cython
except ImportError:  # Cython is needed only to build the compiled core
    from . import _no_cython as cython  # type: ignore[no-redef]

if cython.compiled:
    from cython.cimports.cyhttp import _primitives as primitives
    from cython.cimports.cyhttp._request import Request as CRequest
    from cython.cimports.cyhttp._response import Response, StreamingResponse, new_response
else:
    from . import _primitives_py as primitives
    from .request import Request as CRequest
    from .response import Response, StreamingResponse

    new_response = Response  # the compiled core makes one without a Python call

log = logging.getLogger("cyhttp.error")

ASGI_VERSIONS = {"version": "3.0", "spec_version": "2.4"}
PATHSEND = "http.response.pathsend"
SCOPE_KEYS = (
    "type", "asgi", "http_version", "method", "scheme", "path", "raw_path", "query_string",
    "root_path", "headers", "client", "server", "state", "extensions",
)  # fmt: skip
EAGER_START = sys.version_info >= (3, 12)  # asyncio.Task(..., eager_start=True)

# What the application has sent of its response.
NOTHING = 0  # nothing yet
STARTED = 1  # http.response.start
STREAMING = 2  # some body, with more to come
COMPLETE = 3  # the whole response
FAILED = 4  # a message the spec does not allow (or the client went away mid-stream)

# Streamed body held for the writer before send() makes the application wait.
STREAM_HIGH_WATER = 64 * 1024
# What forwarded_by() says of a request with no X-Forwarded-* field.
NOT_FORWARDED = (None, None)


class _Completed:
    """A coroutine already finished: its first step returns *value*.

    ``receive()`` and ``send()`` return one when there is nothing to wait for, which
    costs less than running a coroutine. It has the whole coroutine protocol and is
    registered as a ``collections.abc.Coroutine``, so it goes wherever a coroutine goes:
    a bare ``await``, ``asyncio.ensure_future`` and ``create_task`` (and ``wait_for``,
    ``shield``, ``gather`` built on them), ``TaskGroup``, anyio's task groups. Unlike a
    coroutine it may be awaited again (``SENT`` is shared).
    """

    __slots__ = ("value",)
    # What inspect.getcoroutinestate() reads (anyio, of its tasks' coroutines): a
    # coroutine that is not running, not suspended and has no frame has finished.
    cr_running = False
    cr_suspended = False
    cr_frame = None
    cr_await = None

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Any:
        return self  # its own iterator, done at the first step: awaiting it never waits

    def __iter__(self) -> Any:
        return self  # what ``yield from`` (asyncio's wrappers of awaitables) asks for

    def __next__(self) -> Any:
        if self.value is None:
            raise StopIteration
        raise StopIteration(self.value)

    def send(self, value: Any) -> Any:
        """A step (how a Task drives a coroutine): it finishes with the value."""
        return next(self)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """An exception thrown in (a Task cancelled before its first step) is raised,
        as by a coroutine not started yet."""
        if val is None:
            raise typ  # an exception, or its class
        if not isinstance(val, BaseException):
            val = typ(val)
        raise val.with_traceback(tb)

    def close(self) -> None:
        """Nothing to close: it holds no frame."""


Coroutine.register(_Completed)
SENT = _Completed(None)  # what send() returns when the application need not wait


def _coroutine(coro: Any) -> Any:
    """*coro*, a coroutine of this module's, as a Python one for the application. Compiled,
    this module's are Cython's, which lack ``cr_suspended``: ``inspect.getcoroutinestate``
    (which anyio's cancel scopes ask of their tasks' coroutines) fails on them."""
    if cython.compiled:
        return _stepping.awaited(coro)
    return coro


def disconnect() -> Dict[str, Any]:
    return {"type": "http.disconnect"}


class _Carrier:
    """The Task applications take their first step as (Python 3.11).

    Frameworks need a current Task from the first step on (anyio's task groups and
    cancel scopes, ``asyncio.timeout``), and a Task per request would cost more than
    the rest of an ASGI request. So one idle Task is made current while each
    application takes its first step, in a fresh context of its own: an application
    that finishes in that step needs no other Task. The first one that suspends takes
    the carrier: the Task it ran as goes on running it, in its context, and the next
    request gets a new carrier. (Python 3.12's ``eager_start`` does the same with a
    Task per request.)
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.handoff: asyncio.Future[Any] = loop.create_future()
        self.task = loop.create_task(self.carry())
        self.finished = False
        self.error: Optional[BaseException] = None  # what the first step raised
        self.yielded: Any = None  # what it left to wait for

    async def carry(self) -> None:
        coro, yielded, ctx = await self.handoff
        await _stepping.resume(coro, yielded, ctx)

    def step(self, coro: Any) -> None:
        """The application's first step, as the carrier (run in the request's context)."""
        loop, task = self.loop, self.task
        self.finished = False
        self.error = None
        outer = None
        # asyncio's private _enter_task/_leave_task make a Task current without the loop
        # running it: what a first step needs on Python 3.11, which has no eager_start
        # (3.12's eager start does the same inside asyncio). They exist, with this
        # signature, in every version served (3.11-3.13); this is the one place using them.
        try:
            _enter_task(loop, task)
        except RuntimeError:
            # A Task is running (the read came inside one): it is set aside meanwhile,
            # as an eager start does.
            outer = current_task(loop)
            if outer is None:
                raise
            _leave_task(loop, outer)
            _enter_task(loop, task)
        try:
            self.yielded = coro.send(None)
        except StopIteration:
            self.finished = True
        except BaseException as exc:  # the exchange answers for it
            self.finished = True
            self.error = exc
        finally:
            _leave_task(loop, task)
            if outer is not None:
                _enter_task(loop, outer)

    def hand_over(self, coro: Any, ctx: Context) -> asyncio.Task[None]:
        """The application suspended: this carrier's Task runs it from now on."""
        self.handoff.set_result((coro, self.yielded, ctx))
        return self.task


class Asgi:
    """The handler the protocol calls for each request of an ASGI 3 application."""

    def __init__(
        self,
        app: Any,
        root_path: str,
        state: Dict[str, Any],
        proxies: Optional[TrustedProxies] = None,
        scheme: str = "http",
    ) -> None:
        self.app = app
        self.proxies = proxies  # whose X-Forwarded-For/-Proto to believe (None: nobody's)
        self.peer: Any = None  # the last client asked about, and the answer
        self.peer_trusted = proxies is not None and proxies.everyone
        self.root_path = root_path
        self.raw_root = root_path.encode("utf-8")
        self.state = state  # the lifespan state; each request sees a shallow copy
        self.server: Optional[Tuple[str, int]] = None  # where the server listens
        self.loop: Optional[asyncio.AbstractEventLoop] = None  # the server's, once started
        self.running: Set[asyncio.Task[Any]] = set()  # applications not finished yet
        self.carrier: Optional[_Carrier] = None  # the idle Task first steps run as
        self.constant: Dict[str, Any] = dict.fromkeys(SCOPE_KEYS)  # what scope() copies
        self.constant.update(type="http", asgi=ASGI_VERSIONS, scheme=scheme, root_path=root_path)

    async def drain(self, timeout: float) -> None:
        """Let running applications finish (after their responses) within *timeout*; then
        cancel them. The server's shutdown calls this once its connections are closed."""
        if self.carrier is not None:
            self.carrier.task.cancel()
            self.carrier = None
        if self.running:
            _, late = await asyncio.wait(set(self.running), timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)

    @cython.locals(carrier=_Carrier)
    def __call__(self, req: CRequest) -> Any:
        """Run the application for *req*: its response, or a future of it."""
        if not req.keep_alive and _asgi_ws.asked(req):  # an upgrade is never kept alive
            return _asgi_ws.serve(self, req)
        ex = _Exchange(self, req)
        try:
            coro = self.app(self.scope(req), ex.receive, ex.send)
            if type(coro) is not CoroutineType:
                coro = _stepping.awaited(coro)
        except Exception as exc:
            return ex.ended(exc)
        loop = self.loop
        if loop is None:  # not started by a Server (in-process tests, benchmarks)
            loop = asyncio.get_running_loop()
        if EAGER_START:
            task = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg]
            if task.done():
                return ex.ended(None if task.cancelled() else task.exception())
        else:
            carrier = self.carrier
            if carrier is None or carrier.loop is not loop or carrier.task.done():
                carrier = self.carrier = _Carrier(loop)
            ctx = copy_context()
            ctx.run(carrier.step, coro)
            if carrier.finished:
                return ex.ended(carrier.error)
            self.carrier = None
            task = carrier.hand_over(coro, ctx)
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        return ex.suspended(task)

    @cython.locals(raw=bytes, scope=dict)
    def scope(self, req: Any) -> Dict[str, Any]:
        """The HTTP connection scope of *req* (ASGI HTTP spec 2.4)."""
        raw, query = primitives.split_target(req.raw_path)
        path = req.path
        if self.raw_root:
            raw = self.raw_root + raw
            path = self.root_path + path
        # A copy of the constant parts, in the spec's order, then this request's.
        scope = self.constant.copy()
        scope["http_version"] = req.http_version
        scope["method"] = req.method
        scope["path"] = path
        scope["raw_path"] = raw
        scope["query_string"] = query
        scope["headers"] = headers = primitives.asgi_headers(req._fields)
        scope["client"] = client = req.client
        scope["server"] = self.server
        scope["state"] = self.state.copy()
        scope["extensions"] = {PATHSEND: {}}
        proxies = self.proxies
        if proxies is not None:
            if client is not self.peer:  # asked once a connection: it keeps its tuple
                self.peer = client
                # A Unix socket's peer has no address: only "*" trusts it.
                self.peer_trusted = (
                    proxies.everyone if client is None else proxies.trusts(client[0])
                )
            if self.peer_trusted:
                self.forwarded(scope, headers, proxies)
        return scope

    def forwarded(self, scope: Dict[str, Any], headers: Any, proxies: TrustedProxies) -> None:
        """What a trusted proxy says of the client and the scheme (see ``_proxy``)."""
        scheme, host = forwarded_by(headers, proxies)
        if scheme is not None:
            scope["scheme"] = scheme
        if host is not None:
            scope["client"] = (host, 0)  # the proxy does not say which port


@cython.locals(name=bytes, value=bytes, hops=list)
def forwarded_by(fields: Any, proxies: TrustedProxies) -> Tuple[Optional[str], Optional[str]]:
    """What a trusted proxy's request says through *fields* (a list of ``(name, value)``
    bytes, names lower-cased): the scheme (``"http"`` or ``"https"``) and the client's
    host, each None where it says nothing usable. Compiled here for ASGI and WSGI alike."""
    proto: Optional[bytes] = None
    hops: Optional[List[bytes]] = None
    for name, value in fields:
        if name == b"x-forwarded-for":
            if hops is None:
                hops = []
            hops.append(value)
        elif name == b"x-forwarded-proto":
            proto = value
    if proto is None and hops is None:
        return NOT_FORWARDED  # what almost every request says: no tuple made for it
    scheme = None
    if proto is not None:
        said = proto.decode("latin-1").strip().lower()
        if said == "http" or said == "https":
            scheme = said
    host = None if hops is None else proxies.client(b",".join(hops).decode("latin-1"))
    return scheme, host


class _Exchange:
    """One request's exchange with the application: its ``receive`` and ``send``."""

    def __init__(self, asgi: Asgi, req: Any) -> None:
        self.req = req
        self.state = NOTHING
        self.status = 0
        self.headers: Any = None
        self.response: Any = None  # what the protocol was (or will be) given
        self.body_left = True  # the request body has not been delivered whole yet
        self.gone = False  # the client is gone: send() raises, receive() says so
        self.problem = ""  # what was wrong with the application's output
        self.head: Optional[asyncio.Future[Any]] = None  # the protocol waits on this
        self.chunks: Deque[bytes] = deque()  # streamed body the writer has not taken
        self.buffered = 0
        self.left = -1  # body the declared Content-Length still allows (-1: none declared)
        self.more: Optional[asyncio.Future[None]] = None  # the writer waits for body
        self.room: Optional[asyncio.Future[None]] = None  # the application waits for room
        self.over: Optional[asyncio.Future[Any]] = None  # receive() waits for disconnect

    # -- receive ---------------------------------------------------------------

    @cython.locals(req=CRequest)
    def receive(self) -> Any:
        """The application's ``receive``: the request body, then ``http.disconnect``."""
        req = self.req
        if self.body_left:
            if req._body_done and req._error is None:
                self.body_left = False
                body = req._release()
                return _Completed({"type": "http.request", "body": body, "more_body": False})
            return _coroutine(self.next_body())
        if self.state >= COMPLETE or self.gone:
            return _Completed(disconnect())
        return _coroutine(self.until_over())

    async def next_body(self) -> Dict[str, Any]:
        """The next piece of a body still arriving (``100 Continue`` first, if asked)."""
        req = self.req
        try:
            await req._next_piece()
        except ClientDisconnected:
            self.client_gone()
            return disconnect()
        body = req._release()
        if req._body_done and not req._chunks:
            self.body_left = False
        return {"type": "http.request", "body": body, "more_body": self.body_left}

    async def until_over(self) -> Dict[str, Any]:
        """``http.disconnect`` once the response is complete or the client is gone."""
        if self.over is None:
            self.over = asyncio.get_running_loop().create_future()
        await asyncio.shield(self.over)
        return disconnect()

    # -- send ------------------------------------------------------------------

    @cython.locals(msg=dict)
    def send(self, message: Any) -> Any:
        """The application's ``send``: its response, message by message."""
        if self.gone:
            raise ClientDisconnected("client disconnected")
        if type(message) is dict:
            msg = message
        elif isinstance(message, Mapping):
            msg = dict(message)
        else:
            return self.bad(f"a message must be a dict with a 'type', not {message!r}")
        kind = msg.get("type")
        if kind is None:
            return self.bad(f"a message must be a dict with a 'type', not {message!r}")
        if kind == "http.response.start":
            if self.state != NOTHING:
                return self.bad(f"http.response.start {self.after()}")
            status = msg.get("status")
            if type(status) is not int or not 200 <= status <= 599:
                return self.bad(f"http.response.start with status {status!r}: not 200-599")
            self.status = status
            self.headers = msg.get("headers", ())
            self.state = STARTED
            return SENT
        if kind == "http.response.body":
            if self.state != STARTED and self.state != STREAMING:
                return self.bad(f"http.response.body {self.after()}")
            body = msg.get("body", b"")
            if type(body) is not bytes:
                if body is None:  # as if left out, as uvicorn takes it
                    body = b""
                elif not isinstance(body, (bytes, bytearray, memoryview)):
                    return self.bad(f"http.response.body with a {type(body).__name__} body")
                else:
                    body = bytes(body)
            if msg.get("more_body", False):
                return self.stream(body, False)
            if self.state == STARTED:
                return self.respond(body)
            return self.stream(body, True)
        if kind == PATHSEND:
            if self.state != STARTED:
                return self.bad(f"{PATHSEND} {self.after()}")
            path = msg.get("path")
            if not isinstance(path, str):
                return self.bad(f"{PATHSEND} with path {path!r}: not a str")
            return self.send_file(path)
        return self.bad(f"unknown message type {kind!r}")

    def after(self) -> str:
        if self.state == NOTHING:
            return "before http.response.start"
        if self.state == STARTED:
            return "after http.response.start"
        if self.state == FAILED:
            return "after an invalid message"
        return "after the response was complete" if self.state == COMPLETE else "mid-body"

    def respond(self, body: bytes) -> Any:
        """The whole response in one message: one ``Response``, framed by the core."""
        try:
            response = new_response(body, self.status, self.headers)
        except (TypeError, ValueError):
            return self.mismatched(body)
        if (
            not body
            and response._flags & FLAG_CONTENT_LENGTH
            and not self.req._is_head
            and response._length
        ):
            return self.stream(body, True)  # short of its length: logged, then closed
        self.state = COMPLETE
        self.give(response)
        self.finish()
        return SENT

    def mismatched(self, body: bytes) -> Any:
        """``respond`` for headers the core refuses, or a body not of its declared length:
        sent as far as it agrees with it, then the connection closes (as uvicorn does)."""
        try:
            encode_headers(self.headers, None, self.status)
        except (TypeError, ValueError) as exc:
            return self.bad(f"http.response.start with headers the core refuses: {exc}")
        if self.req._is_head:  # no body goes out: the length stands as declared
            return self.respond(b"")
        return self.stream(body, True)

    def stream(self, body: bytes, last: bool) -> Any:
        """A piece of a body that comes in several messages (*last*: the final one)."""
        if self.state == STARTED:
            try:
                response = StreamingResponse(self, self.status, self.headers)
            except (TypeError, ValueError) as exc:
                return self.bad(f"http.response.start with headers the core refuses: {exc}")
            self.state = STREAMING
            self.response = response
            if response._flags & FLAG_CONTENT_LENGTH and not self.req._is_head:
                self.left = response._length
            if self.head is not None:
                self.give(response)  # the application runs in its Task: stream now
        problem = ""
        if self.left >= 0:
            if len(body) > self.left:
                # The declared length is what the client reads: no byte past it.
                body = body[: self.left]
                problem = "a body longer than its Content-Length: cut there"
            self.left -= len(body)
            if last and self.left and not problem:
                problem = f"a body {self.left} bytes short of its Content-Length"
        if body and not self.req._is_head:
            self.chunks.append(body)
            self.buffered += len(body)
        if problem:
            return self.bad(problem)  # the writer sends what came, then closes
        if last:
            self.state = COMPLETE
        self.wake_writer()
        if last:
            self.finish()
            return SENT
        if self.buffered < STREAM_HIGH_WATER:
            return SENT
        if self.room is None:
            self.room = asyncio.get_running_loop().create_future()
        return _coroutine(self.until_room(self.room))

    async def until_room(self, room: asyncio.Future[None]) -> None:
        """Wait until the writer has taken the body down to the high-water mark."""
        # Shielded: every send() waiting for room shares *room*, and one cancelled (a
        # wait_for that timed out) must not cancel it for the others.
        await asyncio.shield(room)

    def send_file(self, path: str) -> Any:
        """``http.response.pathsend``: the file at *path* is the whole body, sent with
        ``sendfile`` (zero-copy) where the transport allows."""
        try:
            file = open(path, "rb")
            size = os.fstat(file.fileno()).st_size
        except OSError as exc:
            return self.bad(f"{PATHSEND} cannot open {path!r}: {exc}")
        content = _streaming.FileContent(file, size)
        try:
            response = StreamingResponse(content, self.status, self.headers)
            if not response._flags & FLAG_CONTENT_LENGTH:  # the file's size: not chunked
                length = (b"content-length", b"%d" % size)
                response = StreamingResponse(content, self.status, [*self.headers, length])
        except (TypeError, ValueError) as exc:
            file.close()
            return self.bad(f"http.response.start with headers the core refuses: {exc}")
        declared = response._length
        if declared != size:
            file.close()
            return self.bad(f"{PATHSEND} of a {size}-byte file with a Content-Length of {declared}")
        self.state = COMPLETE
        self.give(response)
        self.finish()
        return SENT

    def give(self, response: Any) -> None:
        """Hand *response* to the protocol (now, if it is waiting for it)."""
        self.response = response
        head = self.head
        if head is not None and not head.done():
            head.set_result(response)

    def finish(self) -> None:
        """The response is complete: a ``receive`` waiting for the end may return."""
        if self.over is not None and not self.over.done():
            self.over.set_result(None)

    def bad(self, problem: str) -> Any:
        """Log what the application got wrong and raise it into the application."""
        req = self.req
        log.error(
            "ASGI application sent an invalid response to %s %r: %s",
            req.method,
            req.raw_path,
            problem,
        )
        if self.state < COMPLETE:  # a response already complete stays so
            self.state = FAILED
            self.problem = problem
            self.wake_writer()  # a body being streamed ends in an error: the connection closes
        self.finish()
        raise RuntimeError(f"ASGI: {problem}")

    # -- the streamed body: the exchange is the async iterator the core's writer reads --

    def __aiter__(self) -> _Exchange:
        return self

    def __anext__(self) -> Any:
        """The next piece the application sent (awaited by the writer)."""
        if self.chunks:
            chunk = self.chunks.popleft()
            self.buffered -= len(chunk)
            room = self.room
            if room is not None and self.buffered < STREAM_HIGH_WATER:
                self.room = None
                if not room.done():
                    room.set_result(None)
            return _Completed(chunk)
        return self.wait_piece()

    async def wait_piece(self) -> bytes:
        while not self.chunks:
            if self.state == COMPLETE:
                raise StopAsyncIteration
            if self.state == FAILED:
                raise StreamAborted(f"ASGI application failed mid-body: {self.problem}")
            self.more = asyncio.get_running_loop().create_future()
            try:
                await self.more
            except asyncio.CancelledError:
                self.client_gone()  # the writer was stopped: the client is gone
                raise
        return await self.__anext__()  # type: ignore[no-any-return]

    def aclose(self) -> Any:
        """The writer stops reading (the client is gone, or the body is not sent)."""
        if self.state != COMPLETE:
            self.client_gone()
        return SENT

    def wake_writer(self) -> None:
        more = self.more
        if more is not None:
            self.more = None
            if not more.done():
                more.set_result(None)

    # -- the application's end -----------------------------------------------------

    def suspended(self, task: asyncio.Task[None]) -> Any:
        """The application's Task goes on: answer once it has given its response."""
        task.add_done_callback(self.task_done)
        if self.response is not None:
            return self.response  # complete or streaming; the Task goes on
        self.head = head = asyncio.get_running_loop().create_future()
        head.add_done_callback(self.head_done)
        return head

    def task_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self.ended(asyncio.CancelledError("the ASGI application was cancelled"))
        else:
            self.ended(task.exception())

    def head_done(self, head: asyncio.Future[Any]) -> None:
        if head.cancelled():
            self.client_gone()  # the protocol no longer waits: the client is gone

    def ended(self, exc: Optional[BaseException]) -> Any:
        """The application returned (*exc* None) or raised: what the protocol answers."""
        req = self.req
        state = self.state
        if exc is not None and not (state == FAILED and isinstance(exc, RuntimeError)):
            if self.gone:
                # Frameworks turn the server's ClientDisconnected into their own errors
                # (Starlette's ClientDisconnect): whatever it raised, the client left.
                log.debug(
                    "ASGI application for %s %r ended with %r: its client had gone",
                    req.method,
                    req.raw_path,
                    exc,
                )
                return self.response
            if state >= COMPLETE:
                if not isinstance(exc, (ClientDisconnected, asyncio.CancelledError)):
                    log.error(
                        "ASGI application failed after its response to %s %r",
                        req.method,
                        req.raw_path,
                        exc_info=exc,
                    )
                return self.response
            log.error("ASGI application failed for %s %r", req.method, req.raw_path, exc_info=exc)
        elif exc is None and state < COMPLETE and not self.gone:
            self.state = FAILED
            log.error(
                "ASGI application returned %s for %s %r",
                "without a response" if state == NOTHING else "without completing its response",
                req.method,
                req.raw_path,
            )
        if self.state < COMPLETE:
            self.state = FAILED
            if not self.problem:
                self.problem = "it returned" if exc is None else f"it raised {exc!r}"
        self.wake_writer()
        self.finish()
        if self.response is None:
            self.give(_outcomes.INTERNAL_ERROR)
        return self.response

    def client_gone(self) -> None:
        """Nobody reads the answer any more: ``send`` raises, ``receive`` says so."""
        if self.gone:
            return
        self.gone = True
        room = self.room
        if room is not None and not room.done():
            room.set_exception(ClientDisconnected("client disconnected"))
        self.finish()
