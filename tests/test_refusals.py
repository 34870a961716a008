"""What a refused request leaves behind, through a real socket on both cores: one line
on ``cyhttp.error`` with the peer and the rule that fired (a WARNING for the first
from a peer address in a minute, DEBUG for the rest), and with ``debug=True`` the
rule in the answer's body too."""

from __future__ import annotations

import logging
import socket
from types import SimpleNamespace
from typing import Any

import pytest

import cyhttp
from cyhttp import _connection_log

from .support import read_until_closed

BAD_TARGET = b"GET ftp://x/a HTTP/1.1\r\nHost: a\r\n\r\n"
TARGET_RULE = "absolute-form target with a scheme other than http or https"


async def app(request: cyhttp.Request) -> cyhttp.Response:
    return cyhttp.Response(b"ok")


def _refuse(srv: Any, data: bytes = BAD_TARGET, source: str = "127.0.0.1") -> tuple[bytes, int]:
    """Send *data* from *source*; the answer and the client's port."""
    with socket.create_connection(("127.0.0.1", srv.port), 10, (source, 0)) as sock:
        sock.sendall(data)
        return read_until_closed(sock), sock.getsockname()[1]


def _records(caplog: Any) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "cyhttp.error"]


# Requests refused by each kind of rule: the request, the server's settings, what is logged.
CASES = {
    "target": (BAD_TARGET, {}, f"400, {TARGET_RULE}"),
    "no-host": (b"GET / HTTP/1.1\r\n\r\n", {}, "400, HTTP/1.1 request without a Host field"),
    "content-type": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n",
        {},
        "400, Content-Type fields with different values",
    ),
    "llhttp": (b"GET / HTTP/1.1\r\nX: \x01\r\n\r\n", {}, "400, llhttp: Invalid header value char"),
    "414": (
        b"GET /" + b"a" * 99 + b" HTTP/1.1\r\n",
        {"max_url_size": 64},
        "414, request target longer than max_url_size",
    ),
    "501": (
        b"SOURCE / HTTP/1.1\r\nHost: a\r\n\r\n",
        {},
        "501, method outside the HTTP method registry",
    ),
    "connect": (
        b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
        {},
        "501, CONNECT, and cyhttp is no proxy",
    ),
}


@pytest.mark.parametrize(("data", "options", "rule"), CASES.values(), ids=CASES.keys())
def test_a_refusal_is_logged_with_peer_and_rule(live, caplog, data, options, rule):
    with caplog.at_level(logging.DEBUG, logger="cyhttp.error"), live(app, **options) as srv:
        answer, port = _refuse(srv, data)
    assert answer.startswith(b"HTTP/1.1 " + rule[:3].encode())
    logged = f"refused a request from 127.0.0.1:{port}: {rule}"
    assert _records(caplog) == [(logging.WARNING, logged)]


def test_one_warning_per_peer_a_minute(live, caplog, monkeypatch):
    """A flood of bad requests from one peer: one WARNING, the rest at DEBUG, until the
    minute is over; each other peer has its own minute."""
    now = [1000.0]
    monkeypatch.setattr(_connection_log, "time", SimpleNamespace(monotonic=lambda: now[0]))
    with caplog.at_level(logging.DEBUG, logger="cyhttp.error"), live(app) as srv:
        ports = [_refuse(srv)[1] for _ in range(3)]
        ports.append(_refuse(srv, source="127.0.0.2")[1])
        now[0] += 59.9
        ports.append(_refuse(srv)[1])
        now[0] += 0.1
        ports.append(_refuse(srv)[1])
    peers = ["127.0.0.1"] * 3 + ["127.0.0.2"] + ["127.0.0.1"] * 2
    levels = [logging.WARNING, logging.DEBUG, logging.DEBUG, logging.WARNING, logging.DEBUG]
    assert _records(caplog) == [
        (level, f"refused a request from {peer}:{port}: 400, {TARGET_RULE}")
        for level, peer, port in zip([*levels, logging.WARNING], peers, ports, strict=True)
    ]


def test_warned_peers_are_bounded(live, caplog, monkeypatch):
    """While as many peers as are remembered were warned about this minute, a new peer's
    refusals are logged at DEBUG only: many peers cannot fill the log or the memory."""
    monkeypatch.setattr(_connection_log.Refusals, "PEERS", 1)
    with caplog.at_level(logging.DEBUG, logger="cyhttp.error"), live(app) as srv:
        _refuse(srv)
        _refuse(srv, source="127.0.0.2")
        assert list(srv.server.refusals.warned) == ["127.0.0.1"]
    assert [level for level, _ in _records(caplog)] == [logging.WARNING, logging.DEBUG]


def test_each_server_warns_on_its_own(live, caplog):
    with caplog.at_level(logging.WARNING, logger="cyhttp.error"):
        for _ in range(2):
            with live(app) as srv:
                _refuse(srv)
    assert [level for level, _ in _records(caplog)] == [logging.WARNING] * 2


@pytest.mark.parametrize("debug", [False, True])
def test_the_rule_is_in_the_answer_only_with_debug(live, debug):
    with live(app, debug=debug) as srv:
        answer, _ = _refuse(srv)
    body = answer.partition(b"\r\n\r\n")[2]
    assert body == (f"Bad Request: {TARGET_RULE}\n" if debug else "Bad Request\n").encode()
    assert f"Content-Length: {len(body)}\r\n".encode() in answer


def test_debug_is_checked():
    with pytest.raises(ValueError, match="debug must be True or False"):
        cyhttp.Config(debug=1)  # type: ignore[arg-type]
