"""The ASGI WebSocket echo run by cyhttp, uvicorn, granian and socketify's ASGI.

A ``websocket`` scope is accepted and every message echoed as it came (text as
text, bytes as bytes); HTTP requests go to the load suite's ASGI app.
"""

from .asgi_app import app as http_app


async def app(scope, receive, send):
    if scope["type"] == "http":
        await http_app(scope, receive, send)
        return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
