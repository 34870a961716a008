"""A real browser's WebSocket against a live server, native and ASGI: headless Chromium
(Debian's ``chromium``) opens a page whose script talks to the server over a WebSocket
(a subprotocol, permessage-deflate as Chromium offers it, messages the server pushes
unasked, text and binary echoes, a close the server begins) and shows what it saw.

The test drives the browser through its DevTools protocol (itself a WebSocket, spoken here
by the ``websockets`` client): it waits for the page's result, then keeps a screenshot of
the page in the test's temporary directory (``browser-websocket.png``, its path printed).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import struct
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

import cyhttp

from .support import CHROMIUM, chromium

PAGE = b"""<!doctype html><meta charset="utf-8"><title>cyhttp WebSocket</title>
<h1>WebSocket</h1><pre id="out">connecting</pre>
<script>
window.result = (async () => {
  const ws = new WebSocket(`ws://${location.host}/ws`, ["chat", "other"]);
  ws.binaryType = "arraybuffer";
  const inbox = [];
  let wake = null;
  const arrive = (item) => { if (wake) { wake(item); wake = null; } else inbox.push(item); };
  ws.onmessage = (e) => arrive(typeof e.data === "string"
    ? e.data : "binary " + Array.from(new Uint8Array(e.data)).join(","));
  ws.onclose = (e) => arrive(`close ${e.code} ${e.reason}`);
  const next = () => inbox.length ? Promise.resolve(inbox.shift()) : new Promise(r => wake = r);
  await new Promise((open, fail) => { ws.onopen = open; ws.onerror = fail; });
  const seen = [ws.protocol, ws.extensions.split(";")[0]];
  seen.push(await next());  // pushed by the server unasked
  ws.send("h\\u00e9llo");
  seen.push(await next());
  ws.send(new Uint8Array([0, 1, 254, 255]));
  seen.push(await next());
  ws.send("x".repeat(100000));
  seen.push((await next()).length);
  ws.send("push 3");
  for (let i = 0; i < 3; i++) seen.push(await next());
  ws.send("bye");
  seen.push(await next());
  return seen;
})().catch((e) => `error: ${e}`).then((seen) => {
  document.getElementById("out").textContent = JSON.stringify(seen, null, 1);
  return seen;
});
</script>"""

EXPECTED = [
    "chat",
    "permessage-deflate",
    "welcome",
    "héllo",
    "binary 0,1,254,255",
    100000,
    "tick 0",
    "tick 1",
    "tick 2",
    "close 4000 see you",
]


async def session(ws: Any) -> None:
    await ws.send("welcome")
    async for message in ws:
        if message == "bye":
            await ws.close(4000, "see you")
        elif message == "push 3":
            for i in range(3):
                await ws.send(f"tick {i}")
        else:
            await ws.send(message)


def native(request: cyhttp.Request) -> Any:
    if request.path == "/ws":
        return cyhttp.accept_websocket(request, session, subprotocol="chat")
    return cyhttp.Response(PAGE, content_type="text/html; charset=utf-8")


async def asgi(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await receive()
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": PAGE})
        return
    await receive()
    await send({"type": "websocket.accept", "subprotocol": "chat"})
    await send({"type": "websocket.send", "text": "welcome"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text == "bye":
            await send({"type": "websocket.close", "code": 4000, "reason": "see you"})
        elif text == "push 3":
            for i in range(3):
                await send({"type": "websocket.send", "text": f"tick {i}"})
        elif text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


class DevToolsError(Exception):
    """A command the browser refused (its ``error`` answer)."""


class DevTools:
    """Chromium's DevTools protocol on one page: commands and their answers."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        sent = next(self.ids)
        await self.ws.send(json.dumps({"id": sent, "method": method, "params": params}))
        while True:  # events arrive in between; the answer carries the command's id
            answer = json.loads(await self.ws.recv())
            if answer.get("id") == sent:
                if "error" in answer:
                    raise DevToolsError(answer["error"])
                return dict(answer["result"])


def page_endpoint(profile: Path) -> str:
    """The DevTools WebSocket of the one page Chromium opened."""
    port_file = profile / "DevToolsActivePort"  # written once the browser listens
    words = port_file.read_text().split()
    if not words:  # made, not yet written: the caller asks again
        raise ValueError("DevToolsActivePort is not written yet")
    port = words[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
        targets = json.load(answer)
    (page,) = (target for target in targets if target["type"] == "page")
    return str(page["webSocketDebuggerUrl"])


async def run_page(profile: Path) -> tuple[Any, bytes]:
    """What the page's script saw, and a screenshot of the page showing it."""
    while not (profile / "DevToolsActivePort").exists():
        await asyncio.sleep(0.05)
    endpoint = None
    while endpoint is None:  # the page's target appears a moment after the port
        try:
            endpoint = page_endpoint(profile)
        except (ValueError, OSError):
            await asyncio.sleep(0.05)
    async with connect(endpoint, max_size=None) as ws:
        devtools = DevTools(ws)
        # The target may still show its first, blank document, or be leaving it (then
        # the command fails): wait for the page's script.
        script = {"expression": "window.result", "returnByValue": True}
        while True:
            try:
                found = await devtools.call("Runtime.evaluate", **script)
            except DevToolsError:
                found = {"result": {"type": "undefined"}}
            if found["result"]["type"] == "object":
                break
            await asyncio.sleep(0.05)
        evaluated = await devtools.call("Runtime.evaluate", **script, awaitPromise=True)
        shot = await devtools.call("Page.captureScreenshot", format="png")
    return evaluated["result"].get("value"), base64.b64decode(shot["data"])


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.parametrize("interface", ["native", "asgi"])
def test_chromium_websocket_echo_and_push(live, interface, tmp_path):
    app = native if interface == "native" else asgi
    with (
        live(app, ws_per_message_deflate=True, lifespan="off") as srv,
        chromium(f"{srv.url}/", "--remote-debugging-port=0", "--window-size=800,600") as profile,
    ):
        seen, png = asyncio.run(asyncio.wait_for(run_page(profile), 60))
    screenshot = tmp_path / "browser-websocket.png"
    screenshot.write_bytes(png)
    print(f"screenshot: {screenshot}")
    assert seen == EXPECTED
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack("!II", png[16:24])  # IHDR
    assert width == 800 and height > 0
