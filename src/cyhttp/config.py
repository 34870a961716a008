"""Server settings, validated once so that bad configuration fails loudly at start."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Tuple

from ._interface import INTERFACES
from ._lifespan import LIFESPAN_MODES
from ._proxy import TrustedProxies
from ._wire import FLAG_CLOSE, encode_headers

__all__ = ["Config"]

LOOPS = ("auto", "uvloop", "asyncio")

# max_body_size when none is set: a native handler's body() holds the whole body in
# memory, so it keeps a bound; an ASGI or WSGI application reads the body as a stream
# and decides for itself, as under uvicorn, hypercorn, gunicorn and granian.
NATIVE_MAX_BODY = 1024 * 1024
NO_BODY_LIMIT = sys.maxsize
# The WSGI pool's size when none is set (docs/wsgi.md says how it was measured).
THREADS = 8


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
    max_body_size: Optional[int] = _setting(
        None, "largest request body; larger gets 413 (default: 1 MiB native, none for ASGI, WSGI)"
    )
    header_timeout: float = _setting(10.0, "a request head must arrive within this; else 408")
    body_timeout: float = _setting(30.0, "a body may stall this long between reads; else 408")
    write_timeout: float = _setting(30.0, "drop a client that does not read for this long")
    linger_timeout: float = _setting(2.0, "drain input this long after an error answer")
    implementation: Optional[str] = _setting(None, "'cython' or 'python' (default: active core)")
    reuse_port: bool = _setting(False, "set SO_REUSEPORT on the listening socket")
    access_log: bool = _setting(False, "log each answer's request line and status (cyhttp.access)")
    access_log_format: Optional[str] = _setting(
        None, "the access log line in gunicorn's atoms, e.g. '%(h)s %(r)s %(s)s %(b)s %(D)s'"
    )
    server_header: bool = _setting(True, "send 'Server: cyhttp' (unless a response sets Server)")
    debug: bool = _setting(False, "say in the server's error answers which rule refused a request")
    date_header: bool = _setting(True, "send 'Date' (unless a response sets Date)")
    headers: Tuple[Tuple[str, str], ...] = _setting(
        (), "(name, value) fields added to every response (before the response's own)"
    )
    limit_concurrency: Optional[int] = _setting(
        None, "requests in flight beyond which new ones get 503 with Retry-After"
    )
    limit_max_requests: Optional[int] = _setting(
        None, "after this many requests, shut down gracefully and exit"
    )
    limit_max_requests_jitter: int = _setting(
        0, "add a random 0..this to limit_max_requests, so processes do not all stop at once"
    )
    reset_contextvars: bool = _setting(
        False, "run each request in an empty contextvars.Context, not a copy of the server's"
    )
    interface: str = _setting("auto", "'auto', 'native', 'asgi' or 'wsgi': how to call the app")
    threads: int = _setting(THREADS, "WSGI: the threads applications run on (per process)")
    lifespan: str = _setting("auto", "ASGI lifespan: 'auto', 'on' or 'off'")
    root_path: str = _setting("", "ASGI root_path: the path the app is mounted under")
    proxy_headers: bool = _setting(True, "ASGI: trust X-Forwarded-For/-Proto from allowed peers")
    forwarded_allow_ips: str = _setting("127.0.0.1", "peers trusted with X-Forwarded-*, or '*'")
    ssl_certfile: Optional[str] = _setting(None, "TLS: the certificate chain (PEM); enables HTTPS")
    ssl_keyfile: Optional[str] = _setting(
        None, "TLS: the private key (PEM), if not in the certfile"
    )
    ssl_keyfile_password: Optional[str] = _setting(None, "TLS: the private key's password")
    ssl_ca_certs: Optional[str] = _setting(None, "TLS: CA certificates to verify clients with")
    ssl_cert_reqs: int = _setting(0, "TLS: client certificates: 0 none, 1 optional, 2 required")
    ssl_ciphers: Optional[str] = _setting(None, "TLS: OpenSSL cipher list (default: OpenSSL's)")
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
            "ws_max_size",
            "ws_max_queue",
            "threads",
        ):
            value = getattr(self, name)
            _check(_is_int(value) and value >= 1, name, "an int >= 1", value)
        value = self.max_body_size
        _check(
            value is None or (_is_int(value) and value >= 1), "max_body_size", "an int >= 1", value
        )
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
        for name in ("server_header", "date_header", "reset_contextvars"):
            value = getattr(self, name)
            _check(type(value) is bool, name, "True or False", value)
        value = self.access_log_format
        _check(value is None or isinstance(value, str), "access_log_format", "a str", value)
        if value is not None:
            from ._access import check_format  # the access log imports this module

            check_format(value)
        for name in ("limit_concurrency", "limit_max_requests"):
            value = getattr(self, name)
            _check(
                value is None or (_is_int(value) and value >= 1), name, "None or an int >= 1", value
            )
        value = self.limit_max_requests_jitter
        _check(_is_int(value) and value >= 0, "limit_max_requests_jitter", "an int >= 0", value)
        # uvicorn takes a list of pairs: kept as a tuple, so the settings stay immutable.
        object.__setattr__(self, "headers", _pairs(self.headers))
        _check(type(self.debug) is bool, "debug", "True or False", self.debug)
        _check(
            type(self.proxy_headers) is bool, "proxy_headers", "True or False", self.proxy_headers
        )
        value = self.forwarded_allow_ips
        _check(isinstance(value, str), "forwarded_allow_ips", "a str", value)
        TrustedProxies(value)  # raises ValueError naming what is wrong
        value = self.ssl_certfile
        _check(value is None or isinstance(value, str), "ssl_certfile", "a path", value)
        value = self.ssl_cert_reqs
        _check(value in (0, 1, 2), "ssl_cert_reqs", "0, 1 or 2", value)
        _check(
            value == 0 or self.ssl_certfile is not None,
            "ssl_cert_reqs",
            "given with ssl_certfile (TLS is off without it)",
            value,
        )
        for name in ("ssl_keyfile", "ssl_keyfile_password", "ssl_ca_certs", "ssl_ciphers"):
            value = getattr(self, name)
            _check(value is None or isinstance(value, str), name, "a str", value)
            _check(
                value is None or self.ssl_certfile is not None,
                name,
                "given with ssl_certfile (TLS is off without it)",
                value,
            )
        value = self.interface
        _check(value in INTERFACES, "interface", "'auto', 'native', 'asgi' or 'wsgi'", value)
        value = self.lifespan
        _check(value in LIFESPAN_MODES, "lifespan", "'auto', 'on' or 'off'", value)
        value = self.root_path
        _check(
            isinstance(value, str) and (not value or (value[0] == "/" and value[-1] != "/")),
            "root_path",
            "'' or a path such as '/api' (no trailing slash)",
            value,
        )


def body_limit(config: Config, interface: str) -> Config:
    """*config* with ``max_body_size`` set for *interface* when it was left unset."""
    if config.max_body_size is not None:
        return config
    limit = NATIVE_MAX_BODY if interface == "native" else NO_BODY_LIMIT
    return replace(config, max_body_size=limit)


def _pairs(headers: Any) -> Tuple[Tuple[str, str], ...]:
    expected = "(name, value) pairs of str"
    try:
        pairs = tuple((name, value) for name, value in headers)
    except (TypeError, ValueError):
        raise ValueError(f"headers must be {expected}, got {headers!r}") from None
    for pair in pairs:
        _check(all(isinstance(part, str) for part in pair), "headers", expected, headers)
    _, flags, declared = encode_headers(pairs, None)  # raises ValueError naming what is wrong
    _check(
        not flags & FLAG_CLOSE and declared < 0,
        "headers",
        "fields other than Connection and Content-Length",
        headers,
    )
    return pairs


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_number(value: object) -> bool:
    return type(value) in (int, float)


def _check(ok: bool, name: str, expected: str, value: object) -> None:
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
