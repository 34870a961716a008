"""What a serving process sets up before the server starts, for the CLI and ``run()``
alike: the application (``MODULE:ATTR``), the environment file, logging."""

from __future__ import annotations

import configparser
import importlib
import json
import logging
import logging.config
import os
import re
import sys
from typing import Any, Dict, Optional, Union

__all__ = ["configure_logging", "load_app", "load_env_file", "log_format", "parse_env"]

FORMAT = "%(levelname)s %(name)s: %(message)s"
LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
TRACE = 5  # uvicorn's level below debug


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


# -- the environment file (dotenv) ----------------------------------------------------

_ASSIGNMENT = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def parse_env(text: str, environ: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The variables a dotenv file sets, in its order.

    ``NAME=value`` lines, ``export`` allowed before the name; ``#`` starts a comment on
    its own line or after a space; ``'single'`` quotes take the text as it is,
    ``"double"`` quotes read ``\\n``-style escapes, and both may span lines. In unquoted
    and double-quoted values ``${NAME}`` (``${NAME:-default}``) is replaced by the
    variable's value in *environ*, else as set earlier in the file. Raises ``ValueError``
    naming the line of anything else.
    """
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    assert environ is not None
    found: Dict[str, str] = {}

    def expand(value: str) -> str:
        def value_of(ref: re.Match[str]) -> str:
            name = ref.group(1)
            known = environ.get(name, found.get(name))
            return known if known else (ref.group(2) or "")

        return _REFERENCE.sub(value_of, value)

    lines = text.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ASSIGNMENT.fullmatch(line)
        if match is None:
            raise ValueError(f"line {number}: expected NAME=value, got {line.strip()!r}")
        name, raw = match.groups()
        quote = raw[:1]
        if quote in ("'", '"'):
            first = number
            value, rest = _quoted(raw, quote)
            while rest is None and number < len(lines):
                raw += "\n" + lines[number]
                number += 1
                value, rest = _quoted(raw, quote)
            if rest is None:
                raise ValueError(f"line {first}: the quote of {name} is never closed")
            if rest.strip() and not rest.strip().startswith("#"):
                raise ValueError(f"line {number}: unexpected {rest.strip()!r} after the quote")
            found[name] = value if quote == "'" else expand(value)
        else:
            found[name] = expand(re.split(r"\s#", raw, maxsplit=1)[0].strip())
    return found


def _quoted(raw: str, quote: str) -> tuple[str, Optional[str]]:
    """The value between the quotes opening *raw* and what follows them (None: unclosed)."""
    value: list[str] = []
    i = 1
    while i < len(raw):
        char = raw[i]
        if char == quote:
            return "".join(value), raw[i + 1 :]
        if char == "\\" and quote == '"' and i + 1 < len(raw):
            i += 1
            value.append(_ESCAPES.get(raw[i], "\\" + raw[i]))
        else:
            value.append(char)
        i += 1
    return "".join(value), None


def load_env_file(path: Union[str, os.PathLike[str]]) -> None:
    """Set the variables of the dotenv file at *path* that the environment does not set
    already (as uvicorn's ``--env-file``); ``ValueError`` saying what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ValueError(f"env_file {os.fspath(path)!r}: {exc.strerror or exc}") from None
    try:
        variables = parse_env(text)
    except ValueError as exc:
        raise ValueError(f"env_file {os.fspath(path)!r}: {exc}") from None
    for name, value in variables.items():
        os.environ.setdefault(name, value)


# -- logging --------------------------------------------------------------------------

_COLORS = {
    "TRACE": "\x1b[34m",
    "DEBUG": "\x1b[34m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}


class ColorFormatter(logging.Formatter):
    """The plain format with the level name coloured for a terminal."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        plain = record.levelname
        color = _COLORS.get(plain)
        if color is None:
            return super().formatMessage(record)
        record.levelname = f"{color}{plain}\x1b[0m"
        try:
            return super().formatMessage(record)
        finally:
            record.levelname = plain


def log_format(use_colors: Optional[bool]) -> logging.Formatter:
    """The formatter of cyhttp's own log lines: coloured if *use_colors*, or if it is
    None and standard error is a terminal."""
    if use_colors is None:
        use_colors = sys.stderr.isatty()
    return ColorFormatter(FORMAT) if use_colors else logging.Formatter(FORMAT)


def level_of(name: Union[str, int]) -> int:
    """The logging level named *name* (one of ``LEVELS``, any case) or given as a number."""
    if isinstance(name, int):
        return name
    if name.lower() == "trace":
        logging.addLevelName(TRACE, "TRACE")
        return TRACE
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise ValueError(f"log_level must be one of {', '.join(LEVELS)}, got {name!r}")
    return level


def configure_logging(log_config: Any) -> None:
    """Apply a logging configuration as uvicorn's ``--log-config`` does: a dict or a
    ``.json``/``.yaml``/``.yml`` file for ``dictConfig``, any other file for
    ``fileConfig`` (INI). ``ValueError`` saying what is wrong."""
    what = log_config if isinstance(log_config, dict) else os.fspath(log_config)
    try:
        if isinstance(what, dict):
            logging.config.dictConfig(what)
        elif what.endswith(".json"):
            with open(what, encoding="utf-8") as f:
                logging.config.dictConfig(json.load(f))
        elif what.endswith((".yaml", ".yml")):
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError:
                raise ValueError("a YAML logging configuration needs PyYAML installed") from None
            with open(what, encoding="utf-8") as f:
                logging.config.dictConfig(yaml.safe_load(f))
        else:
            if not os.path.isfile(what):
                raise FileNotFoundError(2, "No such file or directory")
            logging.config.fileConfig(what, disable_existing_loggers=False)
    except OSError as exc:
        raise ValueError(f"log_config {what!r}: {exc.strerror or exc}") from None
    except Exception as exc:  # json, yaml, configparser and logging each raise their own
        # One line, as every start error is: configparser quotes the file's lines after it.
        reason = (str(exc).splitlines() or [repr(exc)])[0]
        headless = configparser.MissingSectionHeaderError
        if isinstance(exc, headless) or isinstance(exc.__context__, headless):
            # What a file in another format comes to (newer fileConfigs wrap the error).
            reason = "not INI (fileConfig); .json, .yaml and .yml files are read by dictConfig"
        raise ValueError(f"log_config {what!r} cannot be used: {reason}") from None
