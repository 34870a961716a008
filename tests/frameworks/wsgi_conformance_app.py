"""The PEP 3333 application ``tests/test_wsgi_conformance.py`` serves on every server.

One module for cyhttp (``--interface wsgi``) and gunicorn alike, run in the server's
own process: what the application sees and what the server does to it (``close()``
called, ``start_response`` re-raising) is recorded per token (the ``t`` query
parameter) and read back by the test through ``/_log?t=TOKEN``.

``app`` is wrapped in :func:`wsgiref.validate.validator` so that the stdlib's checker
watches every exchange. Two routes go around it on purpose: ``/str-body`` and
``/str-later``, whose output is not bytes (the checker would raise before the server
could refuse it), and ``/file-raw``, a ``wsgi.file_wrapper`` the server must see
unwrapped to serve it by ``sendfile``.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import defaultdict
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs
from wsgiref.validate import validator

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], Any]]

_lock = threading.Lock()
_log: dict[str, list[str]] = defaultdict(list)
_released: dict[str, threading.Event] = defaultdict(threading.Event)
FILE = __file__  # what /file serves: this module's own bytes


def record(token: str, event: str) -> None:
    """Note *event* for the test that sent *token*."""
    with _lock:
        _log[token].append(event)


def _params(environ: Environ) -> dict[str, str]:
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {k: v[0] for k, v in query.items()}


def _json(start_response: StartResponse, value: Any, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(value).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


class Recorded:
    """A body iterable that records its ``close()`` (and how far it was iterated)."""

    def __init__(self, token: str, pieces: Iterable[Any]) -> None:
        self.token = token
        self.pieces = iter(pieces)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return next(self.pieces)

    def close(self) -> None:
        closer = getattr(self.pieces, "close", None)
        if closer is not None:  # a generator: its own cleanup runs now
            closer()
        record(self.token, "close")


class RecordedFile:
    """A file whose ``close()`` is recorded: what ``wsgi.file_wrapper`` must close."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.file = open(FILE, "rb")  # closed by the server, through the wrapper

    def read(self, size: int = -1) -> bytes:
        return self.file.read(size)

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.file.close()
        record(self.token, "close")


TEXT = [("Content-Type", "text/plain")]
SCALARS = ("wsgi.url_scheme", "wsgi.input_terminated", "wsgi.multithread", "wsgi.run_once")


def environ_view(environ: Environ) -> dict[str, Any]:
    """The CGI keys and the scalar ``wsgi.*`` ones, as JSON can carry them."""
    view: dict[str, Any] = {k: v for k, v in environ.items() if isinstance(v, str)}
    view.update({k: environ[k] for k in SCALARS if k in environ})
    view["wsgi.version"] = list(environ["wsgi.version"])
    view["has"] = sorted(k for k in environ if k.startswith("wsgi."))
    return view


def read_pieces(environ: Environ, how: str, n: int) -> list[bytes]:
    """The request body as the application reads it, *how*: the pieces it got."""
    stream = environ["wsgi.input"]
    if how == "read":  # read() without a size: the checker allows only read(n)
        return [getattr(stream, "input", stream).read()]
    if how == "readlines":
        return list(stream.readlines())
    if how == "iter":
        return list(stream)
    pieces = []
    while True:
        piece = stream.read(n) if how == "read-n" else stream.readline(n)
        if not piece:
            return pieces
        pieces.append(piece)


def checked(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Every route but the three that must reach the server unchecked."""
    path = environ["PATH_INFO"]
    params = _params(environ)
    token = params.get("t", "")
    if path == "/environ" or path.startswith("/environ/"):
        return _json(start_response, environ_view(environ))
    if path == "/body":
        pieces = read_pieces(environ, params.get("how", "read-n"), int(params.get("n", "7")))
        return _json(start_response, [p.decode("latin-1") for p in pieces])
    if path == "/ignore-body":
        return _json(start_response, "ignored")
    if path == "/echo-lines":
        # Each line is written back as soon as it is read: a server that held the body
        # back until the whole of it had come would never answer the first line.
        write = start_response("200 OK", TEXT)
        stream = environ["wsgi.input"]
        while line := stream.readline():
            write(line)
        return []
    if path == "/status":
        start_response(params["s"], [*TEXT, ("Content-Length", "2")])
        return [b"ok"]
    if path == "/write":
        write = start_response("200 OK", [*TEXT, ("Content-Length", "9")])
        write(b"one")
        write(b"two")
        return Recorded(token, [b"six"])
    if path == "/exc-before-body":
        start_response("200 OK", [*TEXT, ("X-First", "1")])
        try:
            raise ValueError("before the body")
        except ValueError:
            start_response("503 Replaced", [*TEXT, ("Content-Length", "8")], sys.exc_info())
        return [b"replaced"]
    if path == "/exc-after-head":
        return Recorded(token, _late_error(token, start_response))
    if path == "/close":
        start_response("200 OK", [*TEXT, ("Content-Length", "4")])
        return Recorded(token, [b"do", b"ne"])
    if path == "/raise-in-body":
        start_response("200 OK", TEXT)
        return Recorded(token, _raising_after(b"first"))
    if path == "/raise-first":
        return Recorded(token, _raising_first(start_response))
    if path == "/raise":
        raise RuntimeError("the application fails before start_response")
    if path == "/stream":
        start_response("200 OK", TEXT)
        return Recorded(token, _endless(token))
    if path == "/length":
        declared, sent = params["declared"], params["sent"].encode()
        start_response("200 OK", [*TEXT, ("Content-Length", declared)])
        return Recorded(token, [sent])
    if path == "/file":
        start_response("200 OK", TEXT)
        return environ["wsgi.file_wrapper"](RecordedFile(token), 4096)
    if path == "/block":
        released = _released[token].wait(10)
        return _json(start_response, "released" if released else "not released")
    if path == "/release":
        _released[token].set()
        return _json(start_response, "set")
    if path == "/_log":
        with _lock:
            events = list(_log[token])
        return _json(start_response, events)
    return _json(start_response, "no such route", "404 Not Found")


def _late_error(token: str, start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", TEXT)
    yield b"partial"
    try:
        raise ValueError("after the head")
    except ValueError:
        try:
            start_response("500 Too Late", TEXT, sys.exc_info())
        except ValueError:
            record(token, "reraised")
            raise


def _raising_after(first: bytes) -> Iterator[bytes]:
    yield first
    raise RuntimeError("the body fails after its first piece")


def _raising_first(start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", TEXT)
    raise RuntimeError("the body fails before its first piece")
    yield b""  # a generator: it fails on the first next(), after start_response


def _endless(token: str) -> Iterator[bytes]:
    """Pieces until the client is gone (at most ~20 s): how many is recorded."""
    sent = 0
    try:
        for _ in range(2000):
            yield b"x" * 1024 + b"\n"
            sent += 1
            threading.Event().wait(0.01)
    finally:
        record(token, f"sent {sent}")


checked_app = validator(checked)


def app(environ: Environ, start_response: StartResponse) -> Iterable[Any]:
    """The application every server under test serves."""
    path = environ["PATH_INFO"]
    if path == "/str-body":
        start_response("200 OK", TEXT)
        return ["text, not bytes"]
    if path == "/str-later":
        start_response("200 OK", TEXT)
        return Recorded(_params(environ).get("t", ""), [b"bytes first", "then text"])
    if path == "/file-raw":
        start_response("200 OK", TEXT)
        return environ["wsgi.file_wrapper"](RecordedFile(_params(environ).get("t", "")), 4096)
    return checked_app(environ, start_response)
