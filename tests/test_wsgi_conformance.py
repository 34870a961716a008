"""PEP 3333 through real sockets: cyhttp's WSGI interface on both cores, and gunicorn.

Every test talks to a server process serving ``tests/frameworks/wsgi_conformance_app.py``
(wrapped in ``wsgiref.validate.validator``) with a raw-socket client where framing
matters. The servers are cyhttp (``--interface wsgi``, each core) and gunicorn's gthread
worker, the reference: the same test against each, so a difference from the reference
shows as one test failing beside another passing. Where gunicorn itself falls short of
PEP 3333 or of what cyhttp promises, its case is an expected failure that says why.

Every server is mounted at ``/mount``: cyhttp by ``--root-path`` (the proxy in front has
removed the prefix, as uvicorn's ``root_path``), gunicorn by its ``SCRIPT_NAME``
variable (the prefix stays on the request path); :meth:`Served.target` writes a
request's target the way each expects it.
"""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from .frameworks import wsgi_conformance_app as conformance
from .support import WSGI_SERVERS, cli_env, free_port, serving_process, wsgi_argv

APP = "tests.frameworks.wsgi_conformance_app:app"
MOUNT = "/mount"
MAX_BODY = 65536


@dataclass
class Answer:
    """One response as read off the wire."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    complete: bool  # False: the connection ended before the body its framing announced

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n == name.lower()]
        return ",".join(values) if values else None

    def json(self) -> Any:
        return json.loads(self.body)


class Wire:
    """A raw client connection: bytes out, whole responses in, parsed as they arrive."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self, head: bool = False) -> Answer | None:
        """The next response (a 1xx too), or None if the connection ended first; *head*:
        the answer to a HEAD, which has no body whatever its fields say."""
        line = self.file.readline()
        if not line:
            return None
        version, _, rest = line.rstrip(b"\r\n").partition(b" ")
        assert version.startswith(b"HTTP/1."), line
        code, _, reason = rest.partition(b" ")
        headers = []
        while (field_line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = field_line.decode("latin-1").partition(":")
            headers.append((name.strip().lower(), value.strip()))
        answer = Answer(int(code), reason.decode("latin-1"), headers, b"", True)
        if head or answer.status < 200 or answer.status in (204, 304):
            return answer
        if answer.header("transfer-encoding") == "chunked":
            self._chunked(answer)
        elif (length := answer.header("content-length")) is not None:
            answer.body = self.file.read(int(length))
            answer.complete = len(answer.body) == int(length)
        else:  # delimited by the end of the connection
            answer.body = self.file.read()
        return answer

    def _chunked(self, answer: Answer) -> None:
        pieces = []
        while True:
            size_line = self.file.readline()
            if not size_line.endswith(b"\n"):
                answer.complete = False
                break
            size = int(size_line.split(b";")[0], 16)
            piece = self.file.read(size + 2)
            if size == 0:
                break
            pieces.append(piece[:size])
            if len(piece) < size + 2:
                answer.complete = False
                break
        answer.body = b"".join(pieces)

    def final(self, head: bool = False) -> Answer:
        """The next final (non-1xx) response, which must come."""
        while True:
            answer = self.answer(head)
            assert answer is not None, "the connection ended before the response"
            if answer.status >= 200:
                return answer

    def rest(self) -> bytes:
        """Whatever comes until the server closes the connection."""
        return self.file.read()


@dataclass
class Served:
    """A server process under test."""

    name: str
    port: int

    def target(self, path: str) -> str:
        """The request target for *path* under the mount point, as this server wants it."""
        return MOUNT + path if self.name == "gunicorn" else path

    def wire(self) -> Wire:
        return Wire(self.port)

    def request(self, method: str, path: str, *fields: str, body: bytes = b"") -> bytes:
        """A request's bytes: *path* under the mount point, *fields* as "Name: value"."""
        lines = [f"{method} {self.target(path)} HTTP/1.1", "Host: test", *fields]
        if body and not any(f.lower().startswith("transfer-encoding") for f in fields):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def ask(self, method: str, path: str, *fields: str, body: bytes = b"") -> Answer:
        """One request on a connection of its own, and its final answer."""
        with self.wire() as wire:
            wire.send(self.request(method, path, *fields, body=body))
            return wire.final(head=method == "HEAD")

    def token(self) -> str:
        return uuid.uuid4().hex

    def events(self, token: str, until: str | None = None) -> list[str]:
        """What the application recorded for *token*; with *until*, waits (a bounded
        poll, 10 s) for that event to appear, as the server may finish after the client."""
        deadline = time.monotonic() + 10
        while True:
            found: list[str] = self.ask("GET", f"/_log?t={token}").json()
            if until is None or until in found or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def differs(self, request: pytest.FixtureRequest, reason: str) -> None:
        """Mark the reference's case an expected failure: gunicorn does not do this."""
        if self.name == "gunicorn":
            request.applymarker(pytest.mark.xfail(reason=f"gunicorn: {reason}", strict=True))


@pytest.fixture(scope="module", params=WSGI_SERVERS)
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The application served by cyhttp (each core) or gunicorn, for this module."""
    name = str(request.param)
    port = free_port()
    options = (
        "--root-path", MOUNT, "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1",
        "--max-body-size", str(MAX_BODY),
    )  # fmt: skip
    argv = wsgi_argv(name, port, APP, *options)
    env = cli_env(SCRIPT_NAME=MOUNT) if name == "gunicorn" else cli_env()
    log = tmp_path_factory.mktemp("wsgi") / "log"
    with serving_process(argv, port, env, log):
        yield Served(name, port)
    # The checker's findings the server did not turn into answers land in its log,
    # and so does a body iterable it found unclosed when the server dropped it.
    text = log.read_text()
    assert "AssertionError" not in text and "without being closed" not in text, text


# -- the environ ---------------------------------------------------------------------


def test_cgi_keys(srv):
    answer = srv.ask("GET", "/environ?a=1&b=%20x")
    assert answer.status == 200
    env = answer.json()
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == MOUNT
    assert env["PATH_INFO"] == "/environ"
    assert env["QUERY_STRING"] == "a=1&b=%20x"  # as sent, not decoded
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_NAME"]
    assert env["SERVER_PORT"] == str(srv.port)  # RFC 3875: the port the request came in on
    assert env.get("CONTENT_LENGTH", "") in ("", "0")
    assert env["HTTP_HOST"] == "test"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True
    assert env["wsgi.run_once"] is False
    for key in ("wsgi.input", "wsgi.errors", "wsgi.multiprocess", "wsgi.file_wrapper"):
        assert key in env["has"]


def test_remote_addr_and_port(srv):
    with srv.wire() as wire:
        wire.send(srv.request("GET", "/environ"))
        env = wire.final().json()
        port = wire.sock.getsockname()[1]
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(port)


def test_path_info_is_percent_decoded_as_latin_1(srv):
    # PEP 3333: the bytes of the path, decoded as latin-1; é in UTF-8 is C3 A9.
    env = srv.ask("GET", "/environ/caf%C3%A9%20x").json()
    assert env["PATH_INFO"] == "/environ/caf\u00c3\u00a9 x"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/environ/café x"


def test_repeated_fields_are_joined(srv):
    env = srv.ask("GET", "/environ", "X-Multi: a", "X-Multi: b").json()
    assert [v.strip() for v in env["HTTP_X_MULTI"].split(",")] == ["a", "b"]


def test_content_fields_are_not_http_keys(srv):
    answer = srv.ask("POST", "/environ", "Content-Type: text/plain", body=b"hello")
    env = answer.json()
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env


def test_underscore_field_cannot_pose_as_a_dashed_one(srv):
    env = srv.ask("GET", "/environ", "X_Auth_User: mallory").json()
    assert "HTTP_X_AUTH_USER" not in env
    env = srv.ask("GET", "/environ", "X-Auth-User: alice", "X_Auth_User: mallory").json()
    assert env["HTTP_X_AUTH_USER"] == "alice"


def test_url_scheme_from_a_trusted_proxy(srv):
    env = srv.ask("GET", "/environ", "X-Forwarded-Proto: https").json()
    assert env["wsgi.url_scheme"] == "https"


def test_input_terminated(srv):
    env = srv.ask("GET", "/environ").json()
    assert env.get("wsgi.input_terminated") is True


# -- wsgi.input ----------------------------------------------------------------------

BODY = b"first line\nsecond, longer line\n\nlast, unterminated"


@pytest.mark.parametrize("how", ["read-n", "read", "readline", "readlines", "iter"])
def test_input_reads(srv, how):
    pieces = [
        p.encode("latin-1") for p in srv.ask("POST", f"/body?how={how}&n=7", body=BODY).json()
    ]
    assert b"".join(pieces) == BODY
    if how in ("read-n", "readline"):
        assert all(0 < len(p) <= 7 for p in pieces)
    if how == "readline":  # a line ends at its newline or at the limit, never past either
        assert all(b"\n" not in p[:-1] for p in pieces)
    if how in ("readlines", "iter"):
        assert pieces == BODY.splitlines(keepends=True)


def test_chunked_request_body(srv):
    chunked = b"5\r\nfirst\r\n1\r\n \r\n6\r\nsecond\r\n0\r\n\r\n"
    with srv.wire() as wire:
        wire.send(srv.request("POST", "/body?how=read", "Transfer-Encoding: chunked") + chunked)
        assert wire.final().json() == ["first second"]
        wire.send(srv.request("GET", "/environ", "Transfer-Encoding: chunked") + b"0\r\n\r\n")
        env = wire.final().json()  # the connection goes on after a chunked body
    assert env.get("CONTENT_LENGTH", "") == ""
    assert env["wsgi.input_terminated"] is True


def test_input_streams_as_the_body_arrives(srv, request):
    srv.differs(request, "readline() waits for 1024 bytes of a chunked body, or its end")
    with srv.wire() as wire:
        wire.send(srv.request("POST", "/echo-lines", "Transfer-Encoding: chunked"))
        wire.send(b"6\r\nfirst\n\r\n")
        # The answer's head and first line come while the rest of the body is unsent.
        assert wire.file.readline().startswith(b"HTTP/1.1 200")
        while wire.file.readline() != b"\r\n":
            pass
        assert wire.file.readline() == b"6\r\n" and wire.file.readline() == b"first\n"
        wire.send(b"7\r\nsecond\n\r\n0\r\n\r\n")
        assert wire.file.readline() == b"\r\n"
        assert wire.file.readline() == b"7\r\n" and wire.file.readline() == b"second\n"


def test_100_continue_sent_when_the_application_reads(srv):
    with srv.wire() as wire:
        wire.send(
            srv.request("POST", "/body?how=read", "Expect: 100-continue", "Content-Length: 4")
        )
        interim = wire.answer()
        assert interim is not None and interim.status == 100
        wire.send(b"body")
        assert wire.final().json() == ["body"]


def test_no_100_continue_when_the_application_does_not_read(srv, request):
    srv.differs(request, "answers 100 Continue before calling the application")
    with srv.wire() as wire:
        wire.send(srv.request("POST", "/ignore-body", "Expect: 100-continue", "Content-Length: 4"))
        answer = wire.answer()
        assert answer is not None and answer.status == 200
        assert answer.json() == "ignored"


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_body_past_max_body_size_is_413(srv, request, framing):
    srv.differs(request, "has no request body limit")
    big = b"b" * (MAX_BODY + 1)
    if framing == "length":
        data = srv.request("POST", "/body?how=read", body=big)
    else:
        data = srv.request("POST", "/body?how=read", "Transfer-Encoding: chunked")
        data += b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)
    with srv.wire() as wire:
        try:
            wire.send(data)
        except ConnectionResetError:
            pass  # refused before the whole body was sent: the answer is still there
        assert wire.final().status == 413


# -- start_response, write() and the body iterable -----------------------------------


def test_exc_info_before_the_body_replaces_the_head(srv, request):
    srv.differs(request, "keeps the fields of the head it replaces")
    answer = srv.ask("GET", "/exc-before-body")
    assert (answer.status, answer.body) == (503, b"replaced")  # its reason: test_reason_*
    assert answer.header("x-first") is None


def test_exc_info_after_the_head_reraises(srv):
    token = srv.token()
    with srv.wire() as wire:
        wire.send(srv.request("GET", f"/exc-after-head?t={token}"))
        answer = wire.final()
        assert wire.rest() == b""  # and the connection ends
    assert answer.status == 200 and not answer.complete
    assert answer.body.startswith(b"partial")
    assert srv.events(token, until="close") == ["reraised", "close"]


def test_write_callable(srv):
    token = srv.token()
    answer = srv.ask("GET", f"/write?t={token}")
    assert (answer.status, answer.body) == (200, b"onetwosix")
    assert srv.events(token, until="close") == ["close"]


def test_close_called_on_success(srv):
    token = srv.token()
    assert srv.ask("GET", f"/close?t={token}").body == b"done"
    assert srv.events(token, until="close") == ["close"]


def test_close_called_when_the_body_raises(srv):
    token = srv.token()
    with srv.wire() as wire:
        wire.send(srv.request("GET", f"/raise-in-body?t={token}"))
        answer = wire.final()
        assert wire.rest() == b""
    assert answer.status == 200 and not answer.complete
    assert srv.events(token, until="close") == ["close"]


def test_close_called_when_the_client_goes(srv):
    token = srv.token()
    with srv.wire() as wire:
        wire.send(srv.request("GET", f"/stream?t={token}"))
        assert wire.file.readline().startswith(b"HTTP/1.1 200")
        wire.file.read(4096)  # the stream has begun
    found = srv.events(token, until="close")
    assert found[-1] == "close"
    assert found[0].startswith("sent ") and int(found[0].split()[1]) < 2000


def test_str_body_is_500_before_the_head(srv, request):
    srv.differs(request, "sends the head before it looks at the first piece")
    with srv.wire() as wire:
        wire.send(srv.request("GET", "/str-body"))
        assert wire.final().status == 500


def test_str_after_the_head_closes_the_connection(srv):
    token = srv.token()
    with srv.wire() as wire:
        wire.send(srv.request("GET", f"/str-later?t={token}") + srv.request("GET", "/environ"))
        answer = wire.final()
        assert answer.status == 200 and not answer.complete
        assert answer.body == b"bytes first"
        assert wire.rest() == b""  # the pipelined request is not answered on it
    assert srv.events(token, until="close") == ["close"]


def test_exception_before_start_response_is_500(srv):
    with srv.wire() as wire:
        wire.send(srv.request("GET", "/raise") + srv.request("GET", "/environ"))
        assert wire.final().status == 500


def test_exception_in_the_first_piece_is_500(srv):
    token = srv.token()
    assert srv.ask("GET", f"/raise-first?t={token}").status == 500
    assert srv.events(token, until="close") == ["close"]


@pytest.mark.parametrize(
    ("declared", "sent"),
    [("5", "0123456789"), ("10", "01234"), ("10", "")],
    ids=["over", "under", "none"],
)
def test_wrong_content_length_never_frames_the_next_response(srv, request, declared, sent):
    if int(declared) > len(sent):
        srv.differs(request, "keeps a connection whose body fell short: the next answer fills it")
    token = srv.token()
    with srv.wire() as wire:
        wire.send(
            srv.request("GET", f"/length?declared={declared}&sent={sent}&t={token}")
            + srv.request("GET", "/environ?next")
        )
        first = wire.final()
        assert first.body == sent.encode()[: int(declared)]
        # What follows is either the next answer, whole, or the end of the connection.
        rest = wire.rest()
    assert rest == b"" or rest.startswith(b"HTTP/1.1 200"), rest[:80]
    if rest:
        assert b'"QUERY_STRING": "next"' in rest
    assert srv.events(token, until="close") == ["close"]


def test_head_has_no_body(srv):
    with srv.wire() as wire:
        wire.send(srv.request("HEAD", "/close") + srv.request("GET", "/environ?after-head"))
        head = wire.final(head=True)
        assert head.status == 200 and head.header("content-length") == "4"
        assert wire.final().json()["QUERY_STRING"] == "after-head"


@pytest.mark.parametrize("route", ["/file", "/file-raw"])
def test_file_wrapper(srv, route):
    token = srv.token()
    answer = srv.ask("GET", f"{route}?t={token}")
    assert answer.status == 200
    assert answer.body == Path(conformance.FILE).read_bytes()
    assert srv.events(token, until="close") == ["close"]


def test_reason_phrase_kept(srv):
    answer = srv.ask("GET", "/status?s=299%20Custom%20Reason")
    assert (answer.status, answer.reason, answer.body) == (299, "Custom Reason", b"ok")


# -- connections ---------------------------------------------------------------------


def test_pipelined_requests_answered_in_order(srv):
    with srv.wire() as wire:
        wire.send(
            srv.request("GET", "/environ?1")
            + srv.request("POST", "/body?how=read", body=b"two")
            + srv.request("GET", "/environ?3")
        )
        assert wire.final().json()["QUERY_STRING"] == "1"
        assert wire.final().json() == ["two"]
        assert wire.final().json()["QUERY_STRING"] == "3"


def test_a_blocked_application_does_not_stall_other_connections(srv):
    # /block waits (10 s at most) for /release, sent on another connection: a server
    # that runs one request at a time answers "not released", after the wait.
    token = srv.token()
    with srv.wire() as blocked:
        blocked.send(srv.request("GET", f"/block?t={token}"))
        assert srv.ask("GET", f"/release?t={token}").json() == "set"
        assert blocked.final().json() == "released"


# -- side by side with the reference -------------------------------------------------

# What PEP 3333 and CGI name, the fields, and the wsgi scalars: what both servers must
# agree on (their ports, names and extensions of their own aside).
CGI = {"REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE"}
CGI |= {"CONTENT_LENGTH", "SERVER_PROTOCOL", "REMOTE_ADDR", *conformance.SCALARS}
SIDE_BY_SIDE = [
    ("GET", "/environ?x=1&y=%20z", ()),
    ("GET", "/environ/caf%C3%A9/%7Euser", ()),
    ("GET", "/environ", ("X-Multi: a", "X-Multi: b", "X_Auth_User: m", "Accept: */*")),
    ("GET", "/environ", ("X-Forwarded-Proto: https",)),
    ("POST", "/environ", ("Content-Type: text/plain; charset=utf-8",)),
    ("POST", "/body?how=readline&n=5", ()),
    ("POST", "/body?how=iter", ()),
    ("GET", "/status?s=299%20Custom%20Reason", ()),
    ("GET", "/status?s=404%20Not%20Here", ()),
    ("GET", "/write", ()),
    ("GET", "/exc-before-body", ()),
    ("GET", "/raise", ()),
    ("GET", "/raise-first", ()),
    ("GET", "/file", ()),
    ("HEAD", "/close", ()),
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """gunicorn gthread serving the same application, beside the server under test."""
    pytest.importorskip("gunicorn")
    port = free_port()
    log = tmp_path_factory.mktemp("reference") / "log"
    with serving_process(wsgi_argv("gunicorn", port, APP), port, cli_env(SCRIPT_NAME=MOUNT), log):
        yield Served("gunicorn", port)


def seen(srv: Served, method: str, path: str, fields: tuple[str, ...]) -> dict[str, Any]:
    """What a client makes of the answer, less what may differ between servers (their
    ports, their own environ keys, the words of an error page)."""
    body = b"a line\nanother\n" if method == "POST" else b""
    answer = srv.ask(method, path, *fields, body=body)
    view: dict[str, Any] = {"status": f"{answer.status} {answer.reason}"}
    if answer.status >= 500:
        return view
    if path.startswith("/environ"):
        env = answer.json()
        view["environ"] = {k: v for k, v in env.items() if k in CGI}
        # Fields joined with "," or ", " are the same list (RFC 9110, 5.6.1).
        view["environ"].update(
            {k: re.sub(r",\s*", ",", v) for k, v in env.items() if k.startswith("HTTP_")}
        )
        return view
    view["body"] = answer.body
    if not path.startswith("/file"):  # a file's length: the server's to declare, or not
        view["length"] = answer.header("content-length")
    return view


@pytest.mark.parametrize(("method", "path", "fields"), SIDE_BY_SIDE)
def test_same_answers_as_gunicorn(srv, reference, method, path, fields):
    if srv.name == "gunicorn":
        pytest.skip("the reference itself")
    assert seen(srv, method, path, fields) == seen(reference, method, path, fields)
