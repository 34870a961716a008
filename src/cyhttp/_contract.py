"""The contract between a core's connection and the code it shares with the other core.

``request.py`` (the body readers) and ``_streaming.py`` (streaming answers) call
back into whichever connection made the request; this is all they may use. It
imports nothing of cyhttp, so that neither side depends on the other, even for
type checking.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Protocol, Tuple

__all__ = ["Connection"]


class Connection(Protocol):
    """What a core's connection offers to requests and to the shared slow paths."""

    client: Optional[Tuple[str, int]]
    scheme: str  # "https" over TLS
    server: Any  # the Server that accepted it (its config, its core)

    def _send_continue(self, request: Any) -> None:
        """Owe or send ``100 Continue`` for *request*, whose handler wants its body."""

    def _resume_body(self) -> None:
        """The handler has read enough of the body: reading may go on."""

    def _send(self, data: bytes) -> None:
        """Write *data* (a streaming answer's next piece) after everything before it."""

    def _write_room(self) -> Optional[asyncio.Future[None]]:
        """None when the transport takes more; else a future done when it does."""

    def _sendfile_begin(self) -> Optional[Tuple[int, float]]:
        """Prepare to write a file to the socket directly: everything buffered goes to the
        transport, whose flow control now waits for it to be empty (``_write_room``).
        The socket's descriptor and the write timeout; None without a socket."""

    def _sendfile_end(self) -> None:
        """The file is sent (or failed): the transport's flow control is as before."""
