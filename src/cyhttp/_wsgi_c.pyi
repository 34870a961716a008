"""Typed face of the compiled WSGI layer: ``_wsgi.py`` compiled as ``_wsgi_c`` (see setup.py)."""

import asyncio
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, final

from ._primitives import Launcher
from ._proxy import TrustedProxies
from ._request import Request
from ._threads import Pool

__all__ = ["FileWrapper", "Wsgi"]

STALL: float

def environ_key(keys: Dict[bytes, str], name: bytes) -> str:
    """The environ key of header *name* (lower case); "" for a field not passed on."""

class FileWrapper:
    """``wsgi.file_wrapper``: a file-like object as a response body."""

    filelike: Any
    block_size: int
    def __init__(self, filelike: Any, block_size: int = 8192) -> None: ...
    def __iter__(self) -> Any: ...
    def close(self) -> None: ...

@final
class Wsgi(Launcher):
    """The handler the protocol calls for each request of a WSGI application."""

    @property
    def app(self) -> Callable[..., Any]: ...
    @property
    def pool(self) -> Pool: ...
    loop: Optional[asyncio.AbstractEventLoop]
    server: Optional[Tuple[str, Optional[int]]]
    @property
    def base(self) -> Mapping[str, Any]: ...
    def __init__(
        self,
        app: Callable[..., Any],
        threads: int,
        root_path: str = "",
        proxies: Optional[TrustedProxies] = None,
        scheme: str = "http",
    ) -> None: ...
    def __call__(self, req: Request) -> Any: ...
    def kick(self, loop: asyncio.AbstractEventLoop) -> None: ...
    def watch(self, loop: asyncio.AbstractEventLoop, seen: int) -> None: ...
    def deliver(self) -> None: ...
    async def drain(self, timeout: float) -> None: ...
    def set_base(self, key: str, value: Any) -> None: ...
    def environ(self, call: Any) -> Dict[str, Any]: ...
