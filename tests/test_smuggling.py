"""Request smuggling and response splitting: every vector is refused, in both cores.

Each vector is named for what it attacks. A refused request gets exactly one
error answer, the connection closes, and the handler never sees the request.
"""

from __future__ import annotations

import pytest

import cyhttp

H = b"Host: a\r\n"
TE = b"Transfer-Encoding: chunked\r\n"
CHUNKED_POST = b"POST / HTTP/1.1\r\n" + H + TE + b"\r\n"

VECTORS = {
    # Content-Length / Transfer-Encoding disagreements (CL.TE, TE.CL desync).
    "cl-with-te": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n" + TE + b"\r\n0\r\n\r\n",
    "te-with-cl": b"POST / HTTP/1.1\r\n" + H + TE + b"Content-Length: 3\r\n\r\n0\r\n\r\n",
    "duplicate-cl-same": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
    ),
    "duplicate-cl-different": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    ),
    "cl-list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 3\r\n\r\nabc",
    "cl-negative": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n",
    "cl-plus-sign": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\nabc",
    "cl-hex": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x3\r\n\r\nabc",
    "cl-inner-space": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1 2\r\n\r\n",
    "cl-overflow": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n",
    "cl-empty": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \r\n\r\n",
    # Transfer-Encoding tricks.
    "te-chunked-not-last": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n",
    "te-identity": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n",
    "te-unknown": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n",
    "te-chunked-twice": b"POST / HTTP/1.1\r\n" + H + TE + TE + b"\r\n0\r\n\r\n",
    "te-space-before-colon": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n",
    "te-vertical-tab": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\x0bchunked\r\n\r\n",
    "te-in-http10": b"POST / HTTP/1.0\r\n" + H + TE + b"\r\n0\r\n\r\n",
    # Chunked framing.
    "chunk-size-not-hex": CHUNKED_POST + b"zz\r\nabc\r\n0\r\n\r\n",
    "chunk-size-overflow": CHUNKED_POST + b"ffffffffffffffffff\r\nabc\r\n",
    "chunk-size-negative": CHUNKED_POST + b"-3\r\nabc\r\n0\r\n\r\n",
    "chunk-size-leading-space": CHUNKED_POST + b" 3\r\nabc\r\n0\r\n\r\n",
    "chunk-extension-nul": CHUNKED_POST + b"3;\x00x\r\nabc\r\n0\r\n\r\n",
    "chunk-extension-quoted-lf": CHUNKED_POST + b'3;a="b\nc"\r\nabc\r\n0\r\n\r\n',
    "chunk-data-too-long": CHUNKED_POST + b"3\r\nabcX0\r\n\r\n",
    "chunk-bare-lf": CHUNKED_POST + b"3\nabc\n0\n\n",
    # Header syntax.
    "obs-fold-space": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n",
    "obs-fold-tab": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n\tc\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\n" + H + b"X-A : b\r\n\r\n",
    "leading-space-first-header": b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
    "empty-header-name": b"GET / HTTP/1.1\r\n" + H + b": b\r\n\r\n",
    "header-without-colon": b"GET / HTTP/1.1\r\n" + H + b"XA\r\n\r\n",
    "nul-in-header-value": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x00c\r\n\r\n",
    "nul-in-header-name": b"GET / HTTP/1.1\r\n" + H + b"X\x00A: b\r\n\r\n",
    "control-in-header-value": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x01c\r\n\r\n",
    "del-in-header-value": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x7fc\r\n\r\n",
    "control-in-header-name": b"GET / HTTP/1.1\r\n" + H + b"X\x01A: b\r\n\r\n",
    # Line endings.
    "bare-lf-line-endings": b"GET / HTTP/1.1\nHost: a\n\n",
    "bare-cr-in-header-value": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\rc\r\n\r\n",
    "bare-lf-after-header-value": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\n\r\n",
    "bare-cr-after-version": b"GET / HTTP/1.1\rHost: a\r\n\r\n",
    # Request line.
    "space-in-target": b"GET /a b HTTP/1.1\r\n" + H + b"\r\n",
    "control-in-target": b"GET /\x01 HTTP/1.1\r\n" + H + b"\r\n",
    "tab-in-target": b"GET /\ta HTTP/1.1\r\n" + H + b"\r\n",
    "unknown-version": b"GET / HTTP/1.2\r\n" + H + b"\r\n",
    "lowercase-method": b"get / HTTP/1.1\r\n" + H + b"\r\n",
    "garbage-method": b"G\x00T / HTTP/1.1\r\n" + H + b"\r\n",
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    # Host (RFC 9112 §3.2).
    "missing-host-http11": b"GET / HTTP/1.1\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "two-hosts-http10": b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
}


@pytest.mark.parametrize("version", [b"0.9", b"2.0"])
async def test_other_http_versions_get_505(conn, version):
    for connection in (b"", b"Connection: keep-alive\r\n"):
        c = conn(lambda r: cyhttp.Response(b"ok"))
        c.feed(b"GET / HTTP/" + version + b"\r\n" + H + connection + b"\r\n")
        assert c.data.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n")
        assert c.transport.ended


@pytest.mark.parametrize(
    ("head", "version", "keep"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\n", "1.1", True),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n", "1.1", False),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n", "1.1", True),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, foo\r\n", "1.1", True),
        (b"GET / HTTP/1.0\r\n", "1.0", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n", "1.0", True),
        (b"GET / HTTP/1.0\r\nConnection: close\r\n", "1.0", False),
    ],
)
async def test_version_and_keep_alive_seen_by_handler(conn, head, version, keep):
    seen = []
    c = conn(lambda r: seen.append((r.http_version, r.keep_alive)) or cyhttp.Response())
    c.feed(head + b"\r\n")
    assert seen == [(version, keep)]


@pytest.mark.parametrize("attack", VECTORS.values(), ids=VECTORS.keys())
async def test_vector_refused(conn, attack):
    seen = []

    def app(request):
        seen.append(request.raw_path)
        return cyhttp.Response(b"ok")

    c = conn(app)
    c.feed(attack)
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 400 Bad Request\r\n"), c.data
    assert c.data.count(b"HTTP/1.1 ") == 1
    assert b"Connection: close\r\n" in c.data
    assert c.transport.ended
    assert seen == []


@pytest.mark.parametrize("attack", VECTORS.values(), ids=VECTORS.keys())
async def test_vector_after_good_request_does_not_leak_second_request(conn, attack):
    """A smuggled tail never reaches the handler as a second request."""
    seen = []
    c = conn(lambda r: seen.append(r.raw_path) or cyhttp.Response(b"ok"))
    c.feed(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n" + attack + b"GET /smuggled HTTP/1.1\r\n" + H)
    await c.settle()
    assert seen == [b"/first"]
    assert c.data.count(b"HTTP/1.1 200 OK") == 1
    assert c.data.count(b"HTTP/1.1 400 Bad Request") == 1
    assert c.transport.ended


def test_at_least_forty_vectors():
    assert len(VECTORS) >= 40


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Split": "a\r\nSet-Cookie: evil=1"},
        {"X-Split": "a\nb"},
        {"X-Split": "a\rb"},
        {"X-Nul": "a\x00b"},
        {"Bad\r\nName": "v"},
        [("X-Bytes", b"a\r\n\r\n<html>")],
    ],
    ids=["crlf-value", "lf-value", "cr-value", "nul-value", "crlf-name", "bytes-value"],
)
async def test_handler_cannot_split_response(conn, headers, caplog):
    def app(request):
        return cyhttp.Response(b"x", headers=headers)

    c = conn(app)
    c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"evil" not in c.data and b"<html>" not in c.data
    assert "CR, LF or NUL" in caplog.text or "invalid header name" in caplog.text
