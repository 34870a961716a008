"""A Django Channels application: an ``AsyncHttpConsumer`` and an ``AsyncWebsocketConsumer``
behind Channels' own routers, as its documentation sets them up. A consumer hands ``receive()`` to
``asyncio.ensure_future`` and waits with ``asyncio.wait``, where other frameworks
``await`` it.

Django's settings are configured once a process: by ``django_app``, whose settings
serve this application too (it needs no settings of its own).
"""

from __future__ import annotations

from typing import Any, Optional

from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

from . import django_app  # noqa: F401 (configures Django)


class Echo(AsyncHttpConsumer):
    """Answers with the method and the whole body it was sent."""

    async def handle(self, body: bytes) -> None:
        answer = self.scope["method"].encode() + b" " + body
        await self.send_response(200, answer, headers=[(b"content-type", b"text/plain")])


class Chat(AsyncWebsocketConsumer):
    """The ``/chat`` WebSocket of the other frameworks (``tests/frameworks/__init__.py``)
    as a consumer: *events* (``as_asgi``'s keyword) gets the codes clients close with."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    async def connect(self) -> None:
        await self.accept(subprotocol="chat")

    async def receive(self, text_data: Any = None, bytes_data: Any = None) -> None:
        if text_data == "bye":
            await self.close(code=4000, reason="asked to")
        else:
            await self.send(text_data=text_data, bytes_data=bytes_data)

    async def disconnect(self, code: int) -> None:
        self.events.append(f"closed {code}")


def make(events: Optional[list[str]] = None) -> Any:
    chat = Chat.as_asgi(events=[] if events is None else events)
    return ProtocolTypeRouter(
        {
            "http": URLRouter([path("echo", Echo.as_asgi())]),
            "websocket": URLRouter([path("chat", chat)]),
        }
    )
