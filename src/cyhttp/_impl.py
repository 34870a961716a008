"""The one place that picks the compiled or the pure-Python core.

``CYHTTP_NO_EXTENSIONS=1`` forces the pure-Python twin; otherwise the Cython
core is used when it was built. Both stay importable by name so tests and
benchmarks can run them side by side.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Dict, Optional, Protocol, Tuple, Type

from . import _core_py

if TYPE_CHECKING:
    from .request import Request

__all__ = ["IMPLEMENTATIONS", "Connection", "implementation", "protocol_class"]

NO_EXTENSIONS = os.environ.get("CYHTTP_NO_EXTENSIONS", "") not in ("", "0")

HttpProtocolPy: Type[asyncio.BufferedProtocol] = _core_py.HttpProtocol
HttpProtocolC: Optional[Type[asyncio.BufferedProtocol]]
if NO_EXTENSIONS:
    HttpProtocolC = None
else:
    try:
        from ._core import HttpProtocol as HttpProtocolC
    except ImportError:  # not built (e.g. an editable checkout without a compiler)
        HttpProtocolC = None

IMPLEMENTATIONS: Dict[str, Type[asyncio.BufferedProtocol]] = {"python": HttpProtocolPy}
if HttpProtocolC is not None:
    IMPLEMENTATIONS["cython"] = HttpProtocolC

implementation = "cython" if HttpProtocolC is not None else "python"


def protocol_class(name: Optional[str] = None) -> Type[asyncio.BufferedProtocol]:
    """The protocol class of core *name* (``"cython"`` or ``"python"``; None: the active one)."""
    if name is None:
        name = implementation
    try:
        return IMPLEMENTATIONS[name]
    except KeyError:
        if name == "cython":
            reason = "disabled by CYHTTP_NO_EXTENSIONS" if NO_EXTENSIONS else "not built"
            raise ValueError(f"the Cython core is {reason}") from None
        raise ValueError(f"unknown implementation {name!r}; use 'cython' or 'python'") from None


class Connection(Protocol):
    """What a core offers to requests and to the shared slow paths."""

    client: Optional[Tuple[str, int]]

    def _send_continue(self, request: Request) -> None: ...
    def _resume_body(self) -> None: ...
    def _send(self, data: bytes) -> None: ...
    def _drained(self) -> Optional[asyncio.Future[None]]: ...
