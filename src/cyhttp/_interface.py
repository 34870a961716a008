"""Which interface an application speaks: cyhttp's native handlers, ASGI 3 or WSGI.

``auto`` decides from the application's signature, whether it is a function, a
class instance with ``__call__`` or a framework's application object:

* a native handler takes one argument (the request; more only with defaults);
* an ASGI 3 application three (``scope, receive, send``);
* a WSGI application (PEP 3333) exactly two required positional arguments
  (``environ, start_response``) and no third positional one, defaulted or not
  (Flask, Django, Falcon, Bottle and Pyramid applications all look so).

What cannot be told apart (``*args``, a required keyword argument, no signature)
is refused with one line saying why, never guessed.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional

__all__ = ["INTERFACES", "InterfaceError", "detect"]

INTERFACES = ("auto", "native", "asgi", "wsgi")


class InterfaceError(TypeError):
    """The application is not something the chosen interface can serve."""


def _positional(signature: inspect.Signature) -> Optional[int]:
    """How many positional arguments a call passes; None when any number fits (``*args``)."""
    count = 0
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return None
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
        elif param.kind is param.KEYWORD_ONLY and param.default is param.empty:
            return -1  # a required keyword: neither interface calls it so
    return count


def _required(signature: inspect.Signature) -> int:
    return sum(
        1
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    )


def detect(app: Any, interface: str = "auto") -> str:
    """``"native"``, ``"asgi"`` or ``"wsgi"`` for *app*; :class:`InterfaceError` if it
    cannot be served."""
    if interface not in INTERFACES:
        raise ValueError(f"interface must be one of {', '.join(INTERFACES)}, got {interface!r}")
    if not callable(app):
        raise InterfaceError(f"app must be callable, got {type(app).__name__}")
    if inspect.isclass(app):
        # ASGI 2 applications are classes instantiated with the scope alone.
        raise InterfaceError(
            f"{app.__qualname__} is a class: an ASGI 2 application? cyhttp serves ASGI 3 "
            "(a callable taking scope, receive, send); wrap it with "
            "asgiref.compatibility.guarantee_single_callable, or pass an instance"
        )
    if interface != "auto":
        return interface
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        most = _positional(signature)
        least = _required(signature)
        if most is not None and most >= 0:
            # ASGI passes three arguments, and no application defaults receive or send;
            # a native handler needs only the request (it may have defaulted extras).
            if 2 <= least <= 3 <= most:
                return "asgi"
            if least <= 1 <= most:
                return "native"
            if least == most == 2:
                return "wsgi"
    name = getattr(app, "__qualname__", None) or type(app).__qualname__
    raise InterfaceError(
        f"cannot tell whether {name} is a native handler (one argument, the request), an "
        "ASGI 3 application (scope, receive, send) or a WSGI application (environ, "
        "start_response); pass interface='native', 'asgi' or 'wsgi' (--interface on the "
        "command line)"
    )
