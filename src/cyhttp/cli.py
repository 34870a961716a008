"""``python -m cyhttp MODULE:ATTR``: serve a handler from the command line."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any, List, Optional

from .config import LOOPS, Config
from .server import run

__all__ = ["load_app", "main"]

_DEFAULTS = Config()


def load_app(spec: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute.

    Raises ``ValueError`` with a message fit for a user on any failure.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"app must be given as MODULE:ATTR, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ValueError(f"{spec!r} is not callable")
    return obj


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cyhttp", description="Serve a cyhttp handler.")
    p.add_argument("app", help="the handler, as MODULE:ATTR (e.g. examples.hello:app)")
    p.add_argument("--host", default=_DEFAULTS.host, help="address to bind (default %(default)s)")
    p.add_argument("--port", type=int, default=_DEFAULTS.port, help="port (default %(default)s)")
    p.add_argument("--loop", choices=LOOPS, default="auto", help="event loop (default %(default)s)")
    p.add_argument(
        "--implementation",
        choices=("cython", "python"),
        default=None,
        help="force a core (default: the compiled one when built)",
    )
    p.add_argument("--backlog", type=int, default=_DEFAULTS.backlog)
    p.add_argument(
        "--keepalive-timeout", type=float, default=_DEFAULTS.keepalive_timeout, metavar="SECONDS"
    )
    p.add_argument(
        "--shutdown-timeout", type=float, default=_DEFAULTS.shutdown_timeout, metavar="SECONDS"
    )
    p.add_argument("--max-pipelined", type=int, default=_DEFAULTS.max_pipelined, metavar="N")
    p.add_argument("--reuse-port", action="store_true")
    p.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error", "critical")
    )
    return p


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of ``python -m cyhttp`` and the ``cyhttp`` script."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if os.getcwd() not in sys.path:  # the `cyhttp` script does not add it; `python -m` does
        sys.path.insert(0, os.getcwd())
    try:
        app = load_app(args.app)
        options = dict(
            backlog=args.backlog,
            keepalive_timeout=args.keepalive_timeout,
            shutdown_timeout=args.shutdown_timeout,
            max_pipelined=args.max_pipelined,
            implementation=args.implementation,
            reuse_port=args.reuse_port,
        )
        Config(host=args.host, port=args.port, **options)  # report bad values before starting
    except ValueError as exc:
        parser.error(str(exc))
    try:
        run(app, args.host, args.port, loop=args.loop, **options)
    except OSError as exc:
        parser.exit(1, f"cyhttp: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")
