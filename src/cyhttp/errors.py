"""The exceptions handlers see when a client goes away.

Defined apart from ``request.py``, which the build compiles once more as
``cyhttp._request``: one class each, whichever core raises it.
"""

from __future__ import annotations

__all__ = ["ClientDisconnected", "WebSocketClosed"]


class ClientDisconnected(ConnectionError):
    """The client went away (or sent a malformed body) before the body was complete."""


class WebSocketClosed(ClientDisconnected):
    """The WebSocket is closed: raised by ``receive`` and ``send``.

    ``code`` is the close code (1006 when the connection dropped without a close
    frame), ``reason`` the close reason.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason
