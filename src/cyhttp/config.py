"""Server settings, validated once so that bad configuration fails loudly at start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Config"]

LOOPS = ("auto", "uvloop", "asyncio")


@dataclass(frozen=True)
class Config:
    """Every tunable of a :class:`cyhttp.Server`, with its default.

    Sizes are in bytes, times in seconds. Timeouts are enforced by one sweep
    per server, so they fire up to a quarter of the shortest timeout (at most
    one second) late.

    Raises ``ValueError`` on construction for any value out of range.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    backlog: int = 1024
    keepalive_timeout: float = 5.0
    """Seconds an idle keep-alive connection is kept open."""
    shutdown_timeout: float = 10.0
    """Seconds a graceful shutdown waits for in-flight requests."""
    max_pipelined: int = 64
    """Requests waiting for their answer on one connection before reading pauses."""
    max_connections: int = 10_000
    """Open connections beyond this are closed as soon as they are accepted."""
    max_url_size: int = 8 * 1024
    """Longest request target in bytes; longer gets 414."""
    max_header_size: int = 32 * 1024
    """Total bytes of header lines; more gets 431."""
    max_headers: int = 100
    """Most header lines in a request; more gets 431."""
    max_body_size: int = 1024 * 1024
    """Largest request body in bytes (Content-Length or chunked); larger gets 413."""
    header_timeout: float = 10.0
    """Seconds a client may take to send a request's head (slowloris guard); then 408."""
    body_timeout: float = 30.0
    """Seconds a request body may stall between two reads; then 408."""
    write_timeout: float = 30.0
    """Seconds a client may leave the server unable to write (not reading); then it is dropped."""
    linger_timeout: float = 2.0
    """After an error answer, seconds to keep reading (and discarding) so the client sees it."""
    implementation: Optional[str] = None
    """``"cython"`` or ``"python"``; None picks the active core (see ``cyhttp.implementation``)."""
    reuse_port: bool = False

    def __post_init__(self) -> None:
        _check(
            isinstance(self.host, str) and bool(self.host),
            "host",
            self.host,
            "a host name or address",
        )
        _check(
            _is_int(self.port) and 0 <= self.port <= 65535, "port", self.port, "an int in 0..65535"
        )
        _check(
            _is_int(self.backlog) and self.backlog > 0, "backlog", self.backlog, "a positive int"
        )
        _check(
            _is_seconds(self.keepalive_timeout),
            "keepalive_timeout",
            self.keepalive_timeout,
            "a positive number of seconds",
        )
        _check(
            _is_seconds(self.shutdown_timeout, zero=True),
            "shutdown_timeout",
            self.shutdown_timeout,
            "a number of seconds >= 0",
        )
        _check(
            _is_int(self.max_pipelined) and self.max_pipelined >= 1,
            "max_pipelined",
            self.max_pipelined,
            "an int >= 1",
        )
        for name in (
            "max_connections",
            "max_url_size",
            "max_header_size",
            "max_headers",
            "max_body_size",
        ):
            value = getattr(self, name)
            _check(_is_int(value) and value >= 1, name, value, "an int >= 1")
        for name in ("header_timeout", "body_timeout", "write_timeout", "linger_timeout"):
            value = getattr(self, name)
            _check(_is_seconds(value), name, value, "a positive number of seconds")
        _check(
            self.implementation in (None, "cython", "python"),
            "implementation",
            self.implementation,
            "'cython', 'python' or None",
        )


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_seconds(value: object, zero: bool = False) -> bool:
    return type(value) in (int, float) and (value >= 0 if zero else value > 0)  # type: ignore[operator]


def _check(ok: bool, name: str, value: object, expected: str) -> None:
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
