"""Fuzz (hypothesis): random request streams against random WSGI application behaviours.

Each example sends a few pipelined requests (GET, HEAD, POST with a Content-Length or
chunked body, now and then a malformed one) in one to three writes; each request
carries the plan its application call follows: read the body or not, a status, a
declared Content-Length or none, pieces through ``write()`` and in the iterable (some
of them not bytes), an exception at one step, a client that leaves without reading.
The same stream goes to both cores, which must answer it byte for byte alike (``Date``
aside), and leave nothing behind: every iterable returned is closed, no descriptor is
left open, and once the servers are shut down no thread of their pools is left.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cyhttp import _impl

from .support import DATE, LiveServer

TIMEOUT = 10
CORES = ["python"] if _impl.NO_EXTENSIONS else ["cython", "python"]
STEPS = ["start", "write", "first", "later", "close"]

_lock = threading.Lock()
_events: dict[str, list[str]] = {}


def _note(token: str, event: str) -> None:
    with _lock:
        _events.setdefault(token, []).append(event)


def _piece(spec: list[Any]) -> Any:
    kind, value = spec
    if kind == "bytes":
        return value.encode("latin-1")
    if kind == "bytearray":
        return bytearray(value.encode("latin-1"))
    return value  # str or int: not bytes, which the server must refuse


class Body:
    """The iterable an application returns: its pieces, an exception where the plan
    says, and its ``close()`` recorded."""

    def __init__(self, token: str, plan: dict[str, Any]) -> None:
        self.token, self.plan = token, plan
        self.pieces = [_piece(p) for p in plan["pieces"]]
        self.at = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        step = "first" if self.at == 0 else "later"
        if self.plan["raise"] == step:
            raise RuntimeError(f"planned, at {step}")
        if self.at == len(self.pieces):
            raise StopIteration
        self.at += 1
        return self.pieces[self.at - 1]

    def close(self) -> None:
        _note(self.token, "closed")
        if self.plan["raise"] == "close":
            raise RuntimeError("planned, in close()")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[Any]:
    """Follows the plan in the request's query string."""
    token, _, encoded = environ["QUERY_STRING"].partition("=")
    plan = json.loads(unquote(encoded))
    _note(token, "called")
    if plan["read"]:
        environ["wsgi.input"].read()
    if plan["raise"] == "start":
        raise RuntimeError("planned, before start_response")
    headers = [("Content-Type", "text/plain")]
    if plan["length"] is not None:
        headers.append(("Content-Length", str(plan["length"])))
    write = start_response(plan["status"], headers)
    for piece in plan["written"]:
        write(_piece(piece))
    if plan["raise"] == "write":
        raise RuntimeError("planned, after write()")
    _note(token, "returned")
    return Body(token, plan)


text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
pieces = st.lists(
    st.one_of(
        st.tuples(st.just("bytes"), text),
        st.tuples(st.just("bytes"), text),
        st.tuples(st.just("bytearray"), text),
        st.tuples(st.just("str"), text),
        st.tuples(st.just("int"), st.integers(0, 9)),
    ),
    max_size=3,
)
plans = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["200 OK", "201 Created", "299 Odd One", "404 Not Found"]),
        "length": st.one_of(st.none(), st.integers(0, 20)),
        "written": st.lists(st.tuples(st.just("bytes"), text), max_size=2),
        "pieces": pieces,
        "raise": st.sampled_from([None, None, None, *STEPS]),
        "read": st.booleans(),
    }
)
requests = st.lists(
    st.tuples(
        st.sampled_from(["GET", "HEAD", "POST"]),
        st.sampled_from(["none", "length", "chunked"]),
        st.binary(max_size=40),
        plans,
    ),
    min_size=1,
    max_size=4,
)


def encode(tokens: list[str], stream: list[Any], malformed: bool) -> bytes:
    """The bytes of *stream*, the last request closing the connection."""
    out = []
    for n, (token, (method, framing, body, plan)) in enumerate(zip(tokens, stream, strict=True)):
        target = f"/?{token}={quote(json.dumps(plan, separators=(',', ':')))}"
        head = f"{method} {target} HTTP/1.1\r\nHost: fuzz\r\n"
        if n == len(stream) - 1:
            head += "Connection: close\r\n"
        if framing == "length":
            head += f"Content-Length: {len(body)}\r\n\r\n"
            out.append(head.encode() + body)
        elif framing == "chunked":
            head += "Transfer-Encoding: chunked\r\n\r\n"
            chunk = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
            out.append(head.encode() + chunk + b"0\r\n\r\n")
        else:
            out.append(head.encode() + b"\r\n")
    if malformed:
        out.insert(len(out) // 2, b"NOT HTTP\r\n\r\n")
    return b"".join(out)


def exchange(port: int, data: bytes, cuts: list[int], leave: bool) -> bytes | None:
    """Send *data* in pieces cut at *cuts*; everything answered until the server closes,
    nothing if the client *leave*s at once, None if the server reset the connection
    (it may, having ended it early while the client still sent: what arrives then
    depends on timing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        chunks = []
        try:
            at = 0
            for cut in [*sorted(cuts), len(data)]:
                sock.sendall(data[at:cut])
                at = max(at, cut)
            if leave:
                return b""
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (BrokenPipeError, ConnectionResetError):
            return None
    return DATE.sub(b"", b"".join(chunks))


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def settled(check: Callable[[], bool]) -> bool:
    """Whether *check* holds within 10 s (servers finish after their clients)."""
    deadline = time.monotonic() + 10
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def servers() -> Iterator[dict[str, LiveServer]]:
    """One server per core for the whole test (every example), then none of their threads."""
    before = threading.active_count()
    started = {core: LiveServer(app, core, interface="wsgi", threads=2) for core in CORES}
    for srv in started.values():
        srv.__enter__()
    yield started
    for srv in started.values():
        srv.__exit__(None, None, None)
    assert settled(lambda: threading.active_count() <= before), threading.enumerate()


@settings(
    max_examples=100,
    deadline=None,
    # One server per core serves every example: that is the point (nothing left behind).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stream=requests,
    malformed=st.booleans(),
    cuts=st.lists(st.integers(0, 4000), max_size=2),
    leave=st.booleans(),
)
def test_random_streams_and_behaviours(servers, stream, malformed, cuts, leave):
    descriptors = open_descriptors()
    answers = {}
    tokens = {}
    for core, srv in servers.items():
        tokens[core] = [os.urandom(6).hex() for _ in stream]
        data = encode(tokens[core], stream, malformed)
        answers[core] = exchange(srv.port, data, cuts, leave)
    if len(answers) == 2 and None not in answers.values():
        assert answers["cython"] == answers["python"]
    for core in servers:
        for token in tokens[core]:
            # Every iterable an application returned is closed, whatever happened.
            assert settled(
                lambda t=token: (
                    "returned" not in _events.get(t, []) or "closed" in _events.get(t, [])
                )
            ), (core, token, _events.get(token))
    assert settled(lambda: open_descriptors() <= descriptors)
