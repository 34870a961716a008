"""``python -m cyhttp MODULE:ATTR``: serve a handler or an ASGI application from the
command line."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from dataclasses import fields
from typing import Any, List, NoReturn, Optional, get_args, get_type_hints

from . import _tls
from ._impl import protocol_class
from ._interface import INTERFACES, detect
from ._lifespan import LIFESPAN_MODES
from .config import LOOPS, Config
from .server import run

__all__ = ["load_app", "main"]

NONE = type(None)


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


# The llhttp each httptools release bundles (from httptools' vendor/llhttp at each tag,
# and llhttp.h in the 0.9.0 sdist): httptools does not report it at run time.
LLHTTP_OF_HTTPTOOLS = {
    "0.6.0": "8.1.1",
    "0.6.1": "8.1.1",
    "0.6.2": "8.1.1",
    "0.6.3": "9.2.1",
    "0.6.4": "9.2.1",
    "0.7.0": "9.3.0",
    "0.7.1": "9.3.0",
    "0.8.0": "9.4.1",
    "0.9.0": "9.4.3",
}


def versions() -> str:
    """What ``--version`` prints: cyhttp's, Python's and its libraries' versions, and the
    active core, one per line."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__, _impl

    def of(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    httptools = of("httptools")
    llhttp = LLHTTP_OF_HTTPTOOLS.get(httptools, "not known for this httptools")
    return (
        f"cyhttp {__version__}\n"
        f"core: {_impl.implementation}\n"
        f"Python {platform.python_version()} ({platform.python_implementation()})\n"
        f"uvloop {of('uvloop')}\n"
        f"httptools {httptools}\n"
        f"llhttp {llhttp} (bundled in httptools)"
    )


class _VersionAction(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(versions())
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as every other CLI error is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# The settings that take one of a few words.
CHOICES = {
    "implementation": ("cython", "python"),
    "interface": INTERFACES,
    "lifespan": LIFESPAN_MODES,
}


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cyhttp", description="Serve a cyhttp handler or an ASGI 3 application.")
    p.add_argument(
        "app", help="the handler or ASGI application, as MODULE:ATTR (e.g. examples.hello:app)"
    )
    p.add_argument(
        "--version",
        action=_VersionAction,
        nargs=0,
        help="print the versions of cyhttp, Python, uvloop, httptools, llhttp and the core",
    )
    p.add_argument(
        "--factory",
        action="store_true",
        help="MODULE:ATTR is a function returning the application (called once, no arguments)",
    )
    p.add_argument("--loop", choices=LOOPS, default="auto", help="event loop (default: auto)")
    p.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error", "critical"),
        help="logging threshold (default: info)",
    )
    p.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="worker processes under a supervisor ('auto' or 0: one per CPU; default: 1,"
        " served by this process alone)",
    )
    p.add_argument(
        "--timeout-worker-healthcheck",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="with --workers: kill and replace a worker silent this long (default: 5.0)",
    )
    p.add_argument(
        "--workers-max-rss",
        type=int,
        default=None,
        metavar="MIB",
        help="with --workers: replace a worker whose memory grows past this many MiB",
    )
    # One option per Config field, so the CLI can never miss a setting.
    hints = get_type_hints(Config)
    for f in fields(Config):
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        # A setting without a fixed default says what it defaults to in its own help.
        help_text = f.metadata["help"] + ("" if default is None else f" (default: {default})")
        if f.name in CHOICES:
            p.add_argument(flag, choices=CHOICES[f.name], default=default, help=help_text)
        elif isinstance(default, bool):
            p.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=help_text,
            )
        else:
            # Optional[X] takes an X.
            kind = next(t for t in get_args(hints[f.name]) or (hints[f.name],) if t is not NONE)
            p.add_argument(
                flag,
                type=kind,
                default=default,
                help=help_text,
                metavar=f.name.split("_")[-1].upper(),
            )
    return p


def _workers(value: str) -> int:
    if value in ("auto", "0"):
        return os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of workers: {value!r}") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"not a number of workers: {value!r}")
    return count


def _supervise(args: argparse.Namespace, options: dict[str, Any]) -> int:
    """Serve with worker processes: bind here, load the application in each worker."""
    from .server import Server, _loop_factory
    from .supervisor import Supervisor, SupervisorSettings, bind, worker_main

    try:
        settings = SupervisorSettings(
            workers=args.workers,
            healthcheck_timeout=args.timeout_worker_healthcheck,
            max_rss_mib=args.workers_max_rss,
            shutdown_timeout=options["shutdown_timeout"],
        )
        loop_factory = _loop_factory(args.loop)
    except (ValueError, ImportError) as exc:
        _parser().exit(2, f"cyhttp: error: {exc}\n")
    config = Config(**options)
    try:
        sockets = bind(config)
    except OSError as exc:
        where = config.uds or f"{config.host}:{config.port}"
        _parser().exit(1, f"cyhttp: cannot listen on {where}: {exc.strerror or exc}\n")
    served = dict(options, uds=None)  # the socket is bound already

    def make_server(socks: List[Any]) -> Server:
        app = load_app(args.app)
        if args.factory:
            app = app()
        return Server(app, sock=socks[0], **served)

    def serve(socks: List[Any], report: int, parent: int) -> int:
        beat = settings.healthcheck_timeout / 4
        return worker_main(make_server, loop_factory, socks, report, parent, beat)

    host, port = sockets[0].getsockname()[:2] if not config.uds else (None, None)
    where = f"unix:{config.uds}" if config.uds else f"http://{host}:{port}"
    logging.getLogger("cyhttp").info("serving on %s with %d workers", where, settings.workers)
    supervisor = Supervisor(sockets, serve, settings)
    try:
        status = supervisor.run()
        if supervisor.failure:
            print(f"cyhttp: error: {supervisor.failure}", file=sys.stderr)
        return status
    finally:
        for sock in sockets:
            sock.close()
        if config.uds:
            try:
                os.unlink(config.uds)
            except OSError:
                pass


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of ``python -m cyhttp`` and the ``cyhttp`` script."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if os.getcwd() not in sys.path:  # the `cyhttp` script does not add it; `python -m` does
        sys.path.insert(0, os.getcwd())
    options = {f.name: getattr(args, f.name) for f in fields(Config)}
    if args.workers != 1:
        sys.exit(_supervise(args, options))
    try:
        app = load_app(args.app)
    except ValueError as exc:
        parser.exit(2, f"cyhttp: error: {exc}\n")
    if args.factory:
        try:
            app = app()
        except Exception as exc:
            parser.exit(1, f"cyhttp: error: the application factory {args.app} failed: {exc!r}\n")
    try:
        _tls.context(Config(**options))  # report bad values and TLS files before anything starts
        protocol_class(options["implementation"])  # and a core that cannot run
        detect(app, options["interface"])  # and an application it cannot call
    except (ValueError, TypeError) as exc:
        parser.exit(2, f"cyhttp: error: {exc}\n")
    host, port = options.pop("host"), options.pop("port")
    try:
        run(app, host, port, loop=args.loop, **options)
    except OSError as exc:
        where = options["uds"] or f"{host}:{port}"
        parser.exit(1, f"cyhttp: cannot listen on {where}: {exc.strerror or exc}\n")
