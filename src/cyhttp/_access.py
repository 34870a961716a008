"""The access log: one record per answer on the ``cyhttp.access`` logger.

The default line is uvicorn's (``127.0.0.1:5000 - "GET / HTTP/1.1" 200``); a format in
gunicorn's atoms (``access_log_format``) replaces it, so a gunicorn user's format line
works as it is. Every record carries the request's fields as ``LogRecord`` attributes
(``client``, ``method``, ``path``, ``query``, ``http_version``, ``status``, ``bytes``,
``duration``), for formatters that emit fields rather than text.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import time
from typing import TYPE_CHECKING, Any, Optional, Tuple

from ._wire import FLAG_CONTENT_LENGTH

if TYPE_CHECKING:
    from .request import Request

__all__ = ["AccessLog", "check_format"]

logger = logging.getLogger("cyhttp.access")

DEFAULT = '%s - "%s %s HTTP/%s" %d'

# Atoms with a number for a value, so that %(s)d works as well as %(s)s.
_NUMBERS = frozenset("sBTMD")
_ATOM = re.compile(r"%\(([^)]*)\)")


def check_format(fmt: str) -> None:
    """Raise ``ValueError`` saying what is wrong with an access log format."""
    sample = {key: 0 if key in _NUMBERS else "-" for key in _ATOM.findall(fmt)}
    try:
        fmt % sample
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"access_log_format {fmt!r} cannot be used: {exc}") from None


class _Atoms:
    """A record's values by gunicorn's atom names, each computed only when the format
    asks for it; an unknown atom is ``-``, as in gunicorn."""

    __slots__ = ("extra", "head", "req", "target")

    def __init__(self, req: Request, head: bytes, target: str, extra: dict[str, Any]) -> None:
        self.req = req
        self.head = head
        self.target = target
        self.extra = extra

    def __getitem__(self, key: str) -> Any:
        if key[:1] == "{" and len(key) > 2 and key[-2] == "}":
            name = key[1:-2]
            kind = key[-1]
            if kind == "i":
                return self.req.headers.get(name.lower(), "-")
            if kind == "o":
                return _response_field(self.head, name.lower().encode("latin-1"))
            if kind == "e":
                return os.environ.get(name, "-")
            return "-"
        extra = self.extra
        req = self.req
        duration = extra["duration"] or 0.0
        if key == "h":
            client = req.client
            return client[0] if client else "-"
        if key == "r":
            return f"{req.method} {self.target} HTTP/{req.http_version}"
        if key == "s":
            return extra["status"]
        if key in ("b", "B"):
            size = extra["bytes"]
            return size if size is not None else ("-" if key == "b" else 0)
        if key == "m":
            return req.method
        if key == "U":
            return extra["path"]
        if key == "q":
            return extra["query"]
        if key == "H":
            return f"HTTP/{req.http_version}"
        if key == "f":
            return req.headers.get("referer", "-")
        if key == "a":
            return req.headers.get("user-agent", "-")
        if key == "u":
            return _basic_user(req.headers.get("authorization"))
        if key == "t":
            return time.strftime("[%d/%b/%Y:%H:%M:%S %z]")
        if key == "T":
            return int(duration)
        if key == "M":
            return int(duration * 1_000)
        if key == "D":
            return int(duration * 1_000_000)
        if key == "L":
            return f"{duration:.6f}"
        if key == "p":
            return f"<{os.getpid()}>"
        return "-"  # l, and any name gunicorn does not know either


def _response_field(head: bytes, name: bytes) -> str:
    for line in head.split(b"\r\n"):
        field, _, value = line.partition(b":")
        if field.lower() == name:
            return value.strip().decode("latin-1")
    return "-"


def _basic_user(authorization: Optional[str]) -> str:
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return "-"
    try:
        user = base64.b64decode(credentials.strip(), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return "-"
    return user.partition(":")[0] or "-"


class AccessLog:
    """A server's access log, in its format (``None``: the default line)."""

    __slots__ = ("format",)

    def __init__(self, fmt: Optional[str]) -> None:
        self.format = fmt

    def log(
        self,
        req: Request,
        status: int,
        flags: int,
        head: bytes,
        body: Optional[bytes],
        started: Optional[float],
        length: int = -1,
    ) -> None:
        """Log the answer *status* to *req*, whose head the core read at *started*
        (``time.perf_counter``; ``None`` if it did not); *length* is the Content-Length
        the response declared (-1: none)."""
        if not logger.isEnabledFor(logging.INFO):
            return
        target = req.raw_path.decode("latin-1")
        path, _, query = target.partition("?")
        client = req.client
        if status < 200 or status in (204, 304) or req.method == "HEAD":
            size: Optional[int] = 0
        elif body is not None:
            size = len(body)
        elif flags & FLAG_CONTENT_LENGTH:
            size = length
        else:
            size = None  # a streaming body of no declared length: not known yet
        extra = {
            "client": f"{client[0]}:{client[1]}" if client else None,
            "method": req.method,
            "path": path,
            "query": query,
            "http_version": req.http_version,
            "status": status,
            "bytes": size,
            "duration": None if started is None else time.perf_counter() - started,
        }
        fmt = self.format
        if fmt is None:
            msg = DEFAULT
            args: tuple[Any, ...] = (
                extra["client"] or "-",
                req.method,
                target,
                req.http_version,
                status,
            )
        else:
            msg = "%s"
            args = (fmt % _Atoms(req, head, target, extra),)
        # As Logger.info would, less its search of the caller's frame (an access record
        # has no caller worth naming) and its checks of each extra's name (fixed here).
        record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, msg, args, None, "log")
        record.__dict__.update(extra)
        logger.handle(record)

    def refused(self, client: Optional[Tuple[str, int]], line: bytes, status: int) -> None:
        """Log the server's answer *status* to a head it refused before it became a
        request: its request line as far as it came, every byte outside printable ASCII
        escaped (it may be anything), or ``-``. Always the default line: the atoms of a
        format name a request's parts, which a refused head may not have."""
        if not logger.isEnabledFor(logging.INFO):
            return
        peer = f"{client[0]}:{client[1]}" if client else None
        shown = repr(line)[2:-1] or "-"
        record = logger.makeRecord(
            logger.name,
            logging.INFO,
            __file__,
            0,
            '%s - "%s" %d',
            (peer or "-", shown, status),
            None,
            "refused",
        )
        record.__dict__.update(client=peer, status=status, bytes=None, duration=None)
        logger.handle(record)
