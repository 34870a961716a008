"""``python -m cyhttp``: serving, signals, and clear errors for bad input."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import cyhttp

from .support import read_until_closed, run_cli

ROOT = Path(__file__).resolve().parent.parent


def _serve(
    impl: str, *args: str, app: str = "examples.hello:app"
) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cyhttp",
            app,
            "--port",
            "0",
            "--implementation",
            impl,
            *args,
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        match = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
        if match:
            assert f"({impl} core)" in line
            return proc, int(match.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("server did not start")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_and_stops_on_signal(impl, sig):
    proc, port = _serve(impl)
    try:
        r = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert (r.status_code, r.text) == (200, "Hello, world!")
        assert (
            requests.post(f"http://127.0.0.1:{port}/echo", data=b"hi", timeout=10).content == b"hi"
        )
    finally:
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None
        with proc.stderr:
            assert "shutting down" in proc.stderr.read()


def test_cli_limit_options_take_effect(impl):
    proc, port = _serve(impl, "--max-url-size", "16", "--max-body-size", "4")
    try:
        r = requests.get(f"http://127.0.0.1:{port}/" + "a" * 40, timeout=10)
        assert r.status_code == 414
        r = requests.post(f"http://127.0.0.1:{port}/echo", data=b"12345", timeout=10)
        assert r.status_code == 413
        assert requests.post(f"http://127.0.0.1:{port}/echo", data=b"1234", timeout=10).ok
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        assert proc.stderr is not None
        proc.stderr.close()


def test_cli_debug_says_which_rule_refused(impl):
    for args, body in (((), b"Bad Request\n"), (("--debug",), b"Bad Request: fragment in")):
        proc, port = _serve(impl, *args)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET /#f HTTP/1.1\r\nHost: a\r\n\r\n")
                answer = read_until_closed(sock)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            assert proc.stderr is not None
            proc.stderr.close()
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert answer.partition(b"\r\n\r\n")[2].startswith(body), args


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nocolon"], "MODULE:ATTR"),
        (["no_such_module_xyz:app"], "cannot import module"),
        (["examples.hello:missing"], "has no attribute"),
        (["examples.hello:HELLO"], "is not callable"),
        (["examples.hello:app", "--port", "99999"], "port must be"),
        (["examples.hello:app", "--keepalive-timeout", "0"], "keepalive_timeout"),
        (["examples.hello:app", "--loop", "tokio"], "invalid choice"),
        (["examples.hello:app", "--max-body-size", "0"], "max_body_size must be"),
        (["examples.hello:app", "--header-timeout", "abc"], "invalid float value"),
        ([], "required: app"),
        (
            ["examples.hello:app", "--implementation", "cython", "--no-extensions"],
            "the Cython core is disabled by CYHTTP_NO_EXTENSIONS",
        ),
    ],
)
def test_cli_bad_input_gives_one_line(args, message):
    env = {}
    if "--no-extensions" in args:  # the switch, as a user sets it (not a CLI option)
        args = [arg for arg in args if arg != "--no-extensions"]
        env["CYHTTP_NO_EXTENSIONS"] = "1"
    proc = run_cli(*args, **env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("cyhttp: error: ") and proc.stderr.count("\n") == 1
    assert message in proc.stderr


def test_cli_help_states_each_default_once():
    out = run_cli("--help", COLUMNS="200").stdout
    assert "(default: None)" not in out
    assert "(default: active core)" in out
    assert re.search(r"--log-level \S+\s+logging threshold \(default: info\)", out)
    assert re.search(r"--loop \S+\s+event loop \(default: auto\)", out)


def test_cli_port_in_use(impl):
    proc, port = _serve(impl)
    try:
        clash = run_cli("examples.hello:app", "--port", str(port))
        assert clash.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in clash.stderr
        assert "Traceback" not in clash.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        assert proc.stderr is not None
        proc.stderr.close()


def test_run_says_where_it_listens(impl):
    # cyhttp.run() from a script that set up no logging reports as the CLI does.
    script = (
        "import cyhttp\n"
        "from examples.hello import app\n"
        f"cyhttp.run(app, '127.0.0.1', 0, implementation={impl!r})\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    try:
        line = proc.stderr.readline()
        match = re.search(
            r"INFO cyhttp: cyhttp \((\w+) core\) serving on http://127\.0\.0\.1:(\d+)", line
        )
        assert match and match.group(1) == impl, line
        r = requests.get(f"http://127.0.0.1:{match.group(2)}/", timeout=10)
        assert r.text == "Hello, world!"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        with proc.stderr:
            assert "shutting down" in proc.stderr.read()


@pytest.mark.parametrize("no_extensions", [False, True])
def test_version_names_every_part_and_the_core(no_extensions):
    import platform

    import httptools

    proc = run_cli("--version", CYHTTP_NO_EXTENSIONS="1" if no_extensions else "")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"cyhttp {cyhttp.__version__}"
    built = importlib.util.find_spec("cyhttp._primitives") is not None  # whatever this process uses
    expected_core = "cython" if built and not no_extensions else "python"
    assert lines[1] == f"core: {expected_core}"
    assert lines[2].startswith(f"Python {platform.python_version()} ")
    assert lines[3].startswith("uvloop ") and lines[4] == f"httptools {httptools.__version__}"
    assert re.fullmatch(r"llhttp \d+\.\d+\.\d+ \(bundled in httptools\)", lines[5])


def test_cli_serves_an_asgi_application(impl):
    proc, port = _serve(impl, app="examples.asgi_hello:app")  # interface auto, lifespan auto
    try:
        r = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert (r.status_code, r.text) == (200, "Hello, world!")  # from the lifespan state
        assert requests.get(f"http://127.0.0.1:{port}/nowhere", timeout=10).status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None
        with proc.stderr:
            assert "shutting down" in proc.stderr.read()


def test_cli_failed_lifespan_startup_exits_with_the_application_message(impl):
    result = run_cli("tests.asgi_apps:startup_fails", "--port", "0", "--implementation", impl)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == "cyhttp: error: the application failed its startup: no database at db:5432"


def test_cli_refuses_an_asgi2_application_in_one_line():
    result = run_cli("tests.asgi_apps:Asgi2", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("cyhttp: error: Asgi2 is a class: an ASGI 2 application?")


def test_cli_interface_and_lifespan_choices_are_checked():
    result = run_cli("examples.asgi_hello:app", "--interface", "cgi")
    assert result.returncode == 2 and "invalid choice: 'cgi'" in result.stderr
    # uvicorn's words: ASGI 2 is one it has and cyhttp has not.
    result = run_cli("examples.asgi_hello:app", "--interface", "asgi2")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("cyhttp: error: --interface 'asgi2' is not supported: ")
    result = run_cli("examples.asgi_hello:app", "--lifespan", "sometimes")
    assert result.returncode == 2 and "invalid choice: 'sometimes'" in result.stderr


def test_cli_proxy_settings():
    result = run_cli("examples.asgi_hello:app", "--forwarded-allow-ips", "10.0.0.0/8,proxy.local")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "cyhttp: error: forwarded_allow_ips must be '*' or IP addresses and networks "
        "separated by commas, got 'proxy.local'"
    ]
    assert "--no-proxy-headers" in run_cli("--help").stdout


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets")
def test_cli_serves_on_a_unix_socket_and_removes_it(tmp_path):
    path = str(tmp_path / "app.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyhttp", "examples.hello:app", "--uds", path],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert f"serving on unix:{path}" in proc.stderr.readline()
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(path)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n")
            assert read_until_closed(sock).endswith(b"\r\n\r\nHello, world!")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None
        proc.stderr.close()
    assert not os.path.exists(path)


def test_cli_factory(tmp_path):
    (tmp_path / "made.py").write_text(
        "from examples.asgi_hello import app as _app\n"
        "def create():\n    return _app\n"
        "def broken():\n    raise LookupError('no settings')\n"
    )
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    result = run_cli("made:broken", "--factory", **env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "cyhttp: error: the application factory made:broken failed: LookupError('no settings')"
    ]
    assert "cannot tell whether create is" in run_cli("made:create", **env).stderr
    # With --factory its application is taken; only listening fails (no such directory).
    result = run_cli(
        "made:create", "--factory", "--uds", str(tmp_path / "no-such-dir" / "s"), **env
    )
    assert result.returncode == 1
    assert "cannot listen on " + str(tmp_path / "no-such-dir" / "s") in result.stderr
