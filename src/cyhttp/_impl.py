"""The one place that picks the compiled or the pure-Python core.

``CYHTTP_NO_EXTENSIONS=1`` forces the pure-Python core (``_protocol.py`` as is);
otherwise the Cython core (the same file compiled, ``_protocol_c``) is used when it
was built. Both stay reachable by name so tests and benchmarks can run them side by
side; the pure one is only imported when asked for.
"""

from __future__ import annotations

import abc
import asyncio
import os
from typing import Any, Optional, Tuple, Type

from . import request as _pure_request
from . import response

__all__ = [
    "AVAILABLE",
    "Headers",
    "PublicRequest",
    "Query",
    "Request",
    "Response",
    "StreamingResponse",
    "asgi_class",
    "implementation",
    "protocol_class",
    "websocket_module",
    "wsgi_class",
]

NO_EXTENSIONS = os.environ.get("CYHTTP_NO_EXTENSIONS", "") not in ("", "0")

HttpProtocolC: Optional[Type[asyncio.BufferedProtocol]] = None
Request: Any
Headers: Any
Query: Any
Response: Any
StreamingResponse: Any
if not NO_EXTENSIONS:
    try:
        from . import _fields, _response
        from ._protocol_c import HttpProtocol as HttpProtocolC
        from ._request import Request

        Headers, Query = _fields.Headers, _fields.Query
        Response, StreamingResponse = _response.Response, _response.StreamingResponse
        response.register(Response, StreamingResponse)  # both cores serve both kinds
    except ImportError:  # not built (e.g. an editable checkout without a compiler)
        HttpProtocolC = None
if HttpProtocolC is None:
    from .request import Headers, Query, Request
    from .response import Response, StreamingResponse


# What a handler is given, whichever core serves it: a server may run the pure core while
# the compiled one is loaded (implementation="python"), so cyhttp.Request is the type
# both kinds of request are instances of.
class PublicRequest(abc.ABC):  # noqa: B024 (a type to check against, with nothing abstract)
    __doc__ = _pure_request.Request.__doc__
    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("requests are made by the server; handlers receive them")


PublicRequest.register(_pure_request.Request)
PublicRequest.register(Request)  # the compiled class, or the pure one again
PublicRequest.__name__ = PublicRequest.__qualname__ = "Request"
PublicRequest.__module__ = "cyhttp"

implementation = "cython" if HttpProtocolC is not None else "python"
"""The active core: ``"cython"`` or ``"python"``."""

AVAILABLE: Tuple[str, ...] = ("cython", "python") if HttpProtocolC is not None else ("python",)


def asgi_class(name: str) -> Any:
    """The ASGI layer (``Asgi``) that serves ASGI applications on core *name*."""
    if name == "cython":
        from ._asgi_c import Asgi as AsgiC

        return AsgiC
    from ._asgi import Asgi

    return Asgi


def wsgi_class(name: str) -> Any:
    """The WSGI layer (``Wsgi``) that serves WSGI applications on core *name*."""
    if name == "cython":
        from ._wsgi_c import Wsgi as WsgiC

        return WsgiC
    from ._wsgi import Wsgi

    return Wsgi


def websocket_module(name: str) -> Any:
    """The WebSocket connection module of core *name* (``WebSocket``, ``Deflate``)."""
    if name == "cython":
        from . import _websocket_c

        return _websocket_c
    from . import _websocket

    return _websocket


def protocol_class(name: Optional[str] = None) -> Type[asyncio.BufferedProtocol]:
    """The protocol class of core *name* (``"cython"`` or ``"python"``; None: the active one)."""
    if name is None:
        name = implementation
    if name == "python":
        from ._protocol import HttpProtocol

        return HttpProtocol
    if name == "cython":
        if HttpProtocolC is None:
            reason = "disabled by CYHTTP_NO_EXTENSIONS" if NO_EXTENSIONS else "not built"
            raise ValueError(f"the Cython core is {reason}")
        return HttpProtocolC
    raise ValueError(f"unknown implementation {name!r}; use 'cython' or 'python'")
