"""Response construction: the compiled classes and the pure ones behave the same.

Each case builds a response with both implementations (``cyhttp._response``
and ``cyhttp.response``): valid input gives the same encoded header block,
flags, status and body; invalid input raises the same exception type with the
same message, naming what is wrong.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cyhttp
from cyhttp import _impl, _wire, response

from .support import IMPLS


def classes(kind: str):
    if kind == "python":
        return response.Response, response.StreamingResponse
    from cyhttp import _response

    return _response.Response, _response.StreamingResponse


def outcome(build):
    """What building gives: the stored fields, or the exception type and message."""
    try:
        r = build()
    except (TypeError, ValueError) as exc:
        return type(exc).__name__, str(exc)
    return response.fields(r)


def both(make):
    """The outcome of ``make(Response, StreamingResponse)`` for each available kind."""
    return [outcome(lambda kind=kind: make(*classes(kind))) for kind in _impl.AVAILABLE]


async def _chunks():
    yield b"x"


VALID = {
    "plain": lambda R, S: R(b"hello"),
    "str-body": lambda R, S: R("héllo"),
    "bytearray-body": lambda R, S: R(bytearray(b"ab")),
    "memoryview-body": lambda R, S: R(memoryview(b"abc")),
    "content-type": lambda R, S: R(b"{}", content_type="application/json"),
    "bytes-content-type": lambda R, S: R(b"{}", content_type=b"text/plain"),
    "two-headers": lambda R, S: R(
        b"x", headers={"Cache-Control": "no-store", "X-Id": "7"}, content_type="text/plain"
    ),
    "pairs-repeated": lambda R, S: R(b"", headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]),
    "latin1-value": lambda R, S: R(b"", headers={"X-Name": "café"}),
    "bytes-pair": lambda R, S: R(b"", headers=[(b"X-B", b"v"), (bytearray(b"X-C"), b"w")]),
    "managed": lambda R, S: R(
        b"abc", headers={"Date": "d", "Server": "s", "Content-Length": "3", "Connection": "close"}
    ),
    "content-length-empty-body": lambda R, S: R(b"", headers={"Content-Length": "10"}),
    "content-length-twice": lambda R, S: R(
        b"ab", headers=[("Content-Length", "2"), ("X-A", "1"), ("content-length", "2")]
    ),
    "content-length-204": lambda R, S: R(b"", 204, {"Content-Length": "0", "X-A": "1"}),
    "content-length-304": lambda R, S: R(b"", 304, {"ETag": '"a"', "Content-Length": "10"}),
    "content-length-streaming-204": lambda R, S: S(_chunks(), 204, {"Content-Length": "5"}),
    "connection-keep-alive": lambda R, S: R(b"", headers={"Connection": "keep-alive"}),
    "connection-list-close": lambda R, S: R(b"", headers={"Connection": " keep-alive ,Close "}),
    "connection-bytearray": lambda R, S: R(b"", headers=[(bytearray(b"Connection"), b"close")]),
    "transfer-encoding-chunked": lambda R, S: R(
        b"ab", headers={"Content-Length": "2", "Transfer-Encoding": "chunked", "X-A": "1"}
    ),
    "streaming-chunked": lambda R, S: S(_chunks(), headers=[("transfer-encoding", " Chunked")]),
    "status": lambda R, S: R(b"", status=404),
    "streaming": lambda R, S: S(_chunks(), status=201, headers={"X-S": "1"}),
}

INVALID = {
    "status-too-big": lambda R, S: R(b"", status=600),
    "status-too-small": lambda R, S: R(b"", status=99),
    "status-str": lambda R, S: R(b"", status="200"),
    "status-bool": lambda R, S: R(b"", status=True),
    "status-float": lambda R, S: R(b"", status=200.0),
    "body-int": lambda R, S: R(5),
    "body-none": lambda R, S: R(None),
    "body-list": lambda R, S: R([b"a"]),
    "name-crlf": lambda R, S: R(b"", headers={"Bad\r\nName": "v"}),
    "name-space": lambda R, S: R(b"", headers={"Bad Name": "v"}),
    "name-empty": lambda R, S: R(b"", headers={"": "v"}),
    "value-crlf": lambda R, S: R(b"", headers={"X": "a\r\nSet-Cookie: evil"}),
    "value-lf": lambda R, S: R(b"", headers={"X": "a\nb"}),
    "value-nul": lambda R, S: R(b"", headers={"X": "a\x00b"}),
    "value-bytes-crlf": lambda R, S: R(b"", headers=[("X", b"a\r\n\r\n<html>")]),
    "value-not-latin1": lambda R, S: R(b"", headers={"X": "€"}),
    "name-not-latin1": lambda R, S: R(b"", headers={"X-€": "v"}),
    "value-int": lambda R, S: R(b"", headers={"X": 5}),
    "name-none": lambda R, S: R(b"", headers=[(None, "v")]),
    "not-a-pair": lambda R, S: R(b"", headers=["X: v"]),
    "triple": lambda R, S: R(b"", headers=[("X", "v", "w")]),
    "content-type-crlf": lambda R, S: R(b"", content_type="text/html\r\nX: y"),
    "content-type-int": lambda R, S: R(b"", content_type=5),
    "transfer-encoding-gzip": lambda R, S: R(b"", headers={"Transfer-Encoding": "gzip"}),
    "transfer-encoding-list": lambda R, S: S(
        _chunks(), headers={"Transfer-Encoding": "gzip, chunked"}
    ),
    "content-length-conflict": lambda R, S: R(
        b"", headers=[("Content-Length", "2"), ("Content-Length", "3")]
    ),
    "content-length-bad": lambda R, S: R(b"x", headers={"Content-Length": "1x"}),
    "content-length-mismatch": lambda R, S: R(b"abc", headers={"Content-Length": "4"}),
    "streaming-not-iterable": lambda R, S: S([b"x"]),
    "streaming-status": lambda R, S: S(_chunks(), status=0),
}


@pytest.mark.parametrize("make", VALID.values(), ids=VALID.keys())
def test_valid_responses_are_built_the_same(make):
    results = both(make)
    assert all(isinstance(r, tuple) and len(r) == 4 for r in results), results
    first = results[0]
    for other in results[1:]:
        assert other[:3] == first[:3]
        if not hasattr(first[3], "__aiter__"):
            assert other[3] == first[3]


@pytest.mark.parametrize("make", INVALID.values(), ids=INVALID.keys())
def test_invalid_responses_raise_the_same_error(make):
    results = both(make)
    assert results[0][0] in ("TypeError", "ValueError"), results
    assert all(r == results[0] for r in results), results


_names = st.sampled_from(
    ["X-A", "x-b", "Cache-Control", "Set-Cookie", "Date", "Server", "ETag", "Connection"]
)
_framing = st.sampled_from(["Transfer-Encoding", "Content-Length"])
_values = st.text(st.characters(min_codepoint=0, max_codepoint=300), max_size=12)
_framing_values = _values | st.sampled_from(["chunked", "2"])


@settings(max_examples=300, deadline=None, database=None)
@given(
    headers=st.one_of(
        st.dictionaries(_names | _framing | st.text(max_size=6), _values, max_size=4),
        st.lists(
            st.tuples(_names | _framing, _values | st.sampled_from(["chunked", "2"])), max_size=4
        ),
    ),
    content_type=st.none() | _values,
)
def test_header_encoding_differential(headers, content_type):
    results = both(lambda R, S: R(b"", headers=headers, content_type=content_type))
    assert all(r == results[0] for r in results), results


# What the server makes of the fields it owns (docs/http-responses.md): the block
# that goes out and whether the connection closes after it.
SERVER_OWNED = {
    "keep-alive dropped": (200, {"Connection": "keep-alive"}, b"", False),
    "close honoured": (200, {"Connection": "Upgrade, close"}, b"", True),
    "chunked left to the server": (200, {"Transfer-Encoding": "chunked"}, b"", False),
    "no length beside chunked": (
        200,
        [("Content-Length", "2"), ("X-A", "1"), ("Transfer-Encoding", "CHUNKED")],
        b"X-A: 1\r\n",
        False,
    ),
    "one length, sent once": (
        200,
        [("Content-Length", "2"), ("content-length", "2")],
        b"Content-Length: 2\r\n",
        False,
    ),
    "no length on 204": (204, {"Content-Length": "0", "X-A": "1"}, b"X-A: 1\r\n", False),
    "no length on 304": (304, {"Content-Length": "2", "ETag": '"e"'}, b'ETag: "e"\r\n', False),
    "no length on 103": (103, {"Content-Length": "2"}, b"", False),
}


@pytest.mark.parametrize("kind", IMPLS)
@pytest.mark.parametrize("case", SERVER_OWNED, ids=SERVER_OWNED)
def test_fields_the_server_owns(kind, case):
    status, headers, head, close = SERVER_OWNED[case]
    Response, StreamingResponse = classes(kind)
    body = b"ab" if status == 200 else b""
    for built in (Response(body, status, headers), StreamingResponse(_chunks(), status, headers)):
        _, flags, encoded, _ = response.fields(built)
        assert encoded == head
        assert bool(flags & _wire.FLAG_CLOSE) == close


@pytest.mark.parametrize("kind", IMPLS)
def test_subclasses_and_isinstance(kind):
    plain = classes(kind)[0]

    class Mine(plain):
        def __init__(self, text: str) -> None:
            super().__init__(text.upper(), content_type="text/plain")

    mine = Mine("hi")
    assert isinstance(mine, plain) and mine.body == b"HI" and mine.status == 200
    assert repr(plain(b"ab", status=201)) == "<Response 201 2 bytes>"


def test_active_classes_are_exported():
    assert cyhttp.Response is _impl.Response and cyhttp.StreamingResponse is _impl.StreamingResponse
    expected = "_response" if cyhttp.implementation == "cython" else "response"
    assert cyhttp.Response.__module__ == f"cyhttp.{expected}"


async def _chunks():
    yield b"x"


@pytest.mark.parametrize("kind", IMPLS)
@pytest.mark.parametrize(
    ("headers", "status", "declared"),
    [
        ({"Content-Length": "5"}, 200, 5),
        ([("content-length", "0"), ("X-A", "1")], 200, 0),
        ({"X-A": "1"}, 200, -1),
        (None, 200, -1),
        ({"Content-Length": "5"}, 204, -1),  # left out on a status with no body
        ({"Content-Length": "5", "Transfer-Encoding": "chunked"}, 200, -1),
    ],
)
def test_responses_keep_their_declared_length(kind, headers, status, declared):
    """The core reads the declared Content-Length from the response, never from its
    encoded header block."""
    plain, streaming = classes(kind)
    body = b"hello" if declared == 5 else b""
    assert response.declared_length(plain(body, status, headers)) == declared
    assert response.declared_length(streaming(_chunks(), status, headers)) == declared
