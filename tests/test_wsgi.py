"""WSGI applications (PEP 3333) on both cores, through real sockets on 127.0.0.1.

Every application is wrapped in ``wsgiref.validate.validator``, so the standard
library's checker watches each exchange from the application's side (it raises
into the server, which answers 500, on anything it finds wrong); the tests read
what a client sees on the wire. The exhaustive PEP 3333 matrix, the frameworks and
the comparison with gunicorn live in test_wsgi_conformance.py and
test_wsgi_frameworks.py; these are the core paths of the adapter and its pool.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import io
import json
import logging
import socket
import sys
import threading
import time
from typing import Any, Callable, Iterable, List
from wsgiref.validate import validator

import pytest

import cyhttp
from cyhttp._interface import detect

from .support import (
    Conn,
    cli_env,
    free_port,
    read_until_closed,
    split_responses,
    start_cli,
    stop_cli,
)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def hello(environ: Environ, start_response: StartResponse) -> List[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def serve(live: Callable[..., Any], app: Any, **options: Any) -> Any:
    """A live server of *app*, checked by ``wsgiref.validate``."""
    return live(validator(app), interface="wsgi", **options)


def ask(srv: Any, data: bytes) -> bytes:
    """Send *data* (its last request closing the connection); everything answered."""
    with srv.connect() as sock:
        sock.sendall(data)
        return read_until_closed(sock)


def get(path: str = "/", extra: bytes = b"", close: bool = True) -> bytes:
    last = b"Connection: close\r\n" if close else b""
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra + last + b"\r\n"


def body_of(answer: bytes) -> bytes:
    return answer.partition(b"\r\n\r\n")[2]


def payload(answer: bytes) -> bytes:
    """The body of one answer, its chunked framing (if any) taken off."""
    head, _, body = answer.partition(b"\r\n\r\n")
    if b"Transfer-Encoding: chunked" not in head:
        return body
    pieces = []
    while True:
        size, _, body = body.partition(b"\r\n")
        if not int(size, 16):
            return b"".join(pieces)
        pieces.append(body[: int(size, 16)])
        body = body[int(size, 16) + 2 :]


# -- which applications are WSGI ----------------------------------------------


class Framework:
    """An application object as Flask's and Django's are."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return hello(environ, start_response)


@pytest.mark.parametrize(
    "app",
    [hello, Framework(), lambda environ, start_response: []],
    ids=["function", "instance", "lambda"],
)
def test_auto_tells_a_wsgi_application_by_its_two_arguments(app):
    assert detect(app) == "wsgi"
    assert cyhttp.Server(app).interface == "wsgi"


def test_a_third_positional_argument_is_not_wsgi():
    # Two required and a third, defaulted: as an ASGI application may be written.
    assert detect(lambda scope, receive, send=None: None) == "asgi"
    assert detect(lambda environ, start_response=None: None) == "native"


# -- the exchange --------------------------------------------------------------


def test_hello_answers_through_a_socket_and_keeps_the_connection(live, impl):
    with serve(live, hello) as srv:
        answers = split_responses(ask(srv, get(close=False) + get()))
    assert len(answers) == 2
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Content-Type: text/plain\r\nContent-Length: 5\r\n" in answer
        assert body_of(answer) == b"hello"
    assert b"Connection: close" not in answers[0]


def echo_environ(environ: Environ, start_response: StartResponse) -> List[bytes]:
    shown = {key: value for key, value in environ.items() if isinstance(value, (str, bool, int))}
    shown["wsgi.version"] = list(environ["wsgi.version"])
    body = json.dumps(shown).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def environ_of(srv: Any, data: bytes) -> Environ:
    answer = ask(srv, data)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
    return json.loads(body_of(answer))  # type: ignore[no-any-return]


def test_the_environ_holds_the_request_as_pep_3333_says(live, impl):
    fields = (
        b"Accept: a\r\nAccept: b\r\nCookie: x=1\r\nCookie: y=2\r\n"
        b"X_Auth_User: admin\r\nX-Auth-User: alice\r\nContent-Type: text/plain\r\n"
    )
    with serve(live, echo_environ, root_path="/api") as srv:
        env = environ_of(srv, get("/caf%C3%A9/a%2Fb?q=%C3%A9&r", fields))
        port = srv.port
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == "/api"
    # Percent-decoded, then each byte one character (latin-1), as PEP 3333 says.
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9/a/b"
    assert env["QUERY_STRING"] == "q=%C3%A9&r"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    # SERVER_PORT: where the request came in (RFC 3875), not Host's port.
    assert env["SERVER_NAME"] == "x" and env["SERVER_PORT"] == str(port)
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["REMOTE_PORT"].isdigit()
    assert env["REMOTE_PORT"] != str(port)
    assert env["HTTP_ACCEPT"] == "a, b"
    assert env["HTTP_COOKIE"] == "x=1; y=2"
    # The underscore field cannot pose as the dashed one.
    assert env["HTTP_X_AUTH_USER"] == "alice"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert "HTTP_CONTENT_TYPE" not in env and "CONTENT_LENGTH" not in env
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.multithread"] is True and env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False and env["wsgi.input_terminated"] is True


@pytest.mark.parametrize("method", ["GET", "TRACE"])
def test_header_fields_reach_the_environ_the_same_whoever_read_the_head(live, impl, method):
    # The core's scanner reads GET's head (its field lines go to the environ as they
    # are); a method it does not know goes to httptools (name and value pairs).
    fields = (
        b"Accept: a\r\nX-Forwarded-For: 10.0.0.1\r\nAccept:  b \r\nCookie: x=1\r\n"
        b"cookie: y=2\r\nX_Dropped: 1\r\nContent-Length: 0\r\n"
    )
    request = get("/", fields).replace(b"GET", method.encode(), 1)
    with serve(live, echo_environ) as srv:
        env = environ_of(srv, request)
    assert env["REQUEST_METHOD"] == method
    assert env["HTTP_HOST"] == "x" and env["SERVER_NAME"] == "x"
    assert env["HTTP_ACCEPT"] == "a, b"  # the whitespace around a value is not the value
    assert env["HTTP_COOKIE"] == "x=1; y=2"  # names are case-insensitive
    # 127.0.0.1 is a trusted proxy by default (as uvicorn's): what it says is believed.
    assert env["HTTP_X_FORWARDED_FOR"] == "10.0.0.1" and env["REMOTE_ADDR"] == "10.0.0.1"
    assert env["CONTENT_LENGTH"] == "0"
    assert not [key for key in env if "DROPPED" in key]


@pytest.mark.parametrize("method", ["GET", "TRACE"])
def test_known_field_names_are_found_in_any_case_and_near_misses_are_other_fields(
    live, impl, method
):
    # The well-known names (User-Agent, Accept-Language...) have a table of their own,
    # read in any case (KNOWN_FIELDS); a name that is not one of them exactly (a letter
    # more or less, an underscore for a dash) must not borrow one's key.
    fields = (
        b"USER-AGENT: ua\r\naccept-LANGUAGE: en\r\nUser-Agents: 2\r\nUser-Agen: 3\r\n"
        b"Accept_Language: fr\r\nX-REQUEST-ID: r1\r\nSec-Fetch-Modes: m\r\nTE: trailers\r\n"
        b"user-agent: ua2\r\nX-Custom-Thing: c\r\n"
    )
    request = get("/", fields).replace(b"GET", method.encode(), 1)
    with serve(live, echo_environ) as srv:
        env = environ_of(srv, request)
    assert env["HTTP_USER_AGENT"] == "ua, ua2"  # the same field, whatever its case
    assert env["HTTP_ACCEPT_LANGUAGE"] == "en"  # the underscore one dropped
    assert env["HTTP_USER_AGENTS"] == "2" and env["HTTP_USER_AGEN"] == "3"
    assert env["HTTP_X_REQUEST_ID"] == "r1" and env["HTTP_SEC_FETCH_MODES"] == "m"
    assert env["HTTP_TE"] == "trailers" and env["HTTP_X_CUSTOM_THING"] == "c"


def test_the_known_field_table_takes_only_names_in_lower_case(impl):
    # Its lookup folds case one way (a name as received to lower case): a name stored
    # in another form could never be found, so it is refused.
    primitives = importlib.import_module(
        "cyhttp._primitives" if impl == "cython" else "cyhttp._primitives_py"
    )
    table = primitives.FieldKeys({b"user-agent": "HTTP_USER_AGENT", b"x-1": "HTTP_X_1"})
    assert table.get(b"User-Agent") == "HTTP_USER_AGENT" and table.get(b"X-1") == "HTTP_X_1"
    assert table.get(b"user_agent") is None and table.get(b"user-agen") is None
    for bad in (b"User-Agent", b"user_agent", b"", b"a b"):
        with pytest.raises(ValueError):
            primitives.FieldKeys({bad: "HTTP_X"})


@pytest.mark.parametrize("method", ["GET", "TRACE"])
def test_each_request_has_its_own_host_though_the_last_one_is_reused(live, impl, method):
    # A Host that reads as the previous request's reuses its string; one that differs,
    # even by a character or in length only, must not.
    hosts = [
        b"a.example:8080",
        b"a.example:8080",
        b"b.example:8080",
        b"a.example:808",
        b"a.example",
    ]
    data = b"".join(
        method.encode() + b" / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n" for host in hosts
    )
    with serve(live, echo_environ) as srv:
        answers = split_responses(ask(srv, data + get()))
    envs = [json.loads(body_of(answer)) for answer in answers[:-1]]
    seen = [(env["HTTP_HOST"], env["SERVER_NAME"], env["SERVER_PORT"]) for env in envs]
    assert seen[0] == seen[1] == ("a.example:8080", "a.example", seen[0][2])
    assert seen[2][:2] == ("b.example:8080", "b.example")
    assert seen[3][:2] == ("a.example:808", "a.example")
    assert seen[4][:2] == ("a.example", "a.example")
    assert json.loads(body_of(answers[-1]))["HTTP_HOST"] == "x"


def test_what_every_environ_starts_with_changes_only_through_set_base(live, impl):
    # Each client's environ start is made once per connection: a change must reach the
    # next request of a connection already open, and a change behind set_base's back
    # (which would not) is refused.
    with serve(live, echo_environ) as srv:
        with srv.connect() as sock:
            sock.sendall(get(close=False))
            first = b""
            while not first.endswith(b"}"):  # one JSON body, framed by its length
                first += sock.recv(65536)
            srv.server.multiprocess = True
            sock.sendall(get())
            second = read_until_closed(sock)
        with pytest.raises(TypeError):
            srv.server._wsgi.base["wsgi.multiprocess"] = False  # type: ignore[index]
        assert srv.server.multiprocess is True
    assert json.loads(body_of(first))["wsgi.multiprocess"] is False
    assert json.loads(body_of(second))["wsgi.multiprocess"] is True


def test_wsgi_errors_goes_to_the_error_log_and_http_10_is_said(live, impl, caplog):
    def app(environ: Environ, start_response: StartResponse) -> List[bytes]:
        errors = environ["wsgi.errors"]
        errors.write("first line\nsecond ")
        errors.writelines(["line\n"])
        errors.flush()
        return echo_environ(environ, start_response)

    with caplog.at_level(logging.ERROR, logger="cyhttp.error"), serve(live, app) as srv:
        env = environ_of(srv, b"GET / HTTP/1.0\r\n\r\n")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert env["SERVER_NAME"] == "127.0.0.1" and env["SERVER_PORT"].isdigit()  # no Host
    logged = [r.getMessage() for r in caplog.records if r.name == "cyhttp.error"]
    assert logged == ["first line", "second line"]


def test_a_trusted_proxy_sets_the_scheme_and_the_client(live, impl):
    fields = b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n"
    with serve(live, echo_environ) as srv:  # 127.0.0.1 is trusted by default
        env = environ_of(srv, get("/", fields))
    assert env["wsgi.url_scheme"] == "https" and env["REMOTE_ADDR"] == "203.0.113.7"
    with serve(live, echo_environ, forwarded_allow_ips="10.0.0.1") as srv:
        env = environ_of(srv, get("/", fields))
    assert env["wsgi.url_scheme"] == "http" and env["REMOTE_ADDR"] == "127.0.0.1"


# -- the request body -------------------------------------------------------------


def echo_lines(environ: Environ, start_response: StartResponse) -> List[bytes]:
    """Reads the body every way wsgi.input allows, and answers what it read."""
    stream = environ["wsgi.input"]
    first = stream.readline()
    limited = stream.readline(3)
    some = stream.read(4)
    rest = list(stream)
    tail = stream.read(10)
    body = json.dumps(
        [first.decode(), limited.decode(), some.decode(), [r.decode() for r in rest], tail.decode()]
    )
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body.encode()]


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_wsgi_input_reads_lines_pieces_and_the_rest(live, impl, framing):
    body = b"one\ntwothree\nfour\nfive"
    if framing == "length":
        head = b"Content-Length: %d\r\n" % len(body)
        sent = body
    else:
        head = b"Transfer-Encoding: chunked\r\n"
        sent = chunked(body[:2], body[2:9], body[9:])
    with serve(live, echo_lines) as srv:
        answer = ask(
            srv, b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + head + b"\r\n" + sent
        )
    assert json.loads(body_of(answer)) == ["one\n", "two", "thre", ["e\n", "four\n", "five"], ""]


def test_a_body_arriving_late_is_streamed_to_the_application(live, impl):
    got: List[bytes] = []

    def app(environ: Environ, start_response: StartResponse) -> List[bytes]:
        stream = environ["wsgi.input"]
        while piece := stream.read(1):
            got.append(piece)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    with serve(live, app) as srv, srv.connect() as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(b"2\r\nab\r\n")
        sock.sendall(b"1\r\nc\r\n0\r\n\r\n")
        answer = read_until_closed(sock)
    assert body_of(answer) == b"ok" and b"".join(got) == b"abc"


def test_100_continue_is_sent_when_the_application_first_reads(live, impl):
    def reader(environ: Environ, start_response: StartResponse) -> List[bytes]:
        body = environ["wsgi.input"].read(5)
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]

    expect = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    with serve(live, reader) as srv, srv.connect() as sock:
        sock.sendall(expect)
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and body_of(answer) == b"hello"

    # An application that does not read answers at once, with no 100 before it.
    with serve(live, hello) as srv, srv.connect() as sock:
        sock.sendall(expect)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"100 Continue" not in answer


def test_a_body_over_max_body_size_gets_413(live, impl):
    with serve(live, echo_lines, max_body_size=10) as srv:
        answer = ask(srv, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n" + b"x" * 11)
        assert answer.startswith(b"HTTP/1.1 413 ")
        answer = ask(
            srv,
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunked(b"x" * 6, b"y" * 6),
        )
    assert b"HTTP/1.1 413 " in answer


# -- the response ------------------------------------------------------------------


STATUSES = {
    "/custom": "299 Custom Reason",
    "/latin": "404 Pas trouv\u00e9",
    "/standard": "200 OK",
    "/empty": "299 ",
    "/crlf": "200 OK\r\nX-Injected: 1",
    "/control": "200 O\x00K",
    "/wide": "200 \u2713",
}


def status_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Answers with the status its path names; streamed when asked (``?stream``)."""
    start_response(STATUSES[environ["PATH_INFO"]], [("Content-Length", "2")])
    if environ["QUERY_STRING"] == "stream":
        return iter([b"o", b"k"])
    return [b"ok"]


@pytest.mark.parametrize("query", ["", "?stream"], ids=["whole", "streamed"])
def test_the_status_line_is_the_applications(live, impl, query):
    with live(status_app, interface="wsgi") as srv:
        for path, line in [
            ("/custom", b"HTTP/1.1 299 Custom Reason\r\n"),
            ("/latin", b"HTTP/1.1 404 Pas trouv\xe9\r\n"),
            ("/standard", b"HTTP/1.1 200 OK\r\n"),
            ("/empty", b"HTTP/1.1 299 \r\n"),
        ]:
            answer = ask(srv, get(path + query))
            assert answer.startswith(line + b"Server: cyhttp\r\n"), answer
            assert body_of(answer) == b"ok"
        # A reason that cannot be sent is the application's error (a 500), as a header is.
        for path in ["/crlf", "/control", "/wide"]:
            answer = ask(srv, get(path + query))
            assert answer.startswith(b"HTTP/1.1 500 Internal Server Error\r\n"), answer
            assert b"X-Injected" not in answer


class Closing:
    """A body iterable that notes its close()."""

    def __init__(self, pieces: Iterable[Any], fail_at: int = -1) -> None:
        self.pieces = pieces
        self.fail_at = fail_at
        self.closed = threading.Event()

    def __iter__(self) -> Any:
        for i, piece in enumerate(self.pieces):
            if i == self.fail_at:
                raise RuntimeError("failed mid-body")
            yield piece

    def close(self) -> None:
        self.closed.set()


def closing_app(body: Closing, headers: Any = ()) -> Any:
    def app(environ: Environ, start_response: StartResponse) -> Closing:
        start_response("200 OK", [("Content-Type", "text/plain"), *headers])
        return body

    return app


def test_close_is_called_after_success_and_failure(live, impl):
    done = Closing([b"a", b"b"])
    with serve(live, closing_app(done)) as srv:
        answer = ask(srv, get())
    assert done.closed.is_set()  # before the end of the response was handed over
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and payload(answer) == b"ab"

    failing = Closing([b"a", b"b"], fail_at=0)
    with serve(live, closing_app(failing)) as srv:
        answer = ask(srv, get())
    assert failing.closed.is_set() and answer.startswith(b"HTTP/1.1 500 ")


def test_close_is_called_when_the_client_goes_away(live, impl):
    endless = Closing(iter(lambda: b"x" * 65536, None))
    with serve(live, closing_app(endless)) as srv:
        with srv.connect() as sock:
            sock.sendall(get())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
        assert endless.closed.wait(10)


def test_a_body_that_is_not_bytes_gets_500_and_the_connection_closes(live, impl):
    def text(environ: Environ, start_response: StartResponse) -> List[Any]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["not bytes"]

    with live(text, interface="wsgi") as srv:  # the validator would refuse it first
        answer = ask(srv, get(close=False) + get())
    assert answer.startswith(b"HTTP/1.1 500 ") and b"Connection: close\r\n" in answer
    assert answer.count(b"HTTP/1.1") == 1  # the pipelined second request is not answered


@pytest.mark.parametrize(
    ("declared", "sent"), [(3, b"hel"), (9, b"hello")], ids=["overrun", "underrun"]
)
def test_a_body_off_its_content_length_never_frames_the_next_answer(live, impl, declared, sent):
    def app(environ: Environ, start_response: StartResponse) -> List[bytes]:
        start_response("200 OK", [("Content-Length", str(declared))])
        return [b"he", b"llo"]

    with live(app, interface="wsgi") as srv:
        answer = ask(srv, get(close=False) + get())
    assert answer.count(b"HTTP/1.1 200 OK") == 1
    assert body_of(answer) == sent  # then the connection closed


def test_head_gets_the_head_alone_and_the_connection_goes_on(live, impl):
    with serve(live, hello) as srv:
        answer = ask(srv, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + get())
    first, second = answer.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert b"Content-Length: 5\r\n" in first and first.endswith(b"\r\n\r\n")
    assert body_of(second) == b"hello"


def test_write_goes_out_before_the_iterable(live, impl):
    def app(environ: Environ, start_response: StartResponse) -> List[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        write(b"wr")
        write(b"it")
        return [b"e!"]

    with serve(live, app) as srv:
        answer = ask(srv, get())
    assert body_of(answer) == b"write!"


def test_exc_info_replaces_the_head_before_the_body_and_raises_after(live, impl):
    def replaces(environ: Environ, start_response: StartResponse) -> List[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("late")
        except ValueError:
            start_response(
                "503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info()
            )
        return [b"oops"]

    with serve(live, replaces) as srv:
        answer = ask(srv, get())
    assert answer.startswith(b"HTTP/1.1 503 ") and body_of(answer) == b"oops"

    def too_late(environ: Environ, start_response: StartResponse) -> Any:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"begun")
        try:
            raise ValueError("late")
        except ValueError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"never"]

    with live(too_late, interface="wsgi") as srv:
        answer = ask(srv, get(close=False) + get())
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"begun" in answer
    assert b"never" not in answer and answer.count(b"HTTP/1.1") == 1


def test_the_file_wrapper_sends_a_file_from_its_position(live, impl, tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 1000)

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        file = open(path, "rb")  # the server closes it
        file.seek(1000)
        return environ["wsgi.file_wrapper"](file, 4096)

    # Unchecked: the validator hides the wrapper from the server behind its own iterator.
    with live(app, interface="wsgi") as srv:
        answer = ask(srv, get())
    assert b"Content-Length: 255000\r\n" in answer
    assert body_of(answer) == path.read_bytes()[1000:]


def test_the_file_wrapper_iterates_what_has_no_descriptor(live, impl):
    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"0123456789"), 3)

    with serve(live, app) as srv:
        answer = ask(srv, get())
    assert body_of(answer) == b"0123456789"


# -- where the application runs -------------------------------------------------


def test_a_blocked_application_stalls_no_other_connection(live, impl):
    release = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> List[bytes]:
        if environ["PATH_INFO"] == "/block":
            release.wait(20)
        return hello(environ, start_response)

    with serve(live, app, threads=2) as srv:
        blocked = srv.connect()
        blocked.sendall(get("/block"))
        try:
            assert body_of(ask(srv, get("/"))) == b"hello"
        finally:
            release.set()
        assert body_of(read_until_closed(blocked)) == b"hello"
        blocked.close()


def test_threads_is_checked():
    with pytest.raises(ValueError, match="threads must be an int >= 1, got 0"):
        cyhttp.Server(hello, threads=0)


def test_each_request_runs_in_a_context_of_its_own(live, impl):
    seen = contextvars.ContextVar("seen", default="unset")

    def app(environ: Environ, start_response: StartResponse) -> List[bytes]:
        before = seen.get()
        seen.set(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [before.encode()]

    with serve(live, app, threads=1) as srv:
        assert body_of(ask(srv, get("/a"))) == b"unset"
        assert body_of(ask(srv, get("/b"))) == b"unset"


def test_shutdown_joins_the_pool_threads(live, impl):
    before = set(threading.enumerate())
    with serve(live, hello, threads=3) as srv:
        for _ in range(3):
            assert body_of(ask(srv, get())) == b"hello"
        pool = srv.server._wsgi.pool
        assert pool.threads
    assert not any(thread.is_alive() for thread in pool.threads)
    assert not [t for t in threading.enumerate() if t not in before and t.name.startswith("cyhttp")]


def test_requests_past_limit_concurrency_get_503(live, impl):
    release = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> List[bytes]:
        if environ["PATH_INFO"] == "/wait":
            release.wait(20)
        return hello(environ, start_response)

    with serve(live, app, threads=1, limit_concurrency=2) as srv:
        waiting = [srv.connect() for _ in range(2)]
        try:
            for sock in waiting:  # one runs, one waits in the queue
                sock.sendall(get("/wait"))
            for _ in range(200):  # until the server has read both
                answer = ask(srv, get())
                if answer.startswith(b"HTTP/1.1 503 "):
                    break
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert b"\r\nRetry-After: 1\r\n" in answer
        finally:
            release.set()
        for sock in waiting:
            with sock:
                assert body_of(read_until_closed(sock)) == b"hello"
        assert body_of(ask(srv, get())) == b"hello"


def test_shutdown_lets_an_in_flight_request_finish(live, impl):
    started, release = threading.Event(), threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> List[bytes]:
        started.set()
        release.wait(20)
        return hello(environ, start_response)

    srv = serve(live, app)
    with srv:
        sock = srv.connect()
        sock.sendall(get(close=False))
        assert started.wait(10)
        stopping = threading.Thread(target=srv.shutdown, args=(10,))
        stopping.start()
        while srv.server._all_closed is None:  # until shutdown has begun on the loop
            threading.Event().wait(0.01)
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), srv.loop).result(10)
        release.set()
        with sock:
            answer = read_until_closed(sock)
        stopping.join(20)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and body_of(answer) == b"hello"
    assert b"Connection: close\r\n" in answer
    assert not srv.server._wsgi.pool.alive()


def test_a_unix_socket_and_the_access_log_serve_wsgi(live, impl, tmp_path, caplog):
    path = str(tmp_path / "wsgi.sock")
    with caplog.at_level(logging.INFO, logger="cyhttp.access"):
        with serve(live, echo_environ, uds=path, access_log=True) as srv:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(path)
                sock.sendall(get("/logged"))
                answer = read_until_closed(sock)
            assert srv.server.where == f"unix:{path}"
    env = json.loads(body_of(answer))
    assert env["REMOTE_ADDR"] == "" and "REMOTE_PORT" not in env
    assert env["SERVER_NAME"] == "x" and env["SERVER_PORT"] == "80"  # no port: Host's
    lines = [r.getMessage() for r in caplog.records if r.name == "cyhttp.access"]
    assert len(lines) == 1 and "GET /logged HTTP/1.1" in lines[0] and " 200" in lines[0]


def test_a_streamed_piece_goes_out_before_the_next_is_made(live, impl):
    sent = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"first"
        sent.wait(20)  # until the client has read the first piece
        yield b"second"

    with serve(live, app) as srv, srv.connect() as sock:
        sock.sendall(get())
        seen = b""
        while b"first" not in seen:
            seen += sock.recv(65536)
        sent.set()
        seen += read_until_closed(sock)
    assert payload(seen) == b"firstsecond"


def test_a_client_that_does_not_read_holds_the_thread_back(live, impl):
    piece = b"x" * 65536
    made = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(piece) * 400))]
        )
        for i in range(400):
            made.append(i)
            yield piece

    with serve(live, app) as srv, srv.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(get())
        # The thread stops once the socket, the transport and its own queue are full.
        stalled = 0
        while stalled < 20:
            before = len(made)
            threading.Event().wait(0.05)
            stalled = stalled + 1 if len(made) == before else 0
        assert len(made) < 100  # 6.4 MB of the 26 MB body at most
        received = len(read_until_closed(sock).partition(b"\r\n\r\n")[2])
    assert received == len(piece) * 400 and len(made) == 400


WSGI_MODULE = """
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [repr(environ['wsgi.multiprocess']).encode()]


def make():
    return app
"""


def cli_answer(port: int) -> bytes:
    """The answer to a GET from a server the CLI is starting on *port*."""
    for _ in range(400):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(get())
                return read_until_closed(sock)
        except ConnectionRefusedError:
            threading.Event().wait(0.05)
    raise AssertionError("the server did not start")


@pytest.mark.parametrize(
    ("args", "multiprocess"),
    [
        (["--threads", "2", "wsgi_app:app"], b"False"),  # auto: two arguments
        (["--interface", "wsgi", "--workers", "2", "--factory", "wsgi_app:make"], b"True"),
    ],
    ids=["one-process", "workers-factory"],
)
def test_the_cli_serves_a_wsgi_application(impl, tmp_path, args, multiprocess):
    (tmp_path / "wsgi_app.py").write_text(WSGI_MODULE)
    port = free_port()
    env = cli_env(CYHTTP_NO_EXTENSIONS="1" if impl == "python" else "0")
    proc = start_cli("--port", str(port), "--app-dir", str(tmp_path), *args, env=env)
    try:
        answer = cli_answer(port)
    finally:
        code, _ = stop_cli(proc)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and payload(answer) == multiprocess
    assert code == 0


def first_answer(app: Any, impl: str, request: bytes, close_pool: bool = False) -> bytes:
    """What a connection of core *impl* in-process (a fake transport) writes first for
    *request* to the WSGI *app*, waited for up to a second; its pool closed first
    when *close_pool*."""

    async def main() -> bytes:
        conn = Conn(app, impl, interface="wsgi")
        if close_pool:
            conn.server._wsgi.pool.close()
        conn.feed(request)
        for _ in range(100):
            if conn.transport.writes:
                break
            await asyncio.sleep(0.01)
        return conn.transport.data

    return asyncio.run(main())


def test_a_request_after_the_pool_closed_is_answered_500(impl):
    """A request that reaches a WSGI layer whose pool has closed (shutdown under way)
    gets a 500, never a hang: its call never reaches the application."""
    seen: List[str] = []

    def app(environ: Environ, start_response: StartResponse) -> List[bytes]:
        seen.append(environ["PATH_INFO"])
        return hello(environ, start_response)

    answer = first_answer(app, impl, get("/late"), close_pool=True)
    assert answer.startswith(b"HTTP/1.1 500 ")
    assert seen == []


def _slow_pieces() -> Iterable[bytes]:
    yield b"first"
    time.sleep(0.2)  # the loop takes the head meanwhile
    yield b"second"


@pytest.mark.parametrize("body", ["list", "iterator", "one piece", "slow"])
def test_a_refused_header_is_answered_500_whatever_the_body(impl, body):
    """A header the core refuses (CR LF in a value) is answered 500 whatever the body:
    empty (a list, an iterator: the head is made once it has ended), one piece (the
    whole response made at the end), or pieces the loop takes as they come (the head
    made on the loop)."""
    bodies = {
        "list": lambda: [],
        "iterator": lambda: iter([]),
        "one piece": lambda: iter([b"only"]),
        "slow": _slow_pieces,
    }

    def app(environ: Environ, start_response: StartResponse) -> Any:
        start_response("200 OK", [("X-Bad", "a\r\nb")])
        return bodies[body]()

    answer = first_answer(app, impl, get("/"))
    assert answer.startswith(b"HTTP/1.1 500 ")
    assert b"X-Bad" not in answer
