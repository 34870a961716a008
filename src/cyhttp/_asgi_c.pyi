"""Typed face of the compiled ASGI layer: ``_asgi.py`` compiled as ``_asgi_c`` (see setup.py)."""

import asyncio
from typing import Any, Dict, Optional, Set, Tuple, final

from ._proxy import TrustedProxies
from ._request import Request

def forwarded_by(fields: Any, proxies: TrustedProxies) -> Tuple[Optional[str], Optional[str]]:
    """What a trusted proxy says of the scheme and the client's host (ASGI and WSGI)."""

@final
class Asgi:
    """The handler the protocol calls for each request of an ASGI 3 application."""

    @property
    def app(self) -> Any: ...
    @property
    def root_path(self) -> str: ...
    state: Dict[str, Any]
    server: Optional[Tuple[str, int]]
    loop: Optional[asyncio.AbstractEventLoop]
    @property
    def running(self) -> Set[asyncio.Task[Any]]: ...
    def __init__(
        self,
        app: Any,
        root_path: str,
        state: Dict[str, Any],
        proxies: Optional[TrustedProxies] = None,
        scheme: str = "http",
    ) -> None: ...
    def __call__(self, req: Request) -> Any: ...
    def scope(self, req: Request) -> Dict[str, Any]: ...
    async def drain(self, timeout: float) -> None: ...
