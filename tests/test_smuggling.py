"""Request smuggling and response splitting: every vector is refused, in both cores.

Each vector is named for what it attacks. A refused request gets exactly one
error answer (400, or 501 for what is well formed but not implemented), the
connection closes, and the handler never sees the request.
"""

from __future__ import annotations

import asyncio

import pytest

import cyhttp
from cyhttp import response as response_module

from .support import compiled, read_until_closed
from .vectors import NOT_IMPLEMENTED, TE, VECTORS, H

REFUSED = [pytest.param(v, b"400 Bad Request", id=k) for k, v in VECTORS.items()] + [
    pytest.param(v, b"501 Not Implemented", id=k) for k, v in NOT_IMPLEMENTED.items()
]


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


@pytest.mark.parametrize(("attack", "status"), REFUSED)
async def test_vector_refused(conn, attack, status):
    seen = []

    def app(request):
        seen.append(request.raw_path)
        return cyhttp.Response(b"ok")

    c = conn(app)
    c.feed(attack)
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 " + status + b"\r\n"), c.data
    assert c.data.count(b"HTTP/1.1 ") == 1
    assert b"Connection: close\r\n" in c.data
    assert c.transport.ended
    assert seen == []


@pytest.mark.parametrize(("attack", "status"), REFUSED)
async def test_vector_after_good_request_does_not_leak_second_request(conn, attack, status):
    """A smuggled tail never reaches the handler as a second request."""
    seen = []
    c = conn(lambda r: seen.append(r.raw_path) or cyhttp.Response(b"ok"))
    c.feed(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n" + attack + b"GET /smuggled HTTP/1.1\r\n" + H)
    await c.settle()
    assert seen == [b"/first"]
    assert c.data.count(b"HTTP/1.1 200 OK") == 1
    assert c.data.count(b"HTTP/1.1 " + status) == 1
    assert c.transport.ended


def test_docs_count_the_vectors():
    import re
    from pathlib import Path

    docs = (Path(__file__).parent.parent / "docs" / "http.md").read_text()
    claim = re.search(
        r"holds (\d+) named\s+vectors \((\d+) refused with `400`, (\d+) with `501`\)", docs
    )
    assert claim is not None
    total, bad, unimplemented = map(int, claim.groups())
    assert (bad, unimplemented) == (len(VECTORS), len(NOT_IMPLEMENTED))
    assert total == bad + unimplemented


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


# -- one request's fields never reach another (trailers, last request, version) -----------


def echo_app(seen):
    """Records what each handler saw: path, X-User values, Host, version, keep-alive."""

    async def app(request):
        body = await request.body()
        trailers = dict(request.trailers.items())
        seen.append(
            (
                request.raw_path,
                request.headers.getall("x-user"),
                request.headers.get("host"),
                request.http_version,
                request.keep_alive,
                body,
                trailers,
            )
        )
        return cyhttp.Response(b"ok")

    return app


async def feed_split(conn, app, data, at, **options):
    """Feed *data* to a new connection in two reads split at *at*; the connection."""
    c = conn(app, **options)
    c.feed(data[:at])
    await c.settle()
    if data[at:] and not c.transport.closed:
        c.feed(data[at:])
    await c.settle()
    return c


TRAILER_POST = (
    b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n0\r\nX-User: admin\r\nX-Forwarded-Host: evil.example\r\n\r\n"
)


async def test_trailers_never_reach_the_next_request_at_any_split(conn):
    data = TRAILER_POST + b"GET /b HTTP/1.1\r\nHost: x\r\nX-User: guest\r\n\r\n"
    for at in range(1, len(data)):
        seen = []
        c = await feed_split(conn, echo_app(seen), data, at)
        assert sorted(seen) == [
            (
                b"/a",
                [],
                "x",
                "1.1",
                True,
                b"abc",
                {"x-user": "admin", "x-forwarded-host": "evil.example"},
            ),
            (b"/b", ["guest"], "x", "1.1", True, b"", {}),
        ], at
        assert c.data.count(b"HTTP/1.1 200 OK") == 2


async def test_trailer_host_is_refused_at_any_split(conn):
    # RFC 9110 §6.5.1: routing fields have no place in a trailer section. The request is
    # refused, and the trailer never counts for a Host-less or a correct next request.
    post = TRAILER_POST.replace(b"X-Forwarded-Host", b"Host")
    for tail in (b"GET /b HTTP/1.1\r\n\r\n", b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"):
        data = post + tail
        for at in range(1, len(data)):
            c = await feed_split(conn, echo_app([]), data, at)
            statuses = [line.split(b"\r\n")[0] for line in c.data.split(b"HTTP/1.1 ")[1:]]
            assert statuses == [b"400 Bad Request"], (tail, at, c.data)


async def test_trailers_are_limited_like_a_head(conn):
    many = b"".join(b"X-T%d: v\r\n" % i for i in range(5))
    c = conn(echo_app([]), max_headers=4)
    c.feed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + many + b"\r\n"
    )
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 431 ")
    assert c.transport.ended


async def test_endless_trailer_field_is_cut_off(conn):
    c = conn(echo_app([]), max_header_size=1024, max_url_size=1024)
    c.feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ")
    for _ in range(10):
        if c.transport.ended:
            break
        c.feed(b"v" * 1024)
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 431 ")
    assert c.transport.ended


async def test_trailers_before_the_body_is_complete_raise(conn):
    seen = []

    async def app(request):
        try:
            seen.append(request.trailers)
        except RuntimeError as exc:
            seen.append(str(exc))
        await request.body()
        seen.append(dict(request.trailers.items()))
        return cyhttp.Response(b"ok")

    c = conn(app)
    c.feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    await c.settle()
    c.feed(b"0\r\nX-Sum: 1\r\n\r\n")
    await c.settle()
    assert seen == ["trailers are known once the whole body has been read", {"x-sum": "1"}]


@pytest.mark.parametrize(
    "last",
    [
        b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"GET /last HTTP/1.0\r\n\r\n",
        b"GET /last HTTP/1.0\r\nProxy-Connection: keep-alive\r\n\r\n",
    ],
    ids=["connection-close", "http10", "http10-proxy-connection"],
)
async def test_nothing_after_the_last_request_runs_at_any_split(conn, last):
    """RFC 9112 §9.6: requests after the client's last one are never processed."""
    after = b"POST /after HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx"
    data = last + after
    for at in range(1, len(data)):
        seen: list[bytes] = []
        release = asyncio.Event()

        async def app(request, seen=seen, release=release):
            seen.append(request.raw_path)
            if request.raw_path == b"/last":
                await release.wait()  # suspended while the next request arrives
            return cyhttp.Response(b"ok")

        c = await feed_split(conn, app, data, at)
        release.set()
        await c.settle()
        assert seen == [b"/last"], at
        assert c.data.count(b"HTTP/1.1 ") == 1
        assert c.data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close\r\n" in c.data
        assert c.transport.ended


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"POST / HTTP/1.0\r\nHost: a\r\nProxy-Connection: keep-alive\r\n" + TE, b"400"),
        (b"GET / HTTP/0.9\r\nHost: a\r\nProxy-Connection: keep-alive\r\n", b"505"),
        (b"GET / HTTP/2.0\r\nHost: a\r\nProxy-Connection: keep-alive\r\n", b"505"),
        (b"GET / HTTP/1.0\r\nProxy-Connection: keep-alive\r\n", b"200"),
    ],
    ids=["te-in-http10", "http09", "http20", "http10-without-host"],
)
async def test_proxy_connection_never_changes_the_version_at_any_split(conn, head, status):
    data = head + b"\r\n0\r\n\r\n" if b"chunked" in head else head + b"\r\n"
    for at in range(1, len(data)):
        seen = []
        c = await feed_split(conn, echo_app(seen), data, at)
        assert c.data.startswith(b"HTTP/1.1 " + status), (at, c.data)
        if status == b"200":
            # HTTP/1.0, and Proxy-Connection does not keep it alive: only Connection does.
            assert [(v, k) for _, _, _, v, k, _, _ in seen] == [("1.0", False)]
            assert b"Connection: close\r\n" in c.data


# -- what a handler returns can never crash or desynchronise the core ------------------


# The pure-Python class keeps its fields in slots a handler can reach; the compiled one
# (cyhttp.Response when the Cython core is loaded) keeps read-only C fields. Both cores
# serve both kinds, and neither may crash on what a handler does to them.
PureResponse = response_module.Response
PureStreaming = response_module.StreamingResponse


def _skip_init(cls=PureResponse):
    return lambda: cls.__new__(cls)


def _set_slot(name, value):
    def make():
        response = PureResponse(b"ok", headers={"X-A": "1"})
        object.__setattr__(response, name, value)
        return response

    return make


class _NoInit(PureResponse):
    def __init__(self):
        pass


class _LyingStatus(PureResponse):
    status = property(lambda self: 700000)  # the cores read what was stored: 200


BROKEN = {
    "status-out-of-range": (_set_slot("_status", 700000), "status"),
    "status-negative": (_set_slot("_status", -1), "status"),
    "status-huge": (_set_slot("_status", 2**80), "status"),
    "status-not-int": (_set_slot("_status", "200"), "status"),
    "status-bool": (_set_slot("_status", True), "status"),
    "body-none": (_set_slot("_body", None), "body"),
    "body-str": (_set_slot("_body", "text"), "body"),
    "body-bytearray": (_set_slot("_body", bytearray(b"x")), "body"),
    "head-str": (_set_slot("_head", "X: y\r\n"), "headers"),
    "flags-huge": (_set_slot("_flags", 2**70), "flags"),
    "flags-none": (_set_slot("_flags", None), "flags"),
    "init-skipped": (_skip_init(), "not set"),
    "subclass-init-skipped": (_NoInit, "not set"),
    "active-class-init-skipped": (_skip_init(cyhttp.Response), "not set"),
}


@pytest.mark.parametrize(("make", "field"), BROKEN.values(), ids=BROKEN.keys())
async def test_broken_response_is_a_logged_500(conn, make, field, caplog):
    c = conn(lambda r: make() if r.raw_path == b"/bad" else cyhttp.Response(b"fine"))
    c.feed(b"GET /bad HTTP/1.1\r\nHost: a\r\n\r\nGET /good HTTP/1.1\r\nHost: a\r\n\r\n")
    await c.settle()
    first, second = c.data.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"500 Internal Server Error\r\n")
    assert second.startswith(b"200 OK\r\n") and second.endswith(b"fine")
    assert "invalid response" in caplog.text and field in caplog.text


async def test_broken_streaming_response_is_a_logged_500(conn, caplog):
    async def chunks():
        yield b"x"

    def app(request):
        response = PureStreaming(chunks())
        object.__setattr__(response, "_status", 99)
        return response

    c = conn(app)
    c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert "status" in caplog.text


@pytest.mark.parametrize("base", [PureResponse, cyhttp.Response], ids=["pure", "active"])
async def test_subclass_properties_do_not_change_what_is_served(conn, base):
    class Lying(base):
        status = property(lambda self: 700000)
        body = property(lambda self: "not bytes")

    c = conn(lambda r: Lying(b"ok"))
    c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 200 OK\r\n") and c.data.endswith(b"ok")


@pytest.mark.parametrize("cls", [PureResponse, cyhttp.Response], ids=["pure", "active"])
@pytest.mark.parametrize("name", ["status", "body"])
def test_response_fields_are_read_only(cls, name):
    response = cls(b"ok")
    with pytest.raises(AttributeError):
        setattr(response, name, 700000)
    assert (response.status, response.body) == (200, b"ok")


@compiled
@pytest.mark.parametrize("name", ["status", "body", "_head", "_flags"])
def test_compiled_response_fields_cannot_be_reached(name):
    response = cyhttp.Response(b"ok")
    with pytest.raises(AttributeError):
        object.__setattr__(response, name, 700000)


def test_mutated_response_over_a_socket_leaves_the_server_serving(live):
    import socket

    def app(request):
        if request.raw_path == b"/bad":
            return _set_slot("_status", 700000)()
        return cyhttp.Response(b"fine")

    with live(app) as srv:
        for path in (b"/bad", b"/good"):
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
                sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                reply = read_until_closed(sock)
            expected = b"HTTP/1.1 500 " if path == b"/bad" else b"HTTP/1.1 200 OK"
            assert reply.startswith(expected)


# -- hosts, leading empty lines and upgrades that are accepted ----------------------------


@pytest.mark.parametrize(
    "host",
    [b"a", b"example.com:8080", b"127.0.0.1:80", b"[::1]", b"[::1]:8080", b"a%41b", b"", b"x_y~z"],
)
async def test_valid_hosts_are_accepted(conn, host):
    seen = []
    c = conn(echo_app(seen))
    c.feed(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 200 OK"), c.data
    assert seen[0][2] == host.decode()


async def test_empty_lines_before_a_request_are_ignored(conn):
    """RFC 9112 §2.2: a server SHOULD ignore at least one empty line (CRLF) before it."""
    seen = []
    c = conn(echo_app(seen))
    c.feed(b"\r\n\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n")
    await c.settle()
    assert [s[0] for s in seen] == [b"/a", b"/b"]


async def test_options_star_and_absolute_form_are_accepted(conn):
    """An absolute-form target is served as its path, its authority as Host (RFC 9112 §3.2.2)."""
    seen = []
    c = conn(echo_app(seen))
    c.feed(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\nGET http://b/c?d HTTP/1.1\r\nHost: a\r\n\r\n")
    await c.settle()
    assert [(s[0], s[2]) for s in seen] == [(b"*", "a"), (b"/c?d", "b")]


async def test_upgrade_without_body_is_answered_as_an_ordinary_request(conn):
    seen = []
    c = conn(echo_app(seen))
    c.feed(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n")
    await c.settle()
    assert c.data.startswith(b"HTTP/1.1 200 OK") and b"Connection: close\r\n" in c.data
    assert len(seen) == 1


async def test_upgrade_header_alone_keeps_the_body(conn):
    # Without "Connection: upgrade" llhttp sees no switch: an ordinary request with its body.
    seen = []
    c = conn(echo_app(seen))
    c.feed(b"PUT / HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nContent-Length: 4\r\n\r\nabcd")
    await c.settle()
    assert seen[0][5] == b"abcd"


REQUEST_LINE = [
    "two-spaces-before-target",
    "two-spaces-before-version",
    "bare-lf-before-request-line",
    "bare-cr-before-request-line",
    "rtsp-protocol",
    "star-target-not-options",
]


@pytest.mark.parametrize("name", REQUEST_LINE)
async def test_request_line_leniencies_refused_at_any_split(conn, name):
    # After a plain request, so that the compiled core's scanner is in play; llhttp skips
    # a bare CR silently, so only the bytes themselves can tell.
    data = b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n" + VECTORS[name]
    for at in range(1, len(data)):
        seen = []
        c = await feed_split(conn, echo_app(seen), data, at)
        statuses = [line.split(b"\r\n")[0] for line in c.data.split(b"HTTP/1.1 ")[1:]]
        assert statuses == [b"200 OK", b"400 Bad Request"], (at, c.data)
        assert [s[0] for s in seen] == [b"/first"]


def test_issue_examples_over_a_socket(live):
    """The trailer leak and the request after the last one, as reported, through TCP."""
    import socket
    import threading

    seen = []
    slow_running = threading.Event()

    async def app(request):
        await request.body()
        seen.append((request.raw_path, request.headers.getall("x-user")))
        if request.raw_path == b"/slow":
            slow_running.set()
            await asyncio.sleep(0.2)  # still running when the next request arrives
        return cyhttp.Response(b"ok")

    with live(app) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(
                b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n0\r\nX-User: admin\r\n\r\n"
                b"GET /b HTTP/1.1\r\nHost: x\r\nX-User: guest\r\nConnection: close\r\n\r\n"
            )
            assert read_until_closed(sock).count(b"HTTP/1.1 200 OK") == 2
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert slow_running.wait(10)
            sock.sendall(b"POST /after HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert read_until_closed(sock).count(b"HTTP/1.1 ") == 1
    assert seen == [(b"/a", []), (b"/b", ["guest"]), (b"/slow", [])]
