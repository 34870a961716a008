"""A uvicorn command line, environment or ``uvicorn.run`` call works under cyhttp unchanged
but for the program name (issue 27), and every uvicorn option is either taken or listed
with its reason in docs/uvicorn.md."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cyhttp
from cyhttp import _uvicorn, cli
from cyhttp._process import parse_env

from .support import children, cli_env, free_port, get_closing, run_cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "uvicorn.md"

APP = """
import asyncio, contextvars, os

VAR = contextvars.ContextVar("VAR")
VAR.set("import")  # in the context the server is started from


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rpartition(".")[2]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    path = scope["path"].rpartition("/")[2]  # under --root-path, path starts with it
    if path == "env":
        body = os.environ.get("GREETING", "-")
    elif path == "var":
        body = VAR.get("fresh")
    elif path == "client":
        body = scope["client"][0]
    elif path == "root":
        body = scope["root_path"]
    elif path == "slow":
        await asyncio.sleep(30)
        body = "late"
    else:
        body = "ok"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body.encode()})
"""


@pytest.fixture
def appdir(tmp_path: Path) -> Path:
    """A directory, off the import path, holding the ASGI application ``uvapp:app``."""
    (tmp_path / "uvapp.py").write_text(APP)
    return tmp_path


def _start(
    impl: str, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int, list[str]]:
    """``python -m cyhttp ARGS`` until it says where it serves: the process, its port and
    the lines it wrote before."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyhttp", *args, "--implementation", impl],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env=env or cli_env(),
    )
    assert proc.stderr is not None
    before = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        match = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
        if match:
            return proc, int(match.group(1)), before
        before.append(line)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("server did not start: " + "".join(before))


def _stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, and what the process wrote after it said where it serves."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert proc.stderr is not None
    with proc.stderr:
        return proc.stderr.read()


def _body(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]


def _one_line_error(result: subprocess.CompletedProcess[str], start: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("cyhttp: error: " + start), result.stderr


# -- the command line -----------------------------------------------------------------


def test_the_deployment_line_of_the_issue_serves(impl, appdir):
    # The issue's uvicorn line (on 127.0.0.1 and a free port rather than 0.0.0.0:8000).
    proc, port, _ = _start(
        impl,
        "uvapp:app",
        "--host", "127.0.0.1",
        "--port", "0",
        "--timeout-keep-alive", "30",
        "--timeout-graceful-shutdown", "20",
        "--limit-max-requests", "10000",
        "--app-dir", str(appdir),
        "--header", "x-served-by:api",
    )  # fmt: skip
    try:
        response = get_closing(port)
        assert response.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nx-served-by: api\r\n" in response
        assert _body(response) == b"ok"
    finally:
        _stop(proc)


@pytest.mark.parametrize(
    ("args", "path", "fields", "body"),
    [
        # uvicorn's deployment docs: behind a proxy, trusting its forwarding headers
        (
            ["--proxy-headers", "--forwarded-allow-ips", "*"],
            "/client",
            b"X-Forwarded-For: 203.0.113.9\r\n",
            b"203.0.113.9",
        ),
        (["--root-path", "/api"], "/root", b"", b"/api"),
        # uvicorn's words for what cyhttp does anyway
        (
            ["--workers", "1", "--http", "httptools", "--ws", "websockets", "--interface", "asgi3"],
            "/",
            b"",
            b"ok",
        ),
        (["--loop", "asyncio", "--lifespan", "on", "--no-access-log"], "/", b"", b"ok"),
        (["--timeout-worker-healthcheck", "10", "--ws-max-size", "16777216"], "/", b"", b"ok"),
    ],
)
def test_uvicorn_deployment_lines_serve(impl, appdir, args, path, fields, body):
    proc, port, _ = _start(impl, "uvapp:app", "--port", "0", "--app-dir", str(appdir), *args)
    try:
        assert _body(get_closing(port, path, fields)) == body
    finally:
        _stop(proc)


def test_app_dir_is_where_the_module_is_found(appdir):
    result = run_cli("uvapp:app", "--port", "0")
    assert result.returncode == 2 and "cannot import module 'uvapp'" in result.stderr
    env = cli_env(PYTHONPATH="")
    proc, port, _ = _start("python", "uvapp:app", "--port", "0", "--app-dir", str(appdir), env=env)
    try:
        assert _body(get_closing(port)) == b"ok"
    finally:
        _stop(proc)


def test_header_adds_fields_and_date_header_is_a_switch(impl, appdir):
    common = ("uvapp:app", "--port", "0", "--app-dir", str(appdir))
    proc, port, _ = _start(impl, *common, "--header", "x-a:1", "--header", "X-B: two words")
    try:
        head = get_closing(port).partition(b"\r\n\r\n")[0].split(b"\r\n")
        assert head[3:5] == [b"x-a: 1", b"X-B: two words"]
        assert head[1] == b"Server: cyhttp" and head[2].startswith(b"Date: ")
    finally:
        _stop(proc)
    proc, port, _ = _start(impl, *common, "--no-date-header", "--header", "server:api")
    try:
        head = get_closing(port).partition(b"\r\n\r\n")[0].split(b"\r\n")
        assert b"server: api" in head
        assert not [line for line in head if line.lower().startswith((b"date:", b"server: cy"))]
    finally:
        _stop(proc)


def test_a_bad_header_is_one_line():
    _one_line_error(run_cli("examples.hello:app", "--header", "novalue"), "argument --header: ")
    _one_line_error(run_cli("examples.hello:app", "--header", "a b:c"), "invalid header name")


def test_timeout_keep_alive_closes_idle_connections(impl, appdir):
    proc, port, _ = _start(
        impl, "uvapp:app", "--port", "0", "--app-dir", str(appdir), "--timeout-keep-alive", "1"
    )
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert sock.recv(4096).endswith(b"\r\n\r\nok")
            idle = time.monotonic()
            assert sock.recv(4096) == b""  # closed by the server
            assert 0.9 < time.monotonic() - idle < 4
    finally:
        _stop(proc)


def test_timeout_graceful_shutdown_bounds_the_wait(impl, appdir):
    proc, port, _ = _start(
        impl,
        "uvapp:app",
        "--port", "0",
        "--app-dir", str(appdir),
        "--timeout-graceful-shutdown", "1",
    )  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.3)  # the application is sleeping for 30 s
        stopping = time.monotonic()
        rest = _stop(proc)
        assert time.monotonic() - stopping < 5
    assert "shutdown timeout: dropping 1 connection(s)" in rest


def test_limit_max_requests_ends_the_process(impl, appdir):
    proc, port, _ = _start(
        impl, "uvapp:app", "--port", "0", "--app-dir", str(appdir), "--limit-max-requests", "3"
    )
    for _ in range(3):
        assert proc.poll() is None
        assert _body(get_closing(port)) == b"ok"
    assert proc.wait(timeout=10) == 0  # by itself, gracefully
    rest = _stop(proc)
    assert "served 3 requests (limit_max_requests): shutting down" in rest
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()


def test_limit_max_requests_jitter_spreads_the_limit():
    limits = {
        cyhttp.Server(
            lambda r: None, limit_max_requests=10, limit_max_requests_jitter=3, interface="native"
        ).app.limit
        for _ in range(200)
    }
    assert limits == {10, 11, 12, 13}


def test_env_file_sets_what_the_environment_does_not(impl, appdir):
    env_file = appdir / ".env"
    env_file.write_text('# settings\nexport GREETING="hello ${WHO}"  # greeting\nWHO=x\n')
    common = ("uvapp:app", "--port", "0", "--app-dir", str(appdir), "--env-file", str(env_file))
    proc, port, _ = _start(impl, *common, env=cli_env(WHO="world"))
    try:
        assert _body(get_closing(port, "/env")) == b"hello world"
    finally:
        _stop(proc)
    proc, port, _ = _start(impl, *common, env=cli_env(GREETING="from outside"))
    try:
        assert _body(get_closing(port, "/env")) == b"from outside"
    finally:
        _stop(proc)
    env_file.write_text("GREETING\n")
    _one_line_error(run_cli(*common), f"env_file {str(env_file)!r}: line 1: expected NAME=value")
    _one_line_error(run_cli("examples.hello:app", "--env-file", "/no/such/.env"), "env_file")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A=1\nB = two words \n", {"A": "1", "B": "two words"}),
        ("export A=x # comment\nB=a#b\n", {"A": "x", "B": "a#b"}),
        ('A=\'${X} \\n\'\nB="q\\"\\n"\n', {"A": "${X} \\n", "B": 'q"\n'}),
        ('A="one\ntwo"\nB=${A}!\n', {"A": "one\ntwo", "B": "one\ntwo!"}),
        ("A=${UNSET:-fallback}\nB=${HOME}\n", {"A": "fallback", "B": "/home/x"}),
        ("\n# only comments\n   \n", {}),
    ],
)
def test_dotenv_syntax(text, expected):
    assert parse_env(text, {"HOME": "/home/x"}) == expected


def test_dotenv_errors_name_the_line():
    with pytest.raises(ValueError, match="line 2: the quote of B is never closed"):
        parse_env("A=1\nB='open\n")
    with pytest.raises(ValueError, match="line 1: unexpected 'x' after the quote"):
        parse_env("A='q' x\n")


# -- the environment ------------------------------------------------------------------


def test_uvicorn_and_cyhttp_variables_and_the_command_line(impl, appdir):
    uvicorn_port, cyhttp_port, flag_port = free_port(), free_port(), free_port()
    env = cli_env(UVICORN_PORT=str(uvicorn_port), UVICORN_APP="uvapp:app")
    env.update(UVICORN_APP_DIR=str(appdir), UVICORN_HEADER="x-a:1 x-b:2")
    proc, port, before = _start(impl, env=env)
    try:
        assert port == uvicorn_port
        assert before[-1].strip() == (
            "INFO cyhttp: settings from the environment: UVICORN_APP, UVICORN_APP_DIR, "
            "UVICORN_HEADER, UVICORN_PORT"
        )
        assert b"\r\nx-a: 1\r\nx-b: 2\r\n" in get_closing(port)
    finally:
        _stop(proc)
    env["CYHTTP_PORT"] = str(cyhttp_port)  # cyhttp's own name wins over uvicorn's
    proc, port, _ = _start(impl, env=env)
    _stop(proc)
    assert port == cyhttp_port
    proc, port, _ = _start(impl, "--port", str(flag_port), env=env)  # the command line wins
    _stop(proc)
    assert port == flag_port


def test_boolean_variables_and_aliases_from_the_environment(impl, appdir):
    env = cli_env(
        UVICORN_ACCESS_LOG="true",
        UVICORN_TIMEOUT_KEEP_ALIVE="1",
        CYHTTP_SERVER_HEADER="off",
    )
    proc, port, _ = _start(impl, "uvapp:app", "--port", "0", "--app-dir", str(appdir), env=env)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /?q=1 HTTP/1.1\r\nHost: a\r\n\r\n")
            answer = sock.recv(4096)
            assert b"Server:" not in answer
            idle = time.monotonic()
            assert sock.recv(4096) == b""
            assert time.monotonic() - idle < 4
    finally:
        rest = _stop(proc)
    assert re.search(r'cyhttp\.access: 127\.0\.0\.1:\d+ - "GET /\?q=1 HTTP/1\.1" 200', rest)


def test_a_bad_environment_value_names_the_variable():
    result = run_cli("examples.hello:app", UVICORN_PORT="eighty")
    _one_line_error(result, "UVICORN_PORT='eighty': invalid int value: 'eighty'")
    result = run_cli("examples.hello:app", CYHTTP_LIFESPAN="sometimes")
    _one_line_error(result, "CYHTTP_LIFESPAN='sometimes': expected one of auto, on, off")


def test_web_concurrency_and_workers(impl, appdir):
    proc, port, _ = _start(
        impl, "uvapp:app", "--port", "0", "--app-dir", str(appdir), env=cli_env(WEB_CONCURRENCY="1")
    )
    try:
        assert _body(get_closing(port)) == b"ok"
    finally:
        _stop(proc)
    # As under uvicorn, WEB_CONCURRENCY is the default number of worker processes.
    proc, port, _ = _start(
        impl, "uvapp:app", "--port", "0", "--app-dir", str(appdir), env=cli_env(WEB_CONCURRENCY="2")
    )
    try:
        assert _body(get_closing(port)) == b"ok"
        deadline = time.monotonic() + 15
        while len(children(proc.pid)) != 2:
            assert time.monotonic() < deadline, children(proc.pid)
            time.sleep(0.05)
    finally:
        _stop(proc)
    result = run_cli("examples.hello:app", WEB_CONCURRENCY="two")
    _one_line_error(result, "WEB_CONCURRENCY must be a number of worker processes, got 'two'")


@pytest.mark.parametrize(
    "args",
    [
        ["--ssl-version", "5"],
        ["--http", "h11"],
        ["--http", "zttp", "--http2"],
        ["--ws", "none"],
        ["--loop", "zuvloop"],
        ["--interface", "asgi2"],
    ],
)
def test_what_cyhttp_lacks_is_refused_in_one_line(args):
    _one_line_error(run_cli("examples.hello:app", *args), f"{args[0]} ")
    assert "is not supported: " in run_cli("examples.hello:app", *args).stderr


@pytest.mark.parametrize("flag", ["--header-t", "--keepalive", "--max-body", "--port0"])
def test_no_option_is_taken_by_a_prefix(flag):
    result = run_cli("examples.hello:app", flag, "5")
    _one_line_error(result, f"unrecognized arguments: {flag} 5")


def test_help_shows_both_spellings_of_an_aliased_setting():
    out = run_cli("--help", COLUMNS="200").stdout
    # Python 3.13's argparse names the metavar once, after the last spelling.
    assert re.search(r"--keepalive-timeout( TIMEOUT)?, --timeout-keep-alive TIMEOUT", out)
    assert re.search(r"--shutdown-timeout( TIMEOUT)?, --timeout-graceful-shutdown TIMEOUT", out)
    refused = re.sub(r"\s+", "", out.partition("what cyhttp does not do yet:")[2])  # wrapped
    assert "--http," in refused and "--ws," in refused


# -- logging --------------------------------------------------------------------------


def test_use_colors_colours_the_level(impl, appdir):
    common = ("uvapp:app", "--port", "0", "--app-dir", str(appdir))
    coloured = "\x1b[32mINFO\x1b[0m cyhttp: "
    for flag, start in (("--use-colors", coloured), ("--no-use-colors", "INFO cyhttp: ")):
        proc, _, _ = _start(impl, *common, flag)
        rest = _stop(proc)
        assert rest.startswith(start + "shutting down"), rest
    proc, _, _ = _start(impl, *common)  # not a terminal: no colours
    assert "\x1b" not in _stop(proc)


def test_log_level_is_the_threshold(appdir):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyhttp", "uvapp:app", "--port", str(port),
         "--app-dir", str(appdir), "--log-level", "warning"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while True:
        try:
            assert _body(get_closing(port)) == b"ok"
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert _stop(proc) == ""  # neither "serving on" nor "shutting down"


LOG_FIELDS = "%(client)s|%(method)s|%(path)s|%(query)s|%(http_version)s|%(status)s|%(bytes)s"


def _log_configs(tmp_path: Path) -> dict[str, Path]:
    formatters = {
        "fields": {"format": "ACCESS " + LOG_FIELDS + "|%(duration)s"},
        "plain": {"format": "%(name)s: %(message)s"},
    }
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "handlers": {
            "access": {"class": "logging.StreamHandler", "formatter": "fields"},
            "plain": {"class": "logging.StreamHandler", "formatter": "plain"},
        },
        "loggers": {
            "cyhttp": {"handlers": ["plain"], "level": "INFO", "propagate": False},
            "cyhttp.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
    (tmp_path / "log.json").write_text(json.dumps(config))
    ini = (
        "[loggers]\nkeys=root,cyhttp,access\n[handlers]\nkeys=plain,access\n"
        "[formatters]\nkeys=plain,fields\n"
        "[logger_root]\nhandlers=\n"
        "[logger_cyhttp]\nqualname=cyhttp\nhandlers=plain\nlevel=INFO\npropagate=0\n"
        "[logger_access]\nqualname=cyhttp.access\nhandlers=access\nlevel=INFO\npropagate=0\n"
        "[handler_plain]\nclass=StreamHandler\nformatter=plain\nargs=(sys.stderr,)\n"
        "[handler_access]\nclass=StreamHandler\nformatter=fields\nargs=(sys.stderr,)\n"
        "[formatter_plain]\nformat=%(name)s: %(message)s\n"
        "[formatter_fields]\nformat=ACCESS " + LOG_FIELDS + "|%(duration)s\n"
    )
    (tmp_path / "log.ini").write_text(ini)
    paths = {"json": tmp_path / "log.json", "ini": tmp_path / "log.ini"}
    try:
        import yaml

        (tmp_path / "log.yaml").write_text(yaml.safe_dump(config))
        paths["yaml"] = tmp_path / "log.yaml"
    except ImportError:
        pass
    return paths


def test_log_config_routes_access_records_with_their_fields(impl, appdir):
    for kind, path in _log_configs(appdir).items():
        proc, port, _ = _start(
            impl,
            "uvapp:app",
            "--port", "0",
            "--app-dir", str(appdir),
            "--access-log",
            "--log-config", str(path),
        )  # fmt: skip
        get_closing(port, "/env?x=1")
        rest = _stop(proc)
        access = [line for line in rest.splitlines() if line.startswith("ACCESS ")]
        assert len(access) == 1, (kind, rest)
        fields = access[0][len("ACCESS ") :].split("|")
        assert re.fullmatch(r"127\.0\.0\.1:\d+", fields[0]), kind
        assert fields[1:7] == ["GET", "/env", "x=1", "1.1", "200", "1"], kind
        assert 0 < float(fields[7]) < 5, kind
        assert "cyhttp: shutting down" in rest, kind


def test_a_bad_log_config_is_one_line(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "bad.ini").write_text("[loggers]\nkeys=nothing\n")
    # Formats it does not read: neither .json nor .yaml, so INI, which they are not.
    (tmp_path / "log.toml").write_text('version = 1\n[loggers.cyhttp]\nlevel = "INFO"\n')
    (tmp_path / "log.txt").write_text("version: 1\nloggers: {}\n")
    for name in ("bad.json", "bad.ini", "missing.json", "log.toml", "log.txt"):
        result = run_cli("examples.hello:app", "--log-config", str(tmp_path / name))
        _one_line_error(result, f"log_config {str(tmp_path / name)!r}")
        if name.startswith("log."):
            assert "cannot be used: not INI (fileConfig)" in result.stderr


def test_reset_contextvars_hides_the_servers_context(impl, appdir):
    common = ("uvapp:app", "--port", "0", "--app-dir", str(appdir))
    for args, seen in (((), b"import"), (("--reset-contextvars",), b"fresh")):
        proc, port, _ = _start(impl, *common, *args)
        try:
            assert _body(get_closing(port, "/var")) == seen
        finally:
            _stop(proc)


# -- run() ----------------------------------------------------------------------------


def test_run_takes_uvicorns_keywords(impl, appdir):
    script = (
        "import cyhttp\n"
        f"cyhttp.run('uvapp:app', host='127.0.0.1', port=0, app_dir={str(appdir)!r},\n"
        "    timeout_keep_alive=1, timeout_graceful_shutdown=2, workers=1,\n"
        "    headers=[('x-served-by', 'script')], limit_max_requests=1, interface='asgi3',\n"
        "    http='httptools', ws='websockets', forwarded_allow_ips=['127.0.0.1', '::1'],\n"
        f"    log_level='info', implementation={impl!r})\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE, text=True, env=cli_env()
    )
    assert proc.stderr is not None
    with proc.stderr:
        match = re.search(r"serving on http://127\.0\.0\.1:(\d+)", proc.stderr.readline())
        assert match
        response = get_closing(int(match.group(1)))
        assert b"\r\nx-served-by: script\r\n" in response and _body(response) == b"ok"
        assert proc.wait(timeout=10) == 0  # limit_max_requests=1
        assert "served 1 requests" in proc.stderr.read()


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"ssl_version": 5}, "ssl_version 5 is not supported: OpenSSL negotiates"),
        ({"workers": 4}, "workers 4 is not supported: run() serves in this process"),
        ({"reload": True}, "reload True is not supported: run() serves in this process"),
        ({"loop": "zuvloop"}, "loop 'zuvloop' is not supported"),
        ({"timeout_keep_alive": 0}, "keepalive_timeout must be a positive number"),
    ],
)
def test_run_refuses_what_it_cannot_honour(keywords, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cyhttp.run(lambda request: None, port=0, interface="native", **keywords)


def test_run_refuses_a_setting_given_under_both_names():
    with pytest.raises(TypeError, match="keepalive_timeout is given twice"):
        cyhttp.run(lambda r: None, keepalive_timeout=3, timeout_keep_alive=4)


# -- every uvicorn option: taken, or documented as not ----------------------------------


def _documented() -> dict[str, str]:
    """docs/uvicorn.md's table: each uvicorn spelling (``--flag``, ``keyword=``) -> the
    row's last column (the difference, or why cyhttp does not take it)."""
    rows = {}
    for line in DOCS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not line.startswith("|"):
            continue
        for name in re.findall(r"`([^`]+)`", cells[0]):
            rows[name] = cells[2]
    return rows


def _taken_flags() -> set[str]:
    return set(cli._parser()._option_string_actions)


def test_every_uvicorn_option_is_taken_or_documented():
    pytest.importorskip("uvicorn")
    # The module (the package's `uvicorn.main` attribute is the click command).
    uvicorn_main = importlib.import_module("uvicorn.main")
    documented = _documented()
    taken = _taken_flags()
    missing = []
    for param in uvicorn_main.main.params:
        for flag in [*param.opts, *param.secondary_opts]:
            if not flag.startswith("--"):
                continue
            reason = documented.get(flag)
            if reason is None or (flag not in taken and "not taken" not in reason):
                missing.append(flag)
    assert not missing, f"uvicorn options neither taken nor in docs/uvicorn.md: {missing}"


def test_every_uvicorn_keyword_is_taken_or_documented():
    uvicorn = pytest.importorskip("uvicorn")
    documented = _documented()
    run_keywords = set(inspect.signature(cyhttp.run).parameters)
    missing = []
    names = set(inspect.signature(uvicorn.Config.__init__).parameters)
    names |= set(inspect.signature(uvicorn.run).parameters)
    for name in sorted(names - {"self", "app"}):
        reason = documented.get(name + "=")
        taken = name in run_keywords or name in _uvicorn.IGNORED or _translates(name)
        if reason is None or (not taken and "not taken" not in reason):
            missing.append(name)
    assert not missing, f"uvicorn keywords neither taken nor in docs/uvicorn.md: {missing}"


def _translates(name: str) -> bool:
    """Whether ``run(name=...)`` is understood: a Config field, an alias, or a setting
    refused only for values asking for what cyhttp lacks."""
    fields = set(inspect.signature(cyhttp.Config).parameters)
    return name in fields or name in _uvicorn.ALIASES or name in _uvicorn.UNSUPPORTED


def test_the_table_names_only_real_cyhttp_options():
    taken = _taken_flags()
    for line in DOCS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and line.startswith("|"):
            for flag in re.findall(r"`(--[a-z0-9-]+)", cells[1]):
                assert flag in taken, line
