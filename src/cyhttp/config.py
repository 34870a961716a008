"""Server settings, validated once so that bad configuration fails loudly at start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Config"]

LOOPS = ("auto", "uvloop", "asyncio")


@dataclass(frozen=True)
class Config:
    """Every tunable of a :class:`cyhttp.Server`, with its default.

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
