"""Request accessors (headers, query, path, cookies): both implementations, same answers.

The compiled ``Headers`` and ``Query`` (``cyhttp._fields``) answer lookups in C;
the pure-Python ones in ``cyhttp.request`` are the reference. Every test runs
against both, directly and through a request read by each core (the compiled
core's scanner and its httptools path keep fields differently).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cyhttp
from cyhttp import _impl, request

from .support import IMPLS


def classes(impl: str):
    """(Headers, Query) of implementation *impl*."""
    if impl == "python":
        return request.Headers, request.Query
    from cyhttp import _fields

    return _fields.Headers, _fields.Query


PAIRS = [
    (b"Host", b"example.com"),
    (b"X-A", b"1"),
    (b"x-a", b"2"),
    (b"Accept-Language", b"en-US,en;q=0.5"),
    (b"X-Caret^", b"c"),
    (b"X-Latin", b"caf\xe9"),
]


@pytest.fixture(params=IMPLS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_headers_lookups(kind):
    headers = classes(kind)[0](PAIRS)
    assert headers.get("x-a") == headers["X-A"] == "1"
    assert headers.getall("X-a") == ["1", "2"]
    assert headers.getall("missing") == [] and headers.getall("missing", ["d"]) == ["d"]
    assert headers.get("missing") is None and headers.get("missing", "d") == "d"
    assert "HOST" in headers and "nope" not in headers and 3 not in headers
    assert headers.get("x-caret~") is None  # "^" and "~" differ only in bit 0x20
    assert headers["x-latin"] == "café"
    with pytest.raises(KeyError):
        headers["missing"]
    assert headers.get(b"host") is None and headers.get("hóst") is None


def test_headers_as_a_mapping(kind):
    headers = classes(kind)[0](PAIRS)
    assert list(headers) == ["host", "x-a", "accept-language", "x-caret^", "x-latin"]
    assert len(headers) == 5
    assert dict(headers.items())["x-a"] == "1"
    assert headers == {
        "host": "example.com",
        "x-a": "1",
        "accept-language": "en-US,en;q=0.5",
        "x-caret^": "c",
        "x-latin": "café",
    }
    assert headers.raw == PAIRS
    from collections.abc import Mapping

    assert isinstance(headers, Mapping)


QUERIES = [
    b"q=abc&page=2",
    b"a=1&&b=&c&d=%zz&e=%E2%82%AC&f=%FF&g=a+b&=x&h=%%41&a=2",
    b"",
    b"x=%",
    b"x=%4",
    b"&&&",
    b"q=%E2%82",
    b"k=v=w",
    b"tag=a&tag=b&tag=",
]


@pytest.mark.parametrize("string", QUERIES)
def test_query_decodes_as_parse_qsl(kind, string):
    query = classes(kind)[1](string)
    expected = parse_qsl(string.decode(), keep_blank_values=True)
    assert query.pairs == expected
    first: dict[str, str] = {}
    for name, value in expected:
        first.setdefault(name, value)
    assert dict(query.items()) == first and list(query) == list(first)
    for name in first:
        assert query[name] == query.get(name) == first[name]
        assert query.getall(name) == [v for n, v in expected if n == name]
    assert query.get("missing") is None and query.getall("missing") == []


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet="ab=&+%2FEe9z\x7f ", max_size=40))
def test_query_differential(string):
    """Any ASCII query: both implementations read it exactly as parse_qsl does."""
    data = string.encode()
    expected = parse_qsl(string, keep_blank_values=True)
    for impl in _impl.AVAILABLE:
        assert classes(impl)[1](data).pairs == expected


ECHO_TARGET = b"/items/42?q=abc&tag=x&tag=y&empty=&sp=a+b%20c"


async def app(req: cyhttp.Request) -> cyhttp.Response:
    return cyhttp.Response(
        repr(
            (
                req.path,
                req.query.get("q"),
                req.query.getall("tag"),
                req.query["empty"],
                req.query["sp"],
                req.headers.get("user-agent"),
                req.headers.getall("x-a"),
                "cookie" in req.headers,
                req.cookies,
            )
        )
    )


HEAD = (
    b"Host: a\r\nUser-Agent: Mozilla/5.0 (X11)\r\nX-A: 1\r\nx-a: 2 \r\n"
    b'Cookie: session=8d1f; theme="dark"\r\nCookie: session=other; lone\r\n'
)
EXPECTED = (
    b"('/items/42', 'abc', ['x', 'y'], '', 'a b c', 'Mozilla/5.0 (X11)', ['1', '2'], True, "
    b"{'session': '8d1f', 'theme': 'dark'})"
)


@pytest.mark.parametrize("core", IMPLS)
@pytest.mark.parametrize(
    "framing",
    [b"", b"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n"],
    ids=["scanned", "httptools"],
)
async def test_accessors_through_each_core(core, framing):
    from .support import Conn

    c = Conn(app, core)
    body = b"0\r\n\r\n" if framing else b""
    c.feed(b"POST " + ECHO_TARGET + b" HTTP/1.1\r\n" + HEAD + framing + b"\r\n" + body)
    await c.settle()
    assert c.data.endswith(EXPECTED), c.data


@pytest.mark.parametrize("core", IMPLS)
@pytest.mark.parametrize(
    ("target", "path"),
    [
        (b"/plain/path?x=1", "/plain/path"),
        (b"/caf%C3%A9?x", "/café"),
        (b"/bad%zz%4", "/bad%zz%4"),
        (b"/half%E2%82", "/half\udce2\udc82"),
        (b"/a%2Fb", "/a/b"),
    ],
)
async def test_path_decoding_never_raises(core, target, path):
    from .support import Conn

    seen = []
    c = Conn(lambda r: seen.append(r.path) or cyhttp.Response(), core)
    c.feed(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    await c.settle()
    assert seen == [path]
