"""The pure-Python twins of the compiled primitives (``_primitives.pyx``).

The pure build of the protocol (``_protocol.py`` imported as is) uses these; each
gives the same results as its compiled twin, in plain Python.
"""

from __future__ import annotations

from contextvars import copy_context
from threading import Lock
from types import CoroutineType
from typing import Any, Callable, Dict, Optional, Tuple

from . import _outcomes, _stepping
from . import response as responses
from ._fields_py import Headers, Query, RawHeaders, decode_path
from ._wire import FLAG_CONTENT_LENGTH, DateBlock

__all__ = [
    "FieldKeys",
    "Landing",
    "Mutex",
    "Output",
    "ResponseFields",
    "Scanner",
    "Wake",
    "asgi_headers",
    "call_handler",
    "date_block",
    "decode_path",
    "is_future",
    "is_name",
    "is_response",
    "is_streaming",
    "new_headers",
    "new_query",
    "settled",
    "split_target",
    "wsgi_fields",
]


class Output(bytearray):
    """The bytes the connection will write next (one ``transport.write`` per read)."""

    __slots__ = ()

    put = bytearray.extend
    write = bytearray.extend
    size = bytearray.__len__

    def capacity(self) -> int:
        """The bytes of storage this buffer holds (0 while it has nothing to write)."""
        # A bytearray emptied by clear() or del shrinks to its terminating NUL byte.
        return max(self.__alloc__() - 1, 0)

    def reserve(self, size: int) -> None:
        """Nothing to do: a bytearray grows as it is written."""

    def put_part(self, data: bytes, start: int, stop: int) -> None:
        self += data[start:stop]

    def put_length(self, value: int) -> None:
        """The Content-Length line for *value*."""
        self += b"Content-Length: %d\r\n" % value

    def put_crlf(self) -> None:
        self += b"\r\n"

    def take(self) -> bytes:
        """Everything buffered, as bytes; the buffer is empty, its storage freed."""
        data = bytes(self)
        self.clear()
        return data

    def since(self, start: int) -> bytes:
        return bytes(self[start:])

    def truncate(self, size: int) -> None:
        del self[size:]


class Scanner:
    """The pure build scans nothing: httptools reads every request head."""

    def __init__(self, buffer: memoryview, config: Any) -> None:
        pass

    def scan(self, pos: int, end: int) -> int:
        return 0


class ResponseFields:
    """What the protocol serves of a response: ``read`` fills the fields, returns the status.

    A status below 100 means the response cannot be served (``invalid_field`` says why).
    """

    __slots__ = ("body", "flags", "head", "length", "status")

    def __init__(self) -> None:
        self.status = 0
        self.flags = 0
        self.head = b""
        self.body: bytes | None = None
        self.length = -1  # the declared Content-Length (-1: none)

    def read(self, response: Any) -> int:
        status, flags, head, body = responses.fields(response)
        if responses.invalid_values(response, status, flags, head, body) is not None:
            self.status = 0
            return 0
        self.status, self.flags, self.head = status, flags, head
        self.body = None if isinstance(response, responses.STREAMING_TYPES) else body
        self.length = responses.declared_length(response) if flags & FLAG_CONTENT_LENGTH else -1
        return status  # type: ignore[no-any-return]


def is_name(name: bytes, lower: bytes) -> bool:
    """Whether header *name* is *lower*, ignoring ASCII case."""
    return name.lower() == lower


def is_response(obj: Any) -> bool:
    return isinstance(obj, responses.RESPONSE_TYPES)


is_future = _stepping.is_future


Mutex = Lock
"""A lock (the compiled twin's methods are C calls to the compiled code)."""


class Launcher:
    """The base of a handler that runs none of the application on the loop (the WSGI
    layer's): it starts each request's work elsewhere, in a context of its own, and
    returns the future of its response. The protocol calls its ``launch`` in C, with
    no context made for the call."""

    def launch(self, req: Any) -> Any:
        """The future of *req*'s response, its work started."""
        raise NotImplementedError


class Landing:
    """The base of a future-like handler result whose response lands on the loop (a
    WSGI call): the protocol gives it the callback and the slot its response goes to,
    and reads the response from ``answer``; whoever lands it calls
    ``on_done(slot, self)`` once, as the future's done callback."""

    answer: Any = None
    on_done: Any = None
    slot: Any = None


def settled(task: Any) -> Any:
    """The response a finished handler future holds; None where ``_outcomes.outcome``
    must say what to answer (it was cancelled, it failed, it is not a response)."""
    if isinstance(task, Landing):
        answer = task.answer
        return answer if isinstance(answer, responses.RESPONSE_TYPES) else None
    if task.cancelled() or task.exception() is not None:
        return None
    result = task.result()
    return result if isinstance(result, responses.RESPONSE_TYPES) else None


def is_streaming(obj: Any) -> bool:
    return isinstance(obj, responses.STREAMING_TYPES)


def asgi_headers(fields: RawHeaders) -> RawHeaders:
    """A request's header *fields* for an ASGI scope: names lower-cased, in order."""
    return [(name.lower(), value) for name, value in fields]


class FieldKeys:
    """The environ keys of well-known field names (in lower case, letters, digits and
    dashes only), found from a name in any case; filled once, never changed."""

    __slots__ = ("_keys",)

    def __init__(self, known: Dict[bytes, str]) -> None:
        for name in known:
            if not name or name.strip(b"abcdefghijklmnopqrstuvwxyz0123456789-"):
                raise ValueError(f"not a field name in lower case: {name!r}")
        self._keys = dict(known)

    def get(self, name: bytes) -> Optional[str]:
        """The key of field *name* (any case), or None for a name not in the table."""
        return self._keys.get(name.lower())


def wsgi_fields(
    fields: RawHeaders,
    env: Dict[str, Any],
    known: FieldKeys,
    keys: Dict[bytes, str],
    key_of: Callable[[Dict[bytes, str], bytes], str],
    host_key: str,
    for_key: str,
    proto_key: str,
    last_host: Optional[str],
) -> Tuple[Optional[str], bool]:
    """Put a request's header *fields* in the WSGI environ *env*, each under its key:
    *known*'s, else *keys*' (names in lower case to keys), else ``key_of(keys, name)``
    makes one ("" for a field not passed on). Returns the value under *host_key* (None
    without one) and whether *for_key* or *proto_key* was put. A Host that reads as
    *last_host* (the previous request's) is that very string."""
    host = None
    proxied = False
    for name, value in fields:
        key = known.get(name)
        if key is None:
            lowered = name.lower()
            key = keys.get(lowered)
            if key is None:
                key = key_of(keys, lowered)
        if not key:
            continue
        text = value.decode("latin-1")
        if key is host_key and host is None and text == last_host:  # the first Host only
            text = last_host
        prior = env.setdefault(key, text)
        if prior is not text:
            # RFC 9110 §5.3: repeated fields are one comma-separated list; Cookie's
            # separator is "; " (RFC 6265 §5.4).
            text = prior + ("; " if key == "HTTP_COOKIE" else ", ") + text
            env[key] = text
        if key is host_key:
            host = text
        elif key is for_key or key is proto_key:
            proxied = True
    return host, proxied


new_headers = Headers
"""The ``Headers`` of a request's header fields."""


def new_query(target: bytes) -> Query:
    """The ``Query`` of request target *target* (everything after its first "?")."""
    return Query(target.partition(b"?")[2])


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """A request target's path and query string: the bytes before and after its first ``?``."""
    path, _, query = target.partition(b"?")
    return path, query


def roomy_copy(items: Dict[Any, Any], room: int) -> Dict[Any, Any]:
    """A copy of *items* (Python cannot size a dict ahead; the compiled twin makes
    room for *room* keys, which copies of it keep)."""
    return dict(items)


def call_handler(app: Callable[[Any], Any], req: Any) -> Any:
    """Run the handler, its first step eagerly: the response, or the Task finishing it."""
    ctx = copy_context()
    try:
        result = ctx.run(app, req)
        if isinstance(result, responses.RESPONSE_TYPES) or is_future(result):
            # A future is waited for as a Task would be: the ASGI layer's, or a
            # future-like one (asyncio's duck type), the WSGI layer's.
            return result
        it = result if type(result) is CoroutineType else _stepping.awaitable(result)
        try:
            yielded = ctx.run(it.send, None)
        except StopIteration as stop:
            return _outcomes.checked(stop.value, req)
        return _stepping.start_task(it, yielded, ctx)
    except Exception as exc:
        return _outcomes.failed(req, exc)


date_block = DateBlock().get
"""The Server/Date lines, re-formatted only when the second changes."""


class Wake:
    """A pool thread's wake-up call: ``wait`` sleeps until ``give`` (a held lock; the
    compiled one lets go of the GIL to give)."""

    __slots__ = ("lock",)

    def __init__(self) -> None:
        self.lock = Lock()
        self.lock.acquire()

    def wait(self) -> None:
        """Sleep until :meth:`give` (at once if it was given since the last wait)."""
        self.lock.acquire()

    def give(self) -> None:
        """Wake the thread waiting (or the next to :meth:`wait`)."""
        self.lock.release()
