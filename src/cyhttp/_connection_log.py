"""What ``cyhttp.error`` says about connections rather than handlers: the requests the
server refuses (``Refusals``), and idle connections closed with input never read."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Optional, Tuple

log = logging.getLogger("cyhttp.error")


def idle_expired(transport: Any, paused: int) -> None:
    """Log at DEBUG an idle connection closed with input it never read.

    A connection the server stopped reading, and never resumed, looks idle to the
    sweep: the client's next request waits in the socket until this close. Nothing
    else would tell such a stall from a client that simply went quiet.
    """
    if not log.isEnabledFor(logging.DEBUG):
        return
    unread = _unread_bytes(transport)
    if unread or paused:
        log.debug(
            "closing idle connection from %s with %d bytes unread in the socket"
            " (reading paused for reasons 0x%x)",
            transport.get_extra_info("peername"),
            unread,
            paused,
        )


def _unread_bytes(transport: Any) -> int:
    """Bytes waiting in the connection's socket, where the platform can tell."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        import fcntl
        import termios

        count = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (ImportError, OSError, ValueError):
        return 0  # not a POSIX socket (Windows), or it is closing
    return int.from_bytes(count, sys.byteorder, signed=True)


def _peer(client: Optional[Tuple[str, int]]) -> str:
    return f"{client[0]}:{client[1]}" if client else "-"


class Refusals:
    """Logs the requests a server refuses, on ``cyhttp.error``, once each.

    Each refusal gives one line with the peer, the status and the rule that fired: a
    WARNING for the first from a peer address in a minute, DEBUG for the rest, so that
    a flood of bad requests cannot fill the log. At most ``PEERS`` addresses are
    remembered; while that many were warned about within the minute, other peers'
    refusals are logged at DEBUG only.
    """

    WINDOW = 60.0
    PEERS = 1024

    def __init__(self) -> None:
        # Peer address -> when it was warned about; in that order, oldest first.
        self.warned: dict[str, float] = {}

    def report(self, client: Optional[Tuple[str, int]], status: int, reason: str) -> None:
        """Log that the request from *client* was refused with *status* for *reason*."""
        warned = self.warned
        now = time.monotonic()
        while warned:
            oldest = next(iter(warned))
            if now - warned[oldest] < self.WINDOW:
                break
            del warned[oldest]
        address = client[0] if client else "-"
        level = logging.DEBUG
        if address not in warned and len(warned) < self.PEERS:
            warned[address] = now
            level = logging.WARNING
        log.log(level, "refused a request from %s: %d, %s", _peer(client), status, reason)
