"""The hand-over of a connection whose request switched protocols (``SwitchProtocols``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from .response import SwitchProtocols

log = logging.getLogger("cyhttp.error")


def hand_over(transport: Any, switch: SwitchProtocols, tail: bytes) -> None:
    """Give *transport* to the protocol *switch* makes, with the bytes read past the head.

    The core has already written the ``101`` answer and let go of the transport;
    reading was paused since the head arrived, and resumes for the new owner.
    """
    try:
        protocol = switch.factory()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if tail:
            if isinstance(protocol, asyncio.BufferedProtocol):
                view = memoryview(tail)
                while view:
                    buffer = memoryview(protocol.get_buffer(len(view)))
                    size = min(len(buffer), len(view))
                    buffer[:size] = view[:size]
                    protocol.buffer_updated(size)
                    view = view[size:]
            else:
                cast(asyncio.Protocol, protocol).data_received(tail)
    except Exception:
        log.exception("the protocol switched to failed to start; closing the connection")
        transport.abort()
        return
    if not transport.is_closing():
        transport.resume_reading()
