"""Differential fuzzing: random and mutated request bytes, split at random points.

Both cores must survive anything (no exception, no hang, no task left behind)
and answer byte for byte the same. The bounded run here is part of the suite;
set ``CYHTTP_FUZZ_EXAMPLES`` (for example to 20000) for a longer one.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cyhttp

from .support import DATE, IMPLS, Conn, compiled
from .vectors import VECTORS

EXAMPLES = int(os.environ.get("CYHTTP_FUZZ_EXAMPLES", "300"))

SEEDS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /p?q=1 HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-A: 2\r\n\r\n" * 3,
    b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /stream HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nxyz",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    # Plain heads (the compiled core's own scanner) next to ones it leaves to httptools.
    b"PUT /echo HTTP/1.1\r\nhost:a\r\ncontent-length:\t2\r\n\r\nok"
    b"DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\nX-B: c  d\r\n\r\n"
    b"OPTIONS /o HTTP/1.1\r\nHost: a\r\n\r\n",
    b"PATCH /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nhi",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-E:\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nX-T: t \r\n\r\n",
    *VECTORS.values(),
]
ALPHABET = b"\r\n :;,\t\x00\x7f0123456789abcdefABCDEF/?%-HTTP"


CALLS: list[bytes] = []  # the targets handlers were called for, in order


async def app(request: cyhttp.Request) -> cyhttp.Response | cyhttp.StreamingResponse:
    CALLS.append(request.raw_path)
    if request.path == "/a/b":
        await asyncio.sleep(0)  # suspends: later reads arrive while it runs
    if request.path == "/boom":
        raise RuntimeError("fuzz")
    if request.path == "/stream":
        return cyhttp.StreamingResponse(_two())
    body = await request.body() if request.path == "/echo" else b""
    summary = b"%s %s %s %d %s %d" % (
        request.method.encode(),
        request.raw_path,
        b"|".join(b"%s=%s" % pair for pair in request.headers.raw),
        len(body),
        request.http_version.encode(),
        request.keep_alive,
    )
    return cyhttp.Response(summary)


async def _two():
    yield b"one"
    yield b"two"


@st.composite
def inputs(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        byte = draw(st.sampled_from(ALPHABET)) if draw(st.booleans()) else draw(st.integers(0, 255))
        if kind == "insert":
            data[pos:pos] = bytes([byte])
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "replace" and pos < len(data):
            data[pos] = byte
        else:
            data[pos:pos] = data[max(0, pos - 16) : pos]
    if draw(st.booleans()):
        data += draw(st.binary(max_size=64))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    return bytes(data), cuts


async def _run(impl: str, data: bytes, cuts: list[int]) -> tuple[bytes, bool, bool]:
    c = Conn(app, impl, max_url_size=64, max_header_size=256, max_body_size=64)
    before = asyncio.all_tasks()
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        if c.transport.ended:
            break
        if start < end:
            c.feed(data[start:end])
        await c.settle(5)
    await c.settle(10)
    ended = c.transport.ended
    c.protocol.connection_lost(None)
    await c.settle(10)
    leftover = asyncio.all_tasks() - before
    assert not leftover, leftover
    assert not c.server.connections
    return DATE.sub(b"Date: D\r\n", c.data), ended, c.transport.eof


def _compare(data: bytes, cuts: list[int], impls: list[str]) -> None:
    import logging

    logging.getLogger("cyhttp.error").disabled = True  # /boom is expected
    try:
        with asyncio.Runner() as runner:
            results = [runner.run(_run(impl, data, cuts)) for impl in impls]
    finally:
        logging.getLogger("cyhttp.error").disabled = False
    for other in results[1:]:
        assert other == results[0], (data, cuts)


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@compiled
@FUZZ
@given(inputs())
def test_differential_cython_vs_python(case):
    data, cuts = case
    _compare(data, cuts, ["cython", "python"])


@FUZZ
@given(inputs())
def test_pure_python_survives(case):
    data, cuts = case
    _compare(data, cuts, ["python"])


@compiled
@settings(max_examples=EXAMPLES // 3, deadline=None, database=None)
@given(st.binary(max_size=512), st.lists(st.integers(0, 512), max_size=5))
def test_random_bytes_differential(data, cuts):
    _compare(data, sorted(c for c in cuts if c <= len(data)), ["cython", "python"])


# Requests built from the grammar, most of them well formed, some with an odd corner;
# the compiled core's scanner must read each exactly as httptools does or leave it to it.
_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
_TARGETS = ["/", "/echo", "/a/b?c=d&e", "/%7e~!$&'()*+,;=:@"]
_FIELDS = {
    "Host": ["h", "h:80"],
    "Content-Length": ["0", "2", "007"],
    "Connection": ["close", "Close", "keep-alive", "KEEP-ALIVE"],
    "Expect": ["100-continue", "100-Continue", "101-continue"],
    "Transfer-Encoding": ["chunked"],
    "Proxy-Connection": ["keep-alive", "close"],
    "X-A": ["a", "a b", "t\tu", "!~", "a "],
}
_ODD = {
    "method": ["CONNECT", "GETT", "get"],
    "target": ["/x#f", "/\\", "*", "http://h/p", "/é", "/%zz"],
    "version": ["HTTP/1.0", "HTTP/1.2", "http/1.1", "HTTP/0.9", "HTTP/2.0", "RTSP/1.0"],
    "name": ["host", "CONTENT-LENGTH", "connection", "Upgrade", "Proxy-Connection", "X A", ""],
    "value": ["", " ", "\ta\t", "é", "a\x7fb", "a\rb", "-1", "1 2", "2, 2", "9" * 20, "upgrade"],
    "separator": [":", ":  ", ":\t", " : "],
}
_BODIES = [
    b"",
    b"ok",
    b"0\r\n\r\n",
    b"2\r\nok\r\n0\r\n\r\n",
    # Trailer fields: one no head carries, and one named like a field the next head may lack.
    b"2\r\nok\r\n0\r\nX-Trailer: t\r\n\r\n",
    b"0\r\nHost: t\r\n\r\n",
]


def _keeps_alive(head: list[bytes]) -> bool:
    """Whether a generated head leaves the connection open, read the strict way."""
    options = [
        line.partition(b":")[2].strip().lower()
        for line in head[1:]
        if line.partition(b":")[0].lower() == b"connection"
    ]
    if head[0].endswith(b" HTTP/1.1"):
        return b"close" not in options
    return head[0].endswith(b" HTTP/1.0") and b"keep-alive" in options and b"close" not in options


@st.composite
def grammar_heads(draw: st.DrawFn) -> tuple[bytes, list[int], list[list[bytes]]]:
    """Requests from the grammar, the read splits, and each request's head lines."""

    def pick(kind: str, usual: list[str]) -> str:
        odd = draw(st.integers(0, 11)) == 0
        return draw(st.sampled_from(_ODD[kind] if odd else usual))

    data = bytearray()
    heads = []
    for _ in range(draw(st.integers(1, 4))):
        method, target = pick("method", _METHODS), pick("target", _TARGETS)
        lines = [f"{method} {target} {pick('version', ['HTTP/1.1'])}"]
        names = draw(st.lists(st.sampled_from(list(_FIELDS)), max_size=3))
        if draw(st.integers(0, 4)):
            names.insert(draw(st.integers(0, len(names))), "Host")
        for name in names:
            value = pick("value", _FIELDS[name])
            lines.append(pick("name", [name]) + pick("separator", [": "]) + value)
        heads.append([line.encode() for line in lines])
        data += ("\r\n".join(lines) + "\r\n\r\n").encode() + draw(st.sampled_from(_BODIES))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
    return bytes(data), cuts, heads


grammar_requests = grammar_heads().map(lambda case: case[:2])


def _as_served(lines: list[bytes]) -> list[bytes]:
    """A head's lines as its handler sees them: an absolute-form target's path, and its
    authority as the Host value, in place of the one sent or else first (RFC 9112 §3.2.2)."""
    method, target, version = lines[0].split(b" ", 2)
    if not target.startswith(b"http://"):
        return lines
    authority, _, path = target[len(b"http://") :].partition(b"/")
    names = [line.partition(b":")[0] for line in lines[1:]]
    fields = [
        name + b": " + authority if name.lower() == b"host" else line
        for name, line in zip(names, lines[1:], strict=True)
    ]
    if b"host" not in [name.lower() for name in names]:
        fields.insert(0, b"Host: " + authority)
    return [b"%s /%s %s" % (method, path, version), *fields]


@pytest.mark.parametrize("impl", IMPLS)
@FUZZ
@given(grammar_heads())
def test_grammar_requests_see_only_their_own_head(impl, case):
    """Whatever the core, an answered request saw only its own head's fields and version,
    and nothing is answered after a request that ended the connection."""
    data, cuts, heads = case
    CALLS.clear()
    with asyncio.Runner() as runner:
        out, _, _ = runner.run(_run(impl, data, cuts))
    # No handler runs for a request after the client's last one (RFC 9112 §9.6), even
    # when its answer would be dropped.
    last = next((i for i, head in enumerate(heads) if not _keeps_alive(head)), len(heads))
    assert len(CALLS) <= last + 1, (data, CALLS)
    # Interim answers (100 Continue) belong to the request they precede.
    answers = [a for a in out.split(b"HTTP/1.1 ")[1:] if not a.startswith(b"100 ")]
    closed = False
    for i, answer in enumerate(answers):
        assert not closed, (data, out)
        closed = b"Connection: close\r\n" in answer
        if not answer.startswith(b"200 ") or i >= len(heads):
            continue
        summary = answer.partition(b"\r\n\r\n")[2]
        if not summary:
            continue  # HEAD: no body to read
        method, target, rest = summary.split(b" ", 2)
        fields, _, version, _ = rest.rsplit(b" ", 3)
        lines = _as_served(heads[i])
        assert lines[0] == b"%s %s HTTP/%s" % (method, target, version), (data, out)
        pairs = [p.partition(b"=") for p in fields.split(b"|") if p]
        for name, _, value in pairs:
            assert any(
                line.partition(b":")[0] == name and line.partition(b":")[2].strip() == value.strip()
                for line in lines[1:]
            ), (data, out)


@compiled
@FUZZ
@given(grammar_requests)
def test_grammar_differential(case):
    data, cuts = case
    _compare(data, cuts, ["cython", "python"])


_names = st.sampled_from(["X-A", "x-b", "Cache-Control", "Set-Cookie", "Server", "Date", "ETag"])
_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)


@compiled
@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(
    status=st.sampled_from([100, 101, 200, 201, 204, 206, 301, 304, 404, 418, 500, 599]),
    headers=st.lists(st.tuples(_names, _values), max_size=5),
    body=st.binary(max_size=64),
    content_type=st.none() | st.just("text/plain"),
    method=st.sampled_from(["GET", "HEAD", "POST"]),
    version=st.sampled_from(["1.0", "1.1"]),
    keep=st.booleans(),
)
def test_serialization_differential(status, headers, body, content_type, method, version, keep):
    response = cyhttp.Response(body, status, headers, content_type)
    outputs = []
    for impl in ("cython", "python"):
        conn = Conn(lambda r: response, impl)
        out = conn.protocol.serialize(response, method, version, keep)
        outputs.append(DATE.sub(b"Date: D\r\n", out))
        assert out.startswith(b"HTTP/1.1 %d" % status)
        has_body = status >= 200 and status not in (204, 304) and method != "HEAD"
        assert out.endswith(b"\r\n\r\n" + (body if has_body else b""))
    assert outputs[0] == outputs[1]
