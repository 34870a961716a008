"""The ASGI ``websocket`` scope through real sockets on both cores: Starlette and FastAPI
routes driven by the ``websockets`` client, and the spec's messages one by one (accept with
a subprotocol and headers, close with a reason, closing before accepting, the
``websocket.http.response`` denial, lifespan state)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi import WebSocket as FastAPIWebSocket
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

seen: list[Any] = []


async def starlette_echo(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="chat", headers=[(b"x-room", b"7")])
    seen.append((websocket.scope["type"], websocket.scope["subprotocols"]))
    seen.append(websocket.scope["state"].get("started"))
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                seen.append(message["code"])
                return
            if message.get("text") == "bye":
                await websocket.close(4001, "asked to")
                return
            if "text" in message and message["text"] is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> Any:
    yield {"started": "yes"}


starlette_app = Starlette(routes=[WebSocketRoute("/ws", starlette_echo)], lifespan=lifespan)

fastapi_app = FastAPI()


@fastapi_app.websocket("/items/{item}")
async def fastapi_items(websocket: FastAPIWebSocket, item: str) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_json({"item": item, "got": text})


async def raw(scope: Any, receive: Any, send: Any) -> None:
    """The spec's messages by hand, chosen by path."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    path = scope["path"]
    if path == "/close-first":
        await send({"type": "websocket.close"})
    elif path == "/deny":
        assert "websocket.http.response" in scope["extensions"]
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"www-authenticate", b"Token")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"who", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b" are you"})
    elif path == "/return":
        return
    else:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": scope["scheme"] + " " + scope["path"]})
        await send({"type": "websocket.close", "code": 3003, "reason": "done here"})
        with pytest.raises(OSError):
            await send({"type": "websocket.send", "text": "after close"})


async def test_starlette_route(live):
    seen.clear()
    with live(starlette_app) as srv:
        url = f"ws://127.0.0.1:{srv.port}/ws"
        async with connect(url, subprotocols=["other", "chat"]) as ws:
            assert ws.subprotocol == "chat"
            assert ws.response.headers["x-room"] == "7"
            for message in ("hi", b"\x00\x01", "x" * 100_000):
                await ws.send(message)
                assert await ws.recv() == message
        async with connect(url, subprotocols=["chat"]) as ws:
            await ws.send("bye")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert (ws.close_code, ws.close_reason) == (4001, "asked to")
    assert seen[:3] == [("websocket", ["other", "chat"]), "yes", 1000]


async def test_fastapi_route(live):
    with live(fastapi_app) as srv:
        async with connect(f"ws://127.0.0.1:{srv.port}/items/42") as ws:
            await ws.send("one")
            assert await ws.recv() == '{"item":"42","got":"one"}'


async def test_close_with_a_reason_and_send_after_it(live):
    with live(raw, lifespan="off") as srv:
        async with connect(f"ws://127.0.0.1:{srv.port}/chat") as ws:
            assert await ws.recv() == "ws /chat"
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert (ws.close_code, ws.close_reason) == (3003, "done here")


@pytest.mark.parametrize(
    ("path", "status", "body"), [("/close-first", 403, b""), ("/deny", 401, b"who are you")]
)
async def test_refusals_are_http_answers(live, path, status, body):
    with live(raw, lifespan="off") as srv:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{srv.port}{path}"):
                pass
    response = refused.value.response
    assert response.status_code == status and response.body == body
    if status == 401:
        assert response.headers["www-authenticate"] == "Token"


async def test_an_application_that_neither_accepts_nor_closes_gets_500(live):
    with live(raw, lifespan="off") as srv:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://127.0.0.1:{srv.port}/return"):
                pass
    assert refused.value.response.status_code == 500


async def test_shutdown_closes_asgi_websockets_with_1001(live):
    seen.clear()
    with live(starlette_app) as srv:
        async with connect(f"ws://127.0.0.1:{srv.port}/ws", subprotocols=["chat"]) as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            await asyncio.get_running_loop().run_in_executor(None, srv.shutdown, 5)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert ws.close_code == 1001
    assert seen[-1] == 1001  # the application saw the disconnect, then shutdown ended
