"""cyhttp: a fast HTTP/1.1 server core for Python.

A protocol on httptools and uvloop, written once (``_protocol.py``) and run
compiled by Cython, or as plain Python (forced with ``CYHTTP_NO_EXTENSIONS=1``).
``implementation`` says which one is active.
"""

from typing import TYPE_CHECKING

from ._impl import implementation
from .config import Config
from .request import ClientDisconnected

if TYPE_CHECKING:
    from .request import Headers, Query, Request
    from .response import Response, StreamingResponse
else:  # the active core's classes: compiled when the Cython core is loaded
    from ._impl import Headers, Query, Response, StreamingResponse
    from ._impl import PublicRequest as Request  # either core's requests are instances
from .response import SwitchProtocols
from .server import Handler, Hook, Server, StartupFailed, run
from .websocket import WebSocket, WebSocketClosed, accept_websocket

__all__ = [
    "ClientDisconnected",
    "Config",
    "Handler",
    "Headers",
    "Hook",
    "Query",
    "Request",
    "Response",
    "Server",
    "StartupFailed",
    "StreamingResponse",
    "SwitchProtocols",
    "WebSocket",
    "WebSocketClosed",
    "accept_websocket",
    "implementation",
    "run",
]

__version__ = "0.1.0"
