"""The public API: response validation, configuration errors, the core switch."""

from __future__ import annotations

import importlib.util
import inspect
import os
import subprocess
import sys

import pytest

import cyhttp
from cyhttp import _impl


def test_compiled_core_loaded():
    """Fails if the Cython core silently did not build or import."""
    if _impl.NO_EXTENSIONS:
        assert cyhttp.implementation == "python"
    else:
        assert cyhttp.implementation == "cython"
        assert _impl.HttpProtocolC is not None
        assert _impl.HttpProtocolC.__module__ == "cyhttp._protocol_c"
        assert _impl.Request.__module__ == "cyhttp._request"


def test_env_switch_forces_pure_python():
    code = "import cyhttp, cyhttp._impl as i; print(cyhttp.implementation, i.HttpProtocolC)"
    env = dict(os.environ, CYHTTP_NO_EXTENSIONS="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["python", "None"]
    code = "import cyhttp; cyhttp.Server(lambda r: None, implementation='cython')"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "ValueError: the Cython core is disabled by CYHTTP_NO_EXTENSIONS" in proc.stderr


def test_env_switch_zero_means_off():
    env = dict(os.environ, CYHTTP_NO_EXTENSIONS="0")
    out = subprocess.run(
        [sys.executable, "-c", "import cyhttp; print(cyhttp.implementation)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    built = importlib.util.find_spec("cyhttp._primitives") is not None
    assert out.strip() == ("cython" if built else "python")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-A": "a\r\nInjected: 1"}, "CR, LF or NUL"),
        ({"X-A": "a\nb"}, "CR, LF or NUL"),
        ({"X-A": b"a\x00"}, "CR, LF or NUL"),
        ({"Bad Name": "v"}, "invalid header name"),
        ({"X\r\nY": "v"}, "invalid header name"),
        ({"": "v"}, "invalid header name"),
        ({"Transfer-Encoding": "gzip"}, "no coding but chunked"),
        ({"Content-Length": "abc"}, "invalid Content-Length"),
        ({"Content-Length": "3"}, "does not match"),
        ({"X-U": "snowman \u2603"}, "latin-1"),
    ],
)
def test_response_rejects_bad_headers(headers, message):
    with pytest.raises(ValueError, match=message):
        cyhttp.Response(b"body", headers=headers)


def test_response_rejects_split_content_type():
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        cyhttp.Response(b"x", content_type="text/plain\r\nSet-Cookie: a=b")


@pytest.mark.parametrize("status", [99, 600, -1])
def test_response_rejects_bad_status(status):
    with pytest.raises(ValueError, match="between 100 and 599"):
        cyhttp.Response(status=status)


def test_response_types():
    with pytest.raises(TypeError):
        cyhttp.Response(status="200")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cyhttp.Response(headers={"X": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="async iterable"):
        cyhttp.StreamingResponse([b"not async"])  # type: ignore[arg-type]
    assert cyhttp.Response("héllo").body == "héllo".encode()
    assert cyhttp.Response(bytearray(b"ab")).body == b"ab"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"port": 70000}, "port must be"),
        ({"port": "80"}, "port must be"),
        ({"keepalive_timeout": 0}, "keepalive_timeout"),
        ({"shutdown_timeout": -1}, "shutdown_timeout"),
        ({"max_pipelined": 0}, "max_pipelined"),
        ({"backlog": 0}, "backlog"),
        ({"implementation": "rust"}, "implementation"),
        ({"host": ""}, "host"),
    ],
)
def test_server_rejects_bad_config(options, message):
    with pytest.raises(ValueError, match=message):
        cyhttp.Server(lambda r: cyhttp.Response(), **options)


def test_server_rejects_unknown_option_and_non_callable():
    with pytest.raises(TypeError):
        cyhttp.Server(lambda r: cyhttp.Response(), max_nonsense=3)
    with pytest.raises(TypeError, match="callable"):
        cyhttp.Server("not an app")  # type: ignore[arg-type]


def test_public_names_documented():
    for name in cyhttp.__all__:
        obj = getattr(cyhttp, name)
        if isinstance(obj, type) or inspect.isfunction(obj):
            assert obj.__doc__, name


def test_one_version_source():
    # pyproject.toml reads the version from cyhttp.__version__; what pip installed agrees.
    from importlib.metadata import version

    assert version("cyhttp") == cyhttp.__version__


@pytest.mark.parametrize("impl", _impl.AVAILABLE)
def test_requests_of_either_core_are_cyhttp_requests(impl):
    # A server may run the pure core while the compiled one is loaded: isinstance holds.
    from .support import Conn

    seen = []
    c = Conn(lambda request: seen.append(request) or cyhttp.Response(b""), impl)
    c.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(seen) == 1 and isinstance(seen[0], cyhttp.Request)
    assert not isinstance(object(), cyhttp.Request)
    with pytest.raises(TypeError, match="made by the server"):
        cyhttp.Request()
