"""uvicorn's settings under cyhttp: the names it spells differently, and those it lacks.

The CLI and ``run()`` read both tables, so that a uvicorn command line or ``uvicorn.run``
call works unchanged or stops at once saying why (docs/uvicorn.md lists every option).
"""

from __future__ import annotations

import ssl
from typing import Any, Dict, Optional, Tuple

__all__ = ["ALIASES", "INTERFACES", "UNSUPPORTED", "refusal", "translate"]

# uvicorn's name -> the Config field holding the same setting.
ALIASES = {
    "timeout_keep_alive": "keepalive_timeout",
    "timeout_graceful_shutdown": "shutdown_timeout",
    "h11_max_incomplete_event_size": "max_header_size",
}

# uvicorn's interface names -> cyhttp's; asgi2 has none.
INTERFACES = {"asgi3": "asgi"}

_RELOAD = (
    (None, False, 0.25),
    "run() serves in this process: for reload, `python -m cyhttp APP --reload`",
)
_WS = (
    "cyhttp serves WebSocket upgrades itself to the applications that accept them: "
    "leave the option out (any implementation name means cyhttp's own)"
)

# uvicorn settings cyhttp lacks -> (the values that ask for nothing cyhttp does not do
# anyway, what to do instead). Any other value is refused at start.
UNSUPPORTED: Dict[str, Tuple[Tuple[Any, ...], str]] = {
    "workers": (
        (None, 1),
        "run() serves in this process: for worker processes, `python -m cyhttp APP --workers N`",
    ),
    "http": (
        ("auto", "httptools"),
        "cyhttp parses HTTP/1.1 itself (with httptools' llhttp): leave the option out",
    ),
    "http2": ((False,), "HTTP/2 is not supported: put a proxy speaking HTTP/2 in front"),
    "ws": (("auto", "websockets", "websockets-sansio", "wsproto"), _WS),
    "reload": _RELOAD,
    "reload_dirs": _RELOAD,
    "reload_includes": _RELOAD,
    "reload_excludes": _RELOAD,
    "reload_delay": _RELOAD,
    "ssl_context_factory": (
        (None,),
        "cyhttp makes the TLS context from --ssl-certfile/--ssl-keyfile and friends",
    ),
    "ssl_version": (
        (None, int(ssl.PROTOCOL_TLS_SERVER), int(ssl.PROTOCOL_TLS)),
        "OpenSSL negotiates the best TLS version: leave the option out",
    ),
    "interface": (
        ("auto", "asgi3", "asgi", "native", "wsgi"),
        "cyhttp calls ASGI 3 and WSGI applications and its own handlers: wrap an ASGI 2 "
        "application (asgiref's guarantee_single_callable)",
    ),
    "loop": (("auto", "asyncio", "uvloop"), "cyhttp runs on uvloop or asyncio: use one of those"),
}

# Accepted by run() with no effect there: it matters to the CLI's worker processes only.
IGNORED = {"timeout_worker_healthcheck"}


def refusal(name: str, value: Any, spelling: Optional[str] = None) -> Optional[str]:
    """Why uvicorn's setting *name* cannot be *value* under cyhttp, or None if it can;
    the message names the setting as *spelling* (default: *name*)."""
    entry = UNSUPPORTED.get(name)
    if entry is None:
        return None
    harmless, instead = entry
    if value is None or value in harmless or (isinstance(value, (list, tuple)) and not value):
        return None
    return f"{spelling or name} {value!r} is not supported: {instead}"


def translate(options: Dict[str, Any]) -> Dict[str, Any]:
    """uvicorn's keyword settings as cyhttp's ``Config`` fields (the others pass as they
    are); ``ValueError`` naming the first one cyhttp cannot honour."""
    result: Dict[str, Any] = {}
    for name, value in options.items():
        problem = refusal(name, value)
        if problem is not None:
            raise ValueError(problem)
        if (name in UNSUPPORTED and name != "interface") or name in IGNORED:
            continue  # asks for nothing more than cyhttp does
        if name == "interface":
            value = INTERFACES.get(value, value)
        elif name == "forwarded_allow_ips" and isinstance(value, (list, tuple)):
            value = ",".join(value)
        elif name in ("ws_ping_interval", "ws_ping_timeout") and value is None:
            value = 0.0  # uvicorn's "no pings": cyhttp's 0
        elif name == "timeout_graceful_shutdown" and value is None:
            continue  # uvicorn's "no limit": cyhttp always has one
        name = ALIASES.get(name, name)
        if name in result:
            raise TypeError(f"{name} is given twice (also under uvicorn's name)")
        result[name] = value
    return result
