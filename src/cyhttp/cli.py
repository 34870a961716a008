"""``python -m cyhttp MODULE:ATTR``: serve a handler or an ASGI application from the
command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import fields
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple, get_args, get_type_hints

from . import _tls, _uvicorn
from ._impl import protocol_class
from ._interface import INTERFACES, detect
from ._lifespan import LIFESPAN_MODES
from ._listen import inherited
from ._process import (
    LEVELS,
    configure_logging,
    level_of,
    load_app,
    load_env_file,
    log_format,
)
from ._reload import CHILD, serve_with_reload
from .config import LOOPS, Config
from .server import run, where

__all__ = ["load_app", "main"]  # load_app: see _process


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


def _refuse(message: str) -> NoReturn:
    sys.stderr.write(f"cyhttp: error: {message}\n")
    raise SystemExit(2)


# The settings that take one of a few words; uvicorn's other words are taken, then
# mapped or refused (_uvicorn).
CHOICES = {
    "implementation": ("cython", "python"),
    "interface": (*INTERFACES, "asgi3", "asgi2"),
    "lifespan": LIFESPAN_MODES,
}
NONE = type(None)
# Switches that uvicorn spells with a value (`--ws-per-message-deflate false`): taken so.
VALUED_SWITCHES = {"ws_per_message_deflate"}
# uvicorn's spelling of a setting, shown next to cyhttp's.
SPELLINGS = {field: uvicorn for uvicorn, field in _uvicorn.ALIASES.items()}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _header(text: str) -> Tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:VALUE, got {text!r}")
    return name.strip(), value.strip()


_TRUE = ("1", "true", "t", "yes", "y", "on")
_FALSE = ("0", "false", "f", "no", "n", "off")


def _boolean(text: str) -> bool:
    """A yes/no word, as click reads one."""
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# uvicorn's options whose features cyhttp lacks: taken, and refused at start unless
# their value asks for nothing cyhttp does not do (_uvicorn.UNSUPPORTED).
UNSUPPORTED_FLAGS: Dict[str, Dict[str, Any]] = {
    "http": {"choices": ("auto", "h11", "httptools", "zttp")},
    "http2": {"action": "store_true", "default": None},
    "ws": {"choices": ("auto", "none", "websockets", "websockets-sansio", "wsproto")},
    "ssl_version": {"type": int},
}


def _parser() -> argparse.ArgumentParser:
    # No abbreviations: a prefix of one option must never quietly set another.
    p = _Parser(
        prog="cyhttp",
        description="Serve a cyhttp handler or an ASGI 3 application. Every option can also "
        "be set as CYHTTP_<OPTION> (or uvicorn's UVICORN_<OPTION>) in the environment; "
        "the command line wins (docs/uvicorn.md).",
        allow_abbrev=False,
    )
    p.add_argument(
        "app",
        nargs="?",
        help="the handler or ASGI application, as MODULE:ATTR (e.g. examples.hello:app)",
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
    p.add_argument(
        "--loop", choices=(*LOOPS, "zuvloop"), default="auto", help="event loop (default: auto)"
    )
    p.add_argument("--log-level", choices=LEVELS, help="logging threshold (default: info)")
    p.add_argument(
        "--log-config",
        metavar="FILE",
        help="logging configuration: .json or .yaml (dictConfig), or INI (fileConfig)",
    )
    p.add_argument(
        "--use-colors",
        action=argparse.BooleanOptionalAction,
        help="colour the level of log lines (default: when standard error is a terminal)",
    )
    p.add_argument(
        "--env-file", metavar="FILE", help="set the variables of this dotenv file, if unset"
    )
    p.add_argument(
        "--app-dir",
        default="",
        metavar="DIR",
        help="look for MODULE in this directory first (default: the current directory)",
    )
    p.add_argument(
        "--reload",
        action="store_true",
        help="development: restart the server when a watched file changes (needs watchfiles)",
    )
    p.add_argument(
        "--reload-dir",
        dest="reload_dirs",
        action="append",
        metavar="DIR",
        help="with --reload: watch this directory (repeatable; default: the current one)",
    )
    p.add_argument(
        "--reload-include",
        dest="reload_includes",
        action="append",
        metavar="PATTERN",
        help="with --reload: file names that restart the server (repeatable; default: *.py)",
    )
    p.add_argument(
        "--reload-exclude",
        dest="reload_excludes",
        action="append",
        metavar="PATTERN",
        help="with --reload: file names that do not (repeatable; editors' files always)",
    )
    p.add_argument(
        "--reload-delay",
        type=float,
        default=0.25,
        metavar="SECONDS",
        help="with --reload: changes this close together restart once (default: 0.25)",
    )
    p.add_argument(
        "--fd",
        type=int,
        metavar="N",
        help="serve the listening socket inherited as descriptor N (systemd socket "
        "activation), instead of --host/--port or --uds",
    )
    p.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="worker processes under a supervisor ('auto' or 0: one per CPU; default:"
        " WEB_CONCURRENCY, else 1, served by this process alone)",
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
        metavar="MIB",
        help="with --workers: replace a worker whose memory grows past this many MiB",
    )
    # One option per Config field, so the CLI can never miss a setting.
    hints = get_type_hints(Config)
    for f in fields(Config):
        flags = [_flag(f.name)]
        if f.name in SPELLINGS:
            flags.append(_flag(SPELLINGS[f.name]))
        default = f.default
        # A setting without a fixed default says what it defaults to in its own help.
        help_text = f.metadata["help"].replace("%", "%%")
        if default not in (None, ()):
            help_text += f" (default: {default})"
        if f.name == "headers":
            p.add_argument(
                "--header",
                dest="headers",
                action="append",
                type=_header,
                metavar="NAME:VALUE",
                help="add this field to every response (repeatable)",
            )
        elif f.name in CHOICES:
            p.add_argument(*flags, choices=CHOICES[f.name], default=default, help=help_text)
        elif f.name in VALUED_SWITCHES:
            p.add_argument(
                *flags, type=_boolean, nargs="?", const=True, default=default, help=help_text
            )
        elif isinstance(default, bool):
            p.add_argument(
                *flags,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=help_text,
            )
        else:
            p.add_argument(
                *flags,
                dest=f.name,
                # Optional[X] takes an X.
                type=next(t for t in get_args(hints[f.name]) or (hints[f.name],) if t is not NONE),
                default=default,
                help=help_text,
                metavar=f.name.split("_")[-1].upper(),
            )
    unsupported = {name: dict(spec) for name, spec in UNSUPPORTED_FLAGS.items()}
    spelled = {name: spec.pop("flag", _flag(name)) for name, spec in unsupported.items()}
    group = p.add_argument_group(
        "uvicorn's options for what cyhttp does not do yet",
        "Taken so that a uvicorn command line runs; a value asking for the feature stops "
        "the start with a line saying what to use instead: " + ", ".join(spelled.values()),
    )
    for name, spec in unsupported.items():
        group.add_argument(spelled[name], dest=name, help=argparse.SUPPRESS, **spec)
    return p


ENV_PREFIXES = ("CYHTTP_", "UVICORN_")  # in this order: cyhttp's own name wins


def _env_value(action: argparse.Action, text: str) -> Any:
    """*text*, an environment variable's value, read as *action* reads its argument."""
    if action.nargs == 0:  # a switch
        return _boolean(text)
    kind: Callable[[str], Any] = action.type if callable(action.type) else str

    def convert(part: str) -> Any:
        try:
            return kind(part)
        except ValueError:  # in argparse's words
            raise ValueError(f"invalid {kind.__name__} value: {part!r}") from None

    if isinstance(action, argparse._AppendAction):
        return [convert(part) for part in text.split()]  # click's way: split at blanks
    value = convert(text)
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"expected one of {', '.join(map(str, action.choices))}")
    return value


def _from_environment(parser: argparse.ArgumentParser, environ: Dict[str, str]) -> List[str]:
    """Take each option's default from ``CYHTTP_<OPTION>`` or ``UVICORN_<OPTION>`` where
    set (any of its spellings); return the variables read."""
    read = []
    defaults = {}
    for action in parser._actions:
        names = [
            flag[2:].upper().replace("-", "_")
            for flag in action.option_strings
            if flag.startswith("--") and not flag.startswith("--no-")
        ]
        if not names or action.dest in ("help", "version"):
            continue
        candidates = (prefix + name for prefix in ENV_PREFIXES for name in names)
        found = next((variable for variable in candidates if variable in environ), None)
        if found is None:
            continue
        try:
            defaults[action.dest] = _env_value(action, environ[found])
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            parser.error(f"{found}={environ[found]!r}: {exc}")
        read.append(found)
    parser.set_defaults(**defaults)
    return read


def _check_uvicorn_options(args: argparse.Namespace, environ: Dict[str, str]) -> None:
    """Stop at once, in one line, on a uvicorn setting asking for what cyhttp lacks."""
    if args.workers is None:
        value = environ.get("WEB_CONCURRENCY") or "1"
        try:
            args.workers = _workers(value)
        except argparse.ArgumentTypeError:
            _refuse(f"WEB_CONCURRENCY must be a number of worker processes, got {value!r}")
    spellings = {name: spec.get("flag", _flag(name)) for name, spec in UNSUPPORTED_FLAGS.items()}
    spellings.update(interface="--interface", loop="--loop")
    for name, flag in spellings.items():
        problem = _uvicorn.refusal(name, getattr(args, name), flag)
        if problem is not None:
            _refuse(problem)


def _set_up_logging(args: argparse.Namespace) -> None:
    if args.log_config is not None:
        try:
            configure_logging(args.log_config)
        except ValueError as exc:
            _refuse(str(exc))
        if args.log_level is not None:
            logging.getLogger("cyhttp").setLevel(level_of(args.log_level))
        return
    handler = logging.StreamHandler()
    handler.setFormatter(log_format(args.use_colors))
    logging.basicConfig(level=level_of(args.log_level or "info"), handlers=[handler])


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


def _supervise(args: argparse.Namespace, options: dict[str, Any], inherited: Optional[Any]) -> int:
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
        sockets = [inherited] if inherited is not None else bind(config)
    except OSError as exc:
        place = config.uds or f"{config.host}:{config.port}"
        _parser().exit(1, f"cyhttp: cannot listen on {place}: {exc.strerror or exc}\n")
    served = dict(options, uds=None)  # the socket is bound already

    def make_server(socks: List[Any]) -> Server:
        app = load_app(args.app)
        if args.factory:
            app = app()
        server = Server(app, sock=socks[0], **served)
        server.multiprocess = True  # WSGI's wsgi.multiprocess: the other workers serve it too
        return server

    def serve(socks: List[Any], report: int, parent: int) -> int:
        beat = settings.healthcheck_timeout / 4
        return worker_main(make_server, loop_factory, socks, report, parent, beat)

    scheme = "https" if config.ssl_certfile else "http"
    logging.getLogger("cyhttp").info(
        "serving on %s with %d workers", where(sockets[0], scheme), settings.workers
    )
    supervisor = Supervisor(sockets, serve, settings)
    try:
        status = supervisor.run()
        if supervisor.failure:
            print(f"cyhttp: error: {supervisor.failure}", file=sys.stderr)
        return status
    finally:
        for sock in sockets:
            sock.close()
        if config.uds and inherited is None:
            try:
                os.unlink(config.uds)
            except OSError:
                pass


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of ``python -m cyhttp`` and the ``cyhttp`` script."""
    parser = _parser()
    environ = dict(os.environ)
    from_env = _from_environment(parser, environ)
    args = parser.parse_args(argv)
    if args.app is None:
        for name in ("CYHTTP_APP", "UVICORN_APP"):
            if environ.get(name):
                args.app = environ[name]
                from_env.append(name)
                break
        else:
            parser.error("the following arguments are required: app")
    _check_uvicorn_options(args, environ)
    _set_up_logging(args)
    if from_env:
        names = ", ".join(sorted(from_env))
        logging.getLogger("cyhttp").info("settings from the environment: %s", names)
    if args.env_file is not None:
        try:
            load_env_file(args.env_file)
        except ValueError as exc:
            _refuse(str(exc))
    if args.reload and CHILD not in environ:
        if args.workers != 1:
            _refuse("--reload runs one server process: leave out --workers")
        sys.exit(
            serve_with_reload(
                sys.argv[1:] if argv is None else argv,
                args.reload_dirs or (),
                args.reload_includes or (),
                args.reload_excludes or (),
                args.reload_delay,
            )
        )
    # uvicorn's --app-dir defaults to the current directory (`python -m` puts it on the
    # path, the `cyhttp` script does not).
    app_dir = args.app_dir or os.getcwd()
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    options = {f.name: getattr(args, f.name) for f in fields(Config)}
    options["headers"] = tuple(args.headers or ())
    options["interface"] = _uvicorn.INTERFACES.get(args.interface, args.interface)
    sock = None
    if args.fd is not None:
        try:
            sock = inherited(args.fd)
        except ValueError as exc:
            _refuse(str(exc))
    if args.workers != 1:
        sys.exit(_supervise(args, options, sock))
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
        run(app, host, port, loop=args.loop, sock=sock, **options)
    except OSError as exc:
        where = options["uds"] or f"{host}:{port}"
        parser.exit(1, f"cyhttp: cannot listen on {where}: {exc.strerror or exc}\n")
