"""Server settings, validated once so that bad configuration fails loudly at start."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Optional

from ._interface import INTERFACES
from ._lifespan import LIFESPAN_MODES
from ._proxy import TrustedProxies

__all__ = ["Config"]

LOOPS = ("auto", "uvloop", "asyncio")


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Config:
    """Every tunable of a :class:`cyhttp.Server`, with its default.

    Sizes are in bytes, times in seconds. Timeouts are enforced by one sweep
    per server, so they fire up to a quarter of the shortest timeout (at most
    one second) late. Raises ``ValueError`` on construction for any value out
    of range. The CLI offers each field as ``--dashed-name``.
    """

    host: str = _setting("127.0.0.1", "address to bind")
    port: int = _setting(8000, "port to bind (0 picks a free one)")
    uds: Optional[str] = _setting(None, "serve on this Unix socket path instead of host and port")
    backlog: int = _setting(1024, "listen backlog")
    keepalive_timeout: float = _setting(5.0, "close a connection idle this long")
    shutdown_timeout: float = _setting(10.0, "graceful shutdown waits this long for requests")
    max_pipelined: int = _setting(64, "answers waiting on one connection before reading pauses")
    max_connections: int = _setting(10_000, "close connections accepted beyond this many")
    max_url_size: int = _setting(8 * 1024, "longest request target; longer gets 414")
    max_header_size: int = _setting(32 * 1024, "total header bytes; more gets 431")
    max_headers: int = _setting(100, "most header lines; more gets 431")
    max_body_size: int = _setting(1024 * 1024, "largest request body; larger gets 413")
    header_timeout: float = _setting(10.0, "a request head must arrive within this; else 408")
    body_timeout: float = _setting(30.0, "a body may stall this long between reads; else 408")
    write_timeout: float = _setting(30.0, "drop a client that does not read for this long")
    linger_timeout: float = _setting(2.0, "drain input this long after an error answer")
    implementation: Optional[str] = _setting(None, "'cython' or 'python' (default: active core)")
    reuse_port: bool = _setting(False, "set SO_REUSEPORT on the listening socket")
    access_log: bool = _setting(False, "log each answer's request line and status (cyhttp.access)")
    server_header: bool = _setting(True, "send 'Server: cyhttp' (unless a response sets Server)")
    interface: str = _setting("auto", "'auto', 'native' or 'asgi': how to call the app")
    lifespan: str = _setting("auto", "ASGI lifespan: 'auto', 'on' or 'off'")
    root_path: str = _setting("", "ASGI root_path: the path the app is mounted under")
    proxy_headers: bool = _setting(True, "ASGI: trust X-Forwarded-For/-Proto from allowed peers")
    forwarded_allow_ips: str = _setting("127.0.0.1", "peers trusted with X-Forwarded-*, or '*'")
    ws_max_size: int = _setting(1024 * 1024, "largest WebSocket message; larger closes with 1009")
    ws_max_queue: int = _setting(32, "unread WebSocket messages before reading pauses")
    ws_ping_interval: float = _setting(20.0, "ping an idle WebSocket this often (0: never)")
    ws_ping_timeout: float = _setting(20.0, "close a WebSocket whose pong is this late (1011)")
    ws_close_timeout: float = _setting(5.0, "drop a WebSocket this long after our close frame")
    ws_per_message_deflate: bool = _setting(False, "accept permessage-deflate (RFC 7692) offers")

    def __post_init__(self) -> None:
        host, port = self.host, self.port
        _check(isinstance(host, str) and bool(host), "host", "a host name or address", host)
        _check(_is_int(port) and 0 <= port <= 65535, "port", "an int in 0..65535", port)
        uds = self.uds
        _check(
            uds is None or (isinstance(uds, str) and bool(uds) and sys.platform != "win32"),
            "uds",
            "a socket path (Unix sockets are not served on Windows)",
            uds,
        )
        for name in (
            "backlog",
            "max_pipelined",
            "max_connections",
            "max_url_size",
            "max_header_size",
            "max_headers",
            "max_body_size",
            "ws_max_size",
            "ws_max_queue",
        ):
            value = getattr(self, name)
            _check(_is_int(value) and value >= 1, name, "an int >= 1", value)
        for name in (
            "keepalive_timeout",
            "header_timeout",
            "body_timeout",
            "write_timeout",
            "linger_timeout",
            "ws_ping_timeout",
            "ws_close_timeout",
        ):
            value = getattr(self, name)
            _check(_is_number(value) and value > 0, name, "a positive number of seconds", value)
        value = self.ws_ping_interval
        _check(_is_number(value) and value >= 0, "ws_ping_interval", "seconds >= 0", value)
        value = self.ws_per_message_deflate
        _check(type(value) is bool, "ws_per_message_deflate", "True or False", value)
        value = self.shutdown_timeout
        _check(_is_number(value) and value >= 0, "shutdown_timeout", "seconds >= 0", value)
        impl = self.implementation
        _check(impl in (None, "cython", "python"), "implementation", "'cython' or 'python'", impl)
        _check(type(self.reuse_port) is bool, "reuse_port", "True or False", self.reuse_port)
        _check(type(self.access_log) is bool, "access_log", "True or False", self.access_log)
        value = self.server_header
        _check(type(value) is bool, "server_header", "True or False", value)
        _check(
            type(self.proxy_headers) is bool, "proxy_headers", "True or False", self.proxy_headers
        )
        value = self.forwarded_allow_ips
        _check(isinstance(value, str), "forwarded_allow_ips", "a str", value)
        TrustedProxies(value)  # raises ValueError naming what is wrong
        value = self.interface
        _check(value in INTERFACES, "interface", "'auto', 'native' or 'asgi'", value)
        value = self.lifespan
        _check(value in LIFESPAN_MODES, "lifespan", "'auto', 'on' or 'off'", value)
        value = self.root_path
        _check(
            isinstance(value, str) and (not value or (value[0] == "/" and value[-1] != "/")),
            "root_path",
            "'' or a path such as '/api' (no trailing slash)",
            value,
        )


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_number(value: object) -> bool:
    return type(value) in (int, float)


def _check(ok: bool, name: str, expected: str, value: object) -> None:
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
