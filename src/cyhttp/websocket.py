"""WebSocket handshakes (RFC 6455 §4, RFC 7692 §5-7) for native handlers and the ASGI layer.

A handler accepts a WebSocket by returning ``accept_websocket(request, session)``:
the ``101`` answer, after which ``session(ws)`` runs with the connection (see
``WebSocket`` in ``_websocket.py``). A request that is no valid handshake gets the
answer RFC 6455 asks for instead (``400``, or ``426`` for another version).
"""

from __future__ import annotations

import abc
import base64
import hashlib
import re
from typing import Any, Awaitable, Callable, List, Optional, Tuple, Union

from . import _impl, _websocket
from ._wire import TOKEN_PATTERN, HeadersArg
from .errors import WebSocketClosed
from .response import Response, SwitchProtocols

__all__ = ["WebSocket", "WebSocketClosed", "accept_websocket", "subprotocols"]


class WebSocket(abc.ABC):  # noqa: B024 (a type to check against, with nothing abstract)
    __doc__ = _websocket.WebSocket.__doc__
    __slots__ = ()


# Either core's connections are instances: a server may run the pure core while the
# compiled one is loaded.
WebSocket.register(_websocket.WebSocket)
if _impl.HttpProtocolC is not None:
    WebSocket.register(_impl.websocket_module("cython").WebSocket)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
KEY = re.compile(rb"[A-Za-z0-9+/]{22}==")  # 16 bytes in base64 (§4.2.1)
TOKEN = re.compile(TOKEN_PATTERN)

Session = Callable[[Any], Awaitable[None]]


def _tokens(request: Any, name: str) -> List[str]:
    """The comma-separated tokens of every *name* field, lowercased."""
    return [
        item.strip().lower() for value in request.headers.getall(name) for item in value.split(",")
    ]


def asks_for_websocket(request: Any) -> bool:
    """Whether *request* asks to switch to the WebSocket protocol."""
    return "websocket" in _tokens(request, "upgrade") and "upgrade" in _tokens(
        request, "connection"
    )


def subprotocols(request: Any) -> List[str]:
    """The subprotocols a handshake offers (``Sec-WebSocket-Protocol``), in its order."""
    return [
        item.strip()
        for value in request.headers.getall("sec-websocket-protocol")
        for item in value.split(",")
        if item.strip()
    ]


def check_handshake(request: Any) -> Union[str, Response]:
    """The ``Sec-WebSocket-Accept`` value for a valid handshake, else the answer refusing it."""
    if request.method != "GET" or request.http_version != "1.1" or not asks_for_websocket(request):
        return _refusal(400, "not a WebSocket handshake")
    if request.headers.getall("sec-websocket-version") != ["13"]:
        return Response(
            b"WebSocket version 13 only\n",
            426,
            {"Sec-WebSocket-Version": "13"},
            content_type="text/plain; charset=utf-8",
        )
    keys = request.headers.getall("sec-websocket-key")
    key = keys[0].strip().encode("latin-1") if len(keys) == 1 else b""
    if not KEY.fullmatch(key):
        return _refusal(400, "missing or malformed Sec-WebSocket-Key")
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode("ascii")


def _refusal(status: int, why: str) -> Response:
    return Response(f"{why}\n".encode(), status, content_type="text/plain; charset=utf-8")


def negotiate_deflate(request: Any) -> Optional[Tuple[Tuple[bool, bool, int, int], str]]:
    """The first ``permessage-deflate`` offer that can be accepted: ``Deflate``'s arguments,
    and the answer's field.

    An offer with an unknown, repeated or out-of-range parameter is declined (RFC 7692
    §5.1); without any acceptable one, nothing is compressed.
    """
    for value in request.headers.getall("sec-websocket-extensions"):
        for offer in value.split(","):
            name, *params = (part.strip() for part in offer.split(";"))
            if name.lower() != "permessage-deflate":
                continue
            accepted = _accept_deflate(params)
            if accepted is not None:
                return accepted
    return None


def _accept_deflate(params: List[str]) -> Optional[Tuple[Tuple[bool, bool, int, int], str]]:
    seen = {}
    for param in params:
        key, eq, raw = param.partition("=")
        key = key.strip().lower()
        raw = raw.strip().strip('"')
        if key in seen or key not in (
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
        ):
            return None
        if key.endswith("_takeover"):
            if eq:
                return None
            seen[key] = 0
            continue
        if not eq and key == "client_max_window_bits":
            seen[key] = 15  # the client lets the server choose
            continue
        if not (raw.isdigit() and raw[0] != "0" and 8 <= int(raw) <= 15):
            return None
        seen[key] = int(raw)
    # zlib cannot deflate with an 8-bit window: a 9-bit one is the least it offers.
    server_bits = min(seen.get("server_max_window_bits", 15), DEFAULT_SERVER_BITS)
    if server_bits == 8:
        return None
    client_bits = seen.get("client_max_window_bits", 15)
    answer = ["permessage-deflate"]
    if "server_no_context_takeover" in seen:
        answer.append("server_no_context_takeover")
    if "client_no_context_takeover" in seen:
        answer.append("client_no_context_takeover")
    if "server_max_window_bits" in seen:
        answer.append(f"server_max_window_bits={server_bits}")
    if "client_max_window_bits" in seen:
        answer.append(f"client_max_window_bits={client_bits}")
    takeover = ("server_no_context_takeover" not in seen, "client_no_context_takeover" not in seen)
    return (*takeover, server_bits, client_bits), "; ".join(answer)


# The window the server compresses with unless the client asks for less: a
# decompressor with the usual 32 KiB window reads it all the same, and the
# compressor's state is 8 KiB of window instead of 64 KiB.
DEFAULT_SERVER_BITS = 12


def switch(
    request: Any,
    accept: str,
    subprotocol: Optional[str],
    headers: HeadersArg,
    session: Optional[Session],
) -> Tuple[Any, SwitchProtocols]:
    """The connection for an accepted handshake, and the ``101`` answer that hands it over."""
    server = _impl.request_connection(request).server
    offered = subprotocols(request)
    if subprotocol is not None and subprotocol not in offered:
        raise ValueError(f"subprotocol {subprotocol!r} was not offered (offered: {offered})")
    module = _impl.websocket_module(server.implementation)
    fields: List[Tuple[Any, Any]] = [("Sec-WebSocket-Accept", accept)]
    if subprotocol is not None:
        fields.append(("Sec-WebSocket-Protocol", subprotocol))
    deflate = None
    negotiated = negotiate_deflate(request) if server.config.ws_per_message_deflate else None
    if negotiated is not None:
        deflate = module.Deflate(*negotiated[0])
        fields.append(("Sec-WebSocket-Extensions", negotiated[1]))
    if headers:
        fields.extend(headers.items() if hasattr(headers, "items") else headers)
    ws = module.WebSocket(server, request, subprotocol, deflate, session)
    return ws, SwitchProtocols(lambda: ws, "websocket", fields)


def accept_websocket(
    request: Any,
    session: Session,
    *,
    subprotocol: Optional[str] = None,
    headers: HeadersArg = None,
) -> Union[SwitchProtocols, Response]:
    """Accept *request*'s WebSocket handshake: return this from the handler.

    Once the ``101`` has left, ``await session(ws)`` runs with the connection;
    when it returns the WebSocket is closed with 1000 (1011 if it raised).
    *subprotocol* must be one the client offered (see :func:`subprotocols`);
    *headers* go into the ``101`` answer. A request that is no valid handshake
    gets ``400`` instead, one for another protocol version ``426`` with
    ``Sec-WebSocket-Version: 13``. To refuse, a handler returns any response.
    """
    if not callable(session):
        raise TypeError(f"session must be an async function, not {type(session).__name__}")
    accept = check_handshake(request)
    if isinstance(accept, Response):
        return accept
    return switch(request, accept, subprotocol, headers, session)[1]
