"""The ASGI ``websocket`` scope (ASGI WebSocket spec 2.4) over cyhttp's WebSocket connections.

``Asgi`` hands a request that asks for ``Upgrade: websocket`` to :func:`serve`,
which runs the application in a Task of its own and answers the core with what
the application decides: ``websocket.accept`` becomes the ``101`` (the handshake
and permessage-deflate are the server's, see ``websocket.py``), ``websocket.close``
before accepting a ``403``, and the ``websocket.http.response`` extension any HTTP
answer. After the ``101`` the application's ``receive`` and ``send`` are the
connection's (``_websocket.WebSocket``), and its Task is the connection's: the
server's shutdown closes with 1001 and waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional

from .request import ClientDisconnected
from .response import Response
from .websocket import WebSocketClosed, asks_for_websocket, check_handshake, subprotocols, switch

log = logging.getLogger("cyhttp.error")

DENIAL = "websocket.http.response"
FORBIDDEN = Response(b"", 403)
INTERNAL_ERROR = Response(b"Internal Server Error\n", 500, content_type="text/plain; charset=utf-8")

# What the application has done.
CONNECTING = 0  # websocket.connect not received yet
HANDSHAKE = 1  # connect received, no decision yet
ACCEPTED = 2
DENYING = 3  # websocket.http.response.start sent
DONE = 4  # closed, denied, or the client is gone


def asked(req: Any) -> bool:
    """Whether *req* asks for a WebSocket (the ASGI layer's hook, for upgrades only)."""
    return asks_for_websocket(req)


def scope(asgi: Any, req: Any) -> Dict[str, Any]:
    """The ``websocket`` scope: the HTTP scope of *req*, as the spec changes it."""
    result: Dict[str, Any] = asgi.scope(req)
    del result["method"]
    result["type"] = "websocket"
    result["scheme"] = "wss" if result["scheme"] == "https" else "ws"
    result["subprotocols"] = subprotocols(req)
    result["extensions"] = {DENIAL: {}}
    return result


async def serve(asgi: Any, req: Any) -> Any:
    """Run the application for a WebSocket request: the answer its decision makes."""
    session = _Session(req)
    loop = asgi.loop or asyncio.get_running_loop()
    try:
        coro = asgi.app(scope(asgi, req), session.receive, session.send)
    except Exception as exc:
        log.error("ASGI application failed for %r", req.raw_path, exc_info=exc)
        return INTERNAL_ERROR
    task = loop.create_task(coro)
    asgi.running.add(task)
    task.add_done_callback(asgi.running.discard)
    task.add_done_callback(session.finished)
    return await session.decided


class _Session:
    """One WebSocket request's exchange with the application."""

    def __init__(self, req: Any) -> None:
        self.req = req
        self.state = CONNECTING
        self.ws: Any = None
        self.decided: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.denial: Optional[Dict[str, Any]] = None
        self.body: List[bytes] = []

    def decide(self, answer: Any) -> None:
        if not self.decided.done():
            self.decided.set_result(answer)

    def finished(self, task: asyncio.Task[Any]) -> None:
        """The application returned (or failed); a connection it accepted closes."""
        exc = None if task.cancelled() else task.exception()
        if exc is not None and not isinstance(exc, ClientDisconnected):
            log.error("ASGI application failed for %r", self.req.raw_path, exc_info=exc)
        if self.ws is not None:
            self.ws.start_close(1000 if exc is None else 1011, "")
        elif not self.decided.done():
            if exc is None:
                log.error("ASGI application returned without accepting or closing the WebSocket")
            self.decide(INTERNAL_ERROR)
        self.state = DONE

    async def receive(self) -> Dict[str, Any]:
        if self.state == CONNECTING:
            self.state = HANDSHAKE
            return {"type": "websocket.connect"}
        if self.ws is None:
            if self.state != DONE:
                await asyncio.shield(self.decided)  # until the application decides
            return {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        try:
            message = await self.ws.receive()
        except WebSocketClosed as closed:
            self.state = DONE
            return {"type": "websocket.disconnect", "code": closed.code, "reason": closed.reason}
        if type(message) is str:
            return {"type": "websocket.receive", "text": message}
        return {"type": "websocket.receive", "bytes": message}

    async def send(self, message: Dict[str, Any]) -> None:
        kind = message["type"]
        state = self.state
        if state == ACCEPTED:
            if kind == "websocket.send":
                text, data = message.get("text"), message.get("bytes")
                if (text is None) == (data is None):
                    raise RuntimeError("websocket.send needs one of 'text' and 'bytes'")
                await self.ws.send(text if text is not None else data)
                return
            if kind == "websocket.close":
                self.state = DONE
                self.ws.start_close(message.get("code", 1000), message.get("reason") or "")
                return
        elif state == HANDSHAKE:
            if kind == "websocket.accept":
                self.accept(message)
                return
            if kind == "websocket.close":
                self.state = DONE
                self.decide(FORBIDDEN)
                return
            if kind == DENIAL + ".start":
                self.state = DENYING
                self.denial = message
                return
        elif state == DENYING and kind == DENIAL + ".body":
            self.body.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.state = DONE
                start = self.denial or {}
                self.decide(Response(b"".join(self.body), start["status"], start.get("headers")))
            return
        elif state == DONE:
            raise WebSocketClosed(1006 if self.ws is None else self.ws.close_code)
        raise RuntimeError(f"ASGI message {kind!r} is not allowed here (WebSocket state {state})")

    def accept(self, message: Dict[str, Any]) -> None:
        accept = check_handshake(self.req)
        if isinstance(accept, Response):
            self.state = DONE
            self.decide(accept)  # no valid handshake: the application's accept cannot stand
            raise WebSocketClosed(1006, "not a valid WebSocket handshake")
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in message.get("headers") or ()
        ]
        self.ws, answer = switch(self.req, accept, message.get("subprotocol"), headers, None)
        self.ws.task = asyncio.current_task()
        self.state = ACCEPTED
        self.decide(answer)
