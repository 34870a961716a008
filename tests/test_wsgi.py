"""WSGI applications (PEP 3333) on both cores, through real sockets on 127.0.0.1.

Every application is wrapped in ``wsgiref.validate.validator``, so the standard
library's checker watches each exchange from the application's side (it raises
into the server, which answers 500, on anything it finds wrong); the tests read
what a client sees on the wire. The exhaustive PEP 3333 matrix, the frameworks and
the comparison with gunicorn live in test_wsgi_conformance.py and
test_wsgi_frameworks.py; these are the core paths of the adapter and its pool.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any, Callable, Iterable, List
from wsgiref.validate import validator

import pytest

import cyhttp
from cyhttp._interface import detect

from .support import read_until_closed, split_responses

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
    assert env["SERVER_NAME"] == "x" and env["SERVER_PORT"] == "80"
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


def test_a_trusted_proxy_sets_the_scheme_and_the_client(live, impl):
    fields = b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n"
    with serve(live, echo_environ) as srv:  # 127.0.0.1 is trusted by default
        env = environ_of(srv, get("/", fields))
    assert env["wsgi.url_scheme"] == "https" and env["REMOTE_ADDR"] == "203.0.113.7"
    assert env["SERVER_PORT"] == "443"
    with serve(live, echo_environ, forwarded_allow_ips="10.0.0.1") as srv:
        env = environ_of(srv, get("/", fields))
    assert env["wsgi.url_scheme"] == "http" and env["REMOTE_ADDR"] == "127.0.0.1"


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


def test_shutdown_joins_the_pool_threads(live, impl):
    before = set(threading.enumerate())
    with serve(live, hello, threads=3) as srv:
        for _ in range(3):
            assert body_of(ask(srv, get())) == b"hello"
        pool = srv.server._wsgi.pool
        assert pool.threads
    assert not any(thread.is_alive() for thread in pool.threads)
    assert not [t for t in threading.enumerate() if t not in before and t.name.startswith("cyhttp")]


def test_the_cli_serves_a_wsgi_application(impl, tmp_path):
    from .support import cli_env, free_port, start_cli, stop_cli

    (tmp_path / "wsgi_app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', '2')])\n"
        "    return [b'ok']\n"
    )
    port = free_port()
    env = cli_env(CYHTTP_NO_EXTENSIONS="1" if impl == "python" else "0")
    proc = start_cli(
        "--interface", "wsgi", "--threads", "2", "--port", str(port), "--app-dir", str(tmp_path),
        "wsgi_app:app", env=env,
    )  # fmt: skip
    try:
        answer = b""
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                    sock.sendall(get())
                    answer = read_until_closed(sock)
                break
            except ConnectionRefusedError:
                threading.Event().wait(0.05)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and body_of(answer) == b"ok"
    finally:
        code, _ = stop_cli(proc)
    assert code == 0
