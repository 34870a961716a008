"""Other implementations' WebSocket clients against both cores, native and ASGI, over TCP:
the ``websockets`` client, aiohttp's and node's ``ws`` (Debian's ``node-ws``, driven by
``ws_client.js``), each with and without permessage-deflate.

Each client makes the same exchanges and reports what it saw: a text and a binary echo,
a 1 MiB message (sent in 64 KiB fragments by the clients that can fragment: ``websockets``
and ``ws``; aiohttp sends it whole), a ping answered with its payload, a close the client
begins (the server's handler sees its code and reason, the client its code echoed), and one
the server begins (the client sees its code and reason).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import cyhttp

from .support import eventually

HERE = Path(__file__).resolve().parent
NODE = shutil.which("node") or shutil.which("nodejs")
# Debian's node modules: where Debian's nodejs looks by itself, other builds need telling.
NODE_PATH = "/usr/share/nodejs"
HAS_NODE_WS = NODE is not None and os.path.isdir(f"{NODE_PATH}/ws")

TEXT = "héllo"
SMALL = bytes(i % 256 for i in range(1000))
LARGE = os.urandom(1 << 20)
FRAGMENT = 1 << 16
EXPECTED = {
    "text": True,
    "binary": True,
    "large": True,
    "pong": True,
    "client_close": 4001,
    "server_close": [4002, "server bye"],
}


def native_app(closes: list[tuple[int, str]]) -> Callable[..., Any]:
    async def session(ws: Any) -> None:
        async for message in ws:
            if message == "close me":
                await ws.close(4002, "server bye")
                return
            await ws.send(message)
        closes.append((ws.close_code, ws.close_reason))

    return lambda request: cyhttp.accept_websocket(request, session)


def asgi_app(closes: list[tuple[int, str]]) -> Callable[..., Any]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                closes.append((message["code"], message["reason"]))
                return
            if message.get("text") == "close me":
                await send({"type": "websocket.close", "code": 4002, "reason": "server bye"})
                return
            key = "text" if message.get("text") is not None else "bytes"
            await send({"type": "websocket.send", key: message[key]})

    return app


async def websockets_client(url: str, deflate: bool) -> dict[str, Any]:
    report: dict[str, Any] = {}
    compression = "deflate" if deflate else None
    async with connect(url, compression=compression, max_size=None) as ws:
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        report["deflate"] = "permessage-deflate" in extensions
        await ws.send(TEXT)
        report["text"] = await ws.recv() == TEXT
        await ws.send(SMALL)
        report["binary"] = await ws.recv() == SMALL
        await ws.send(LARGE[at : at + FRAGMENT] for at in range(0, len(LARGE), FRAGMENT))
        report["large"] = await ws.recv() == LARGE
        await (await ws.ping(b"ping?"))  # resolved by the pong with this payload only
        report["pong"] = True
        await ws.close(4001, "client bye")
    report["client_close"] = ws.close_code
    async with connect(url, compression=compression) as ws:
        await ws.send("close me")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    report["server_close"] = [ws.close_code, ws.close_reason]
    return report


async def aiohttp_client(url: str, deflate: bool) -> dict[str, Any]:
    report: dict[str, Any] = {}
    options = {"compress": 15 if deflate else 0, "autoping": False, "max_msg_size": 0}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, **options) as ws:
            report["deflate"] = bool(ws.compress)
            await ws.send_str(TEXT)
            report["text"] = (await ws.receive()).data == TEXT
            await ws.send_bytes(SMALL)
            report["binary"] = (await ws.receive()).data == SMALL
            await ws.send_bytes(LARGE)
            report["large"] = (await ws.receive()).data == LARGE
            await ws.ping(b"ping?")
            pong = await ws.receive()
            report["pong"] = (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"ping?")
            await ws.close(code=4001, message=b"client bye")
            report["client_close"] = ws.close_code
        async with session.ws_connect(url, **options) as ws:
            await ws.send_str("close me")
            closing = await ws.receive()
            assert closing.type == aiohttp.WSMsgType.CLOSE, closing
            report["server_close"] = [closing.data, closing.extra]
    return report


async def node_client(url: str, deflate: bool) -> dict[str, Any]:
    if not HAS_NODE_WS:
        # CI installs both (.ci/run) and sets CYHTTP_REQUIRE_NODE_WS: no skipping there.
        missing = f"needs node and Debian's node-ws (in {NODE_PATH})"
        if os.environ.get("CYHTTP_REQUIRE_NODE_WS") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    run = subprocess.run(
        [str(NODE), str(HERE / "ws_client.js"), url, "1" if deflate else "0"],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "NODE_PATH": NODE_PATH},
    )
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout))


CLIENTS = {"websockets": websockets_client, "aiohttp": aiohttp_client, "node-ws": node_client}


@pytest.mark.parametrize("client", CLIENTS.values(), ids=CLIENTS)
@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
@pytest.mark.parametrize("interface", ["native", "asgi"])
async def test_client_interop(live, client, deflate, interface):
    closes: list[tuple[int, str]] = []
    app = native_app(closes) if interface == "native" else asgi_app(closes)
    options = {"ws_max_size": 4 << 20, "ws_per_message_deflate": True, "lifespan": "off"}
    with live(app, **options) as srv:
        report = await client(f"ws://127.0.0.1:{srv.port}/", deflate)
        assert report == {**EXPECTED, "deflate": deflate}
        # The handler of the connection the client closed has seen its code and reason.
        assert eventually(lambda: (4001, "client bye") in closes), closes
