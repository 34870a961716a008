"""Load suite: ``python -m benchmarks.load [--rounds N] [--duration S] [--servers a,b]``.

Every server runs pinned to one core (``taskset -c 1``) and ``wrk`` drives it
from the other (``taskset -c 0``), on 127.0.0.1 only. All servers are started
once, checked with a real client, then measured in interleaved rounds (each
round visits every server, in a rotated order), and the medians are reported.
Besides wrk's throughput and latency, the server's own CPU time per request
(from ``/proc``, children included) keeps results comparable when the single
wrk core is the limit, and its peak RSS shows what it costs in memory.

Writes ``benchmarks/results/load.json``, ``load.md`` and ``load.png``.

``--tls`` serves every selected server that can speak TLS twice, over plain HTTP and
over TLS (``NAME-tls``) with one certificate made by ``trustme`` for the run, and wrk
speaks https to the latter: the cost of TLS and the servers over TLS, in one run
(written to ``tls.*`` unless ``--output`` says otherwise).

``--wsgi``: the WSGI servers (a raw PEP 3333 app and a Flask one, on cyhttp's WSGI
interface, gunicorn sync and gthread, granian, bjoern, fastpysgi, and cyhttp's ASGI
interface through a2wsgi), hello and the realistic route on 64 keep-alive connections,
not pipelined, into ``wsgi.json``, ``wsgi.md`` and ``wsgi.png``; beside them, in the same
run, the floor: the same routes answered without WSGI (``FLOORS``).
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SERVER_CORE = "1"
CLIENT_CORE = "0"
HZ = os.sysconf("SC_CLK_TCK")


@dataclass
class Scenario:
    name: str
    connections: int
    path: str = "/"
    script: str | None = None
    needs: str = "hello"  # which pre-check the server must pass
    depth: int = 16  # requests per write, for the scripts that pipeline
    browser: bool = False  # browser-like requests to the realistic route (pipeline.lua)


# The realistic route: what a handler really does (path, query, a header, a JSON answer
# with headers, per request), for browser-like requests; first, because it is what counts.
SCENARIOS = [
    Scenario("realistic", 64, script="pipeline.lua", needs="realistic", browser=True),
    Scenario("realistic-c64", 64, script="pipeline.lua", needs="realistic", depth=1, browser=True),
    Scenario("c64", 64),
    Scenario("pipe16", 64, script="pipeline.lua"),
    Scenario("c1", 1),
    Scenario("post1k", 64, script="post.lua", needs="echo"),
    Scenario("get64k", 64, path="/64k", needs="big"),
]


def _py(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@dataclass
class Server:
    name: str
    kind: str  # "cyhttp", "baseline", "ceiling" or "peer"
    command: Any  # callable(port, workdir) -> argv
    available: bool = True
    why: str = ""
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    checks: dict[str, bool] = field(default_factory=dict)
    tls: Tls | None = None  # served over TLS with this certificate


@dataclass
class Tls:
    """The run's certificate: files for the servers, a context for the checks."""

    cert: str
    key: str
    client: ssl.SSLContext

    @classmethod
    def make(cls, workdir: Path) -> Tls:
        import trustme

        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        cert, key = workdir / "cert.pem", workdir / "key.pem"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))  # PKCS#8, which granian requires
        client = ssl.create_default_context()
        ca.configure_trust(client)
        return cls(str(cert), str(key), client)


# How each server is told the certificate and key: its own environment variables
# (benchmarks/servers/cyhttp_app.py reads cyhttp's CLI ones).
TLS_ENV = {
    "cyhttp": ("CYHTTP_SSL_CERTFILE", "CYHTTP_SSL_KEYFILE"),
    "uvicorn": ("UVICORN_SSL_CERTFILE", "UVICORN_SSL_KEYFILE"),
    "granian": ("GRANIAN_SSL_CERTIFICATE", "GRANIAN_SSL_KEYFILE"),
}


def _tls_family(name: str) -> str | None:
    return next((family for family in TLS_ENV if name.startswith(family)), None)


def _nginx(port: int, workdir: Path) -> list[str]:
    (workdir / "64k").write_bytes(b"x" * 65536)
    conf = workdir / "nginx.conf"
    # Started as root, nginx's worker would drop to "nobody" and lose the private temp dir.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(
        f"""
{user}
worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/body;
  proxy_temp_path {workdir}/proxy;
  fastcgi_temp_path {workdir}/fastcgi;
  uwsgi_temp_path {workdir}/uwsgi;
  scgi_temp_path {workdir}/scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    location = / {{ default_type text/plain; return 200 "Hello, world!"; }}
    location = /64k {{ default_type text/plain; alias {workdir}/64k; }}
  }}
}}
"""
    )
    return ["nginx", "-c", str(conf), "-p", str(workdir)]


def _granian(port: int, interface: str, module: str, *extra: str, ws: bool = False) -> list[str]:
    return [
        "granian", "--interface", interface, "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--runtime-threads", "1", "--ws" if ws else "--no-ws",
        "--log-level", "warning", *extra, f"benchmarks.servers.{module}:app",
    ]  # fmt: skip


def _uvicorn(port: int, module: str) -> list[str]:
    return _py(
        "uvicorn", f"benchmarks.servers.{module}:app", "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        "--lifespan", "off",
    )  # fmt: skip


def _cyhttp_asgi(port: int, module: str, core: str) -> list[str]:
    # The CLI, as a user moving from uvicorn would run it.
    return _py(
        "cyhttp", f"benchmarks.servers.{module}:app", "--host", "127.0.0.1", "--port", str(port),
        "--interface", "asgi", "--implementation", core, "--loop", "uvloop",
        "--log-level", "warning", "--lifespan", "off",
    )  # fmt: skip


# The WSGI rows: each server twice, with the raw app and (name + "-flask") the Flask one.
WSGI_APPS = {"": "wsgi_app", "-flask": "flask_app"}
# What no WSGI server can go below, measured in the same run: the same routes answered by
# a native handler on cyhttp's core (no environ, no thread: the request and the response
# alone), and nginx's static hello (no application at all; it has no realistic route).
FLOORS: dict[str, Callable[[int, Path], list[str]]] = {
    "floor-cyhttp-native": lambda p, w: _py("benchmarks.servers.cyhttp_app", "cython", str(p)),
    "floor-nginx-static": _nginx,
}
WSGI_SCENARIOS = ("c64", "realistic-c64")  # hello and the realistic route, not pipelined
_ROUTES = {"c64": "hello", "realistic-c64": "realistic"}


def _cyhttp_wsgi(port: int, module: str) -> list[str]:
    return _py(
        "cyhttp", f"benchmarks.servers.{module}:app", "--host", "127.0.0.1", "--port", str(port),
        "--interface", "wsgi", "--loop", "uvloop", "--log-level", "warning", "--lifespan", "off",
    )  # fmt: skip


def _gunicorn(port: int, module: str, worker: str) -> list[str]:
    threads = ["--threads", "4"] if worker == "gthread" else []
    return _py(
        "gunicorn", "-k", worker, "-w", "1", *threads, "-b", f"127.0.0.1:{port}",
        "--log-level", "warning", f"benchmarks.servers.{module}:app",
    )  # fmt: skip


def _a2wsgi(port: int, module: str) -> list[str]:
    # The same application through a2wsgi's ASGI adapter, served by cyhttp's ASGI core.
    attr = "flask" if module == "flask_app" else "raw"
    return _py(
        "cyhttp", f"benchmarks.servers.a2wsgi_app:{attr}", "--host", "127.0.0.1",
        "--port", str(port), "--interface", "asgi", "--loop", "uvloop",
        "--log-level", "warning", "--lifespan", "off",
    )  # fmt: skip


def wsgi_servers() -> list[Server]:
    """The WSGI rows' servers, marked unavailable when their software is missing."""
    run = "benchmarks.servers.wsgi_run"
    makers: list[tuple[str, Any, str]] = [
        ("cyhttp-wsgi", _cyhttp_wsgi, ""),
        ("gunicorn-sync", lambda p, m: _gunicorn(p, m, "sync"), "gunicorn"),
        ("gunicorn-gthread", lambda p, m: _gunicorn(p, m, "gthread"), "gunicorn"),
        ("granian-wsgi", lambda p, m: _granian(p, "wsgi", m), "granian"),
        (
            "bjoern",
            lambda p, m: _py(run, "bjoern", f"benchmarks.servers.{m}:app", str(p)),
            "bjoern",
        ),
        (
            "fastpysgi",
            lambda p, m: _py(run, "fastpysgi", f"benchmarks.servers.{m}:app", str(p)),
            "fastpysgi",
        ),
        ("cyhttp-asgi-a2wsgi", _a2wsgi, "a2wsgi"),
    ]
    servers = []
    for name, make, needs in makers:
        for suffix, module in WSGI_APPS.items():
            server = Server(name + suffix, "wsgi", lambda p, w, mk=make, m=module: mk(p, m))
            for missing in (needs, "flask" if suffix else ""):
                if missing and not _has(missing):
                    server.available, server.why = False, f"{missing} is not installed"
            servers.append(server)
    for name, command in FLOORS.items():
        floor = Server(name, "ceiling", command)
        if command is _nginx and shutil.which("nginx") is None:
            floor.available, floor.why = False, "nginx is not on PATH"
        servers.append(floor)
    return servers


def all_servers() -> list[Server]:
    """Every server the suite knows, marked unavailable when its software is missing."""
    s = "benchmarks.servers."
    servers = [
        Server("cyhttp-cython", "cyhttp", lambda p, w: _py(s + "cyhttp_app", "cython", str(p))),
        Server(
            "cyhttp-python",
            "cyhttp",
            # The whole pure-Python core: its Request, Response and core, no extension loaded.
            lambda p, w: [
                "env",
                "CYHTTP_NO_EXTENSIONS=1",
                *_py(s + "cyhttp_app", "python", str(p)),
            ],
        ),
        Server(
            "cyhttp-cython-async",
            "cyhttp",
            lambda p, w: _py(s + "cyhttp_app", "cython", "async", str(p)),
        ),
        Server("cyhttp-asgi", "cyhttp", lambda p, w: _cyhttp_asgi(p, "asgi_app", "cython")),
        Server(
            "cyhttp-asgi-python",
            "cyhttp",
            lambda p, w: ["env", "CYHTTP_NO_EXTENSIONS=1", *_cyhttp_asgi(p, "asgi_app", "python")],
        ),
        Server("cyhttp-fastapi", "cyhttp", lambda p, w: _cyhttp_asgi(p, "fastapi_app", "cython")),
        Server("httptools-protocol", "baseline", lambda p, w: _py(s + "httptools_proto", str(p))),
        Server("asyncio-streams", "baseline", lambda p, w: _py(s + "streams", str(p))),
        Server("asynchat", "baseline", lambda p, w: _py(s + "asynchat_server", str(p))),
        Server("raw-uvloop", "ceiling", lambda p, w: _py(s + "raw_uvloop", str(p))),
        Server("uvicorn", "peer", lambda p, w: _uvicorn(p, "asgi_app")),
        Server("uvicorn-fastapi", "peer", lambda p, w: _uvicorn(p, "fastapi_app")),
        Server("granian-rsgi", "peer", lambda p, w: _granian(p, "rsgi", "rsgi_app")),
        Server(
            "granian-asgi", "peer", lambda p, w: _granian(p, "asgi", "asgi_app", "--loop", "uvloop")
        ),
        Server(
            "granian-fastapi",
            "peer",
            lambda p, w: _granian(p, "asgi", "fastapi_app", "--loop", "uvloop"),
        ),
        Server("socketify", "peer", lambda p, w: _py(s + "socketify_app", str(p))),
        Server("aiohttp", "peer", lambda p, w: _py(s + "aiohttp_app", str(p))),
        Server("nginx", "peer", _nginx),
    ]
    needs = {
        "uvicorn": "uvicorn",
        "uvicorn-fastapi": "uvicorn",
        "socketify": "socketify",
        "aiohttp": "aiohttp",
    }
    for server in servers:
        if server.name.endswith("fastapi") and not _has("fastapi"):
            server.available, server.why = (
                False,
                "fastapi is not installed (pip install '.[bench]')",
            )
        module = needs.get(server.name)
        if module and not _has(module):
            server.available, server.why = (
                False,
                f"{module} is not installed (pip install '.[bench]')",
            )
        if server.name.startswith("granian") and shutil.which("granian") is None:
            server.available, server.why = (
                False,
                "granian is not installed (pip install '.[bench]')",
            )
        if server.name == "nginx" and shutil.which("nginx") is None:
            server.available, server.why = False, "nginx is not on PATH (apt-get install nginx)"
        if server.name == "asynchat" and sys.version_info >= (3, 12) and not _has("asynchat"):
            server.available, server.why = (
                False,
                "asynchat backport missing (pip install pyasynchat)",
            )
    return servers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(port: int, method: str, path: str, *more: Any, **named: Any) -> tuple[int, bytes]:
    """:func:`_exchange`'s status and body."""
    status, data, _ = _exchange(port, method, path, *more, **named)
    return status, data


def _exchange(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Any = None,
    tls: Tls | None = None,
) -> tuple[int, bytes, Any]:
    conn = (
        http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        if tls is None
        else http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=tls.client)
    )
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.headers
    finally:
        conn.close()


AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def _realistic_ok(port: int, tls: Tls | None) -> bool:
    """The realistic route answers with the same JSON and headers as everyone else."""
    status, data, headers = _exchange(
        port, "GET", "/items/42?q=abc&page=2", headers={"User-Agent": AGENT}, tls=tls
    )
    try:
        answer = json.loads(data)
    except ValueError:
        return False
    return (
        status == 200
        and answer == {"item": 42, "q": "abc", "page": 2, "agent": AGENT}
        and headers.get("Cache-Control") == "no-store"
        and headers.get("X-Item") == "42"
        and (headers.get("Content-Type") or "").startswith("application/json")
    )


def launch(
    server: Server,
    workdir: Path,
    probe: Callable[[int], object],
    env: dict[str, str] | None = None,
) -> None:
    """Start *server* pinned to the server core (with *env* added to the environment);
    wait until ``probe(port)`` succeeds (it raises ``OSError`` until the server answers)."""
    server.port = _free_port()
    own = workdir / server.name
    own.mkdir()
    argv = ["taskset", "-c", SERVER_CORE, *server.command(server.port, own)]
    log = open(own / "log", "wb")  # the child holds it; closed when we exit
    server.process = subprocess.Popen(
        argv,
        cwd=HERE.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {(own / 'log').read_text()[-2000:]}")
        try:
            probe(server.port)
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise RuntimeError(f"{server.name} did not answer on port {server.port}")


def start(server: Server, workdir: Path) -> None:
    """Start *server* pinned to the server core, wait until it answers, check its routes."""
    tls = server.tls
    env = {}
    if tls is not None:
        cert_var, key_var = TLS_ENV[_tls_family(server.name) or ""]
        env = {cert_var: tls.cert, key_var: tls.key}
    launch(server, workdir, lambda port: _request(port, "GET", "/", tls=tls), env)
    payload = b"e" * 1024
    server.checks = {
        "hello": _request(server.port, "GET", "/", tls=tls) == (200, b"Hello, world!"),
        "echo": _request(server.port, "POST", "/echo", payload, tls=tls) == (200, payload),
        "big": _request(server.port, "GET", "/64k", tls=tls) == (200, b"x" * 65536),
        "realistic": _realistic_ok(server.port, tls),
    }


@contextmanager
def serving(
    live: list[Any], workdir: Path, start_one: Callable[[Any, Path], None]
) -> Iterator[dict[str, int]]:
    """Start every server of *live* with *start_one*; stop them all when done. Yields a
    dict that holds their peak RSS (KiB) once the body has run."""
    peaks: dict[str, int] = {}
    try:
        for server in live:
            start_one(server, workdir)
            failed = [k for k, ok in server.checks.items() if not ok]
            print(
                f"started {server.name} on {server.port}"
                + (f" (fails check: {', '.join(failed)})" if failed else ""),
                flush=True,
            )
        yield peaks
        peaks.update({s.name: peak_rss_kib(s.process.pid) for s in live if s.process})
    finally:
        for server in live:
            stop(server)


def visits(
    live: list[Any], scenarios: list[Any], rounds: int, takes_part: Callable[[Any, Any], bool]
) -> Iterator[tuple[int, Any, Any]]:
    """Interleaved rounds: each round, every scenario visits every server that *takes_part*
    in it, in an order rotated by one server a round; a server that has exited is left out
    from then on. Yields (round, scenario, server)."""
    for rnd in range(rounds):
        order = live[rnd % len(live) :] + live[: rnd % len(live)]
        for scenario in scenarios:
            for server in order:
                if not takes_part(server, scenario):
                    continue
                if server.process is None or server.process.poll() is not None:
                    server.checks = {}  # it died: nothing more to measure
                    print(f"  {server.name} has exited; skipping it from now on")
                    continue
                yield rnd, scenario, server


def stop(server: Server) -> None:
    """End the server we started: its process group, by the PID we hold."""
    proc = server.process
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                pass
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of *pid* and all its descendants."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / HZ


def peak_rss_kib(pid: int) -> int:
    """Sum of the peak resident sets (VmHWM) of *pid* and its descendants."""
    total = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(out: str) -> dict[str, float]:
    """Throughput, latency percentiles and error counts from wrk's report."""
    result: dict[str, float] = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "errors": 0.0,
    }
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if match:
            result[f"p{pct}_ms"] = _ms(match.group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:
        result["errors"] += sum(int(x) for x in errors.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        result["errors"] += int(non2xx.group(1))
    return result


def measure(server: Server, scenario: Scenario, duration: int) -> dict[str, float]:
    """One wrk run against *server*; adds the server's CPU time per request."""
    assert server.process is not None
    argv = [
        "taskset",
        "-c",
        CLIENT_CORE,
        "wrk",
        "-t1",
        f"-c{scenario.connections}",
        f"-d{duration}s",
        "--latency",
    ]  # wrk takes whole seconds
    if scenario.script:
        argv += ["-s", str(HERE / scenario.script)]
    scheme = "http" if server.tls is None else "https"
    argv.append(f"{scheme}://127.0.0.1:{server.port}{scenario.path}")
    env = dict(os.environ, PIPELINE_DEPTH=str(scenario.depth))
    if scenario.browser:
        env["PIPELINE_BROWSER"] = "1"
    before = cpu_seconds(server.process.pid)
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=duration + 60)
    used = cpu_seconds(server.process.pid) - before
    if done.returncode != 0 or "Requests/sec" not in done.stdout:
        print(f"  wrk failed against {server.name}: {done.stderr.strip()[:200]}")
        return {
            "rps": 0.0,
            "requests": 0.0,
            "errors": 1.0,
            "cpu_us_per_req": 0.0,
            "server_cpu_pct": used / duration * 100,
        }
    result = parse_wrk(done.stdout)
    result["cpu_us_per_req"] = used / result["requests"] * 1e6 if result["requests"] else 0.0
    result["server_cpu_pct"] = used / duration * 100
    return result


def idle_cpu_pct(server: Server, seconds: float = 1.0) -> float:
    """CPU the server burns while nobody talks to it (busy-polling shows here)."""
    assert server.process is not None
    before = cpu_seconds(server.process.pid)
    time.sleep(seconds)
    return (cpu_seconds(server.process.pid) - before) / seconds * 100


def machine() -> dict[str, str]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk[0] if wrk else "?",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


METRICS = [
    ("rps", "req/s", "throughput"),
    ("cpu_us_per_req", "µs CPU/req", "server CPU per request"),
    ("p50_ms", "p50 ms", "median latency"),
    ("p99_ms", "p99 ms", "99th percentile latency"),
]


def summarize(runs: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    """Medians per server and scenario, and the flags of any run with errors."""
    table: dict[str, Any] = {}
    for name, scenarios in runs.items():
        table[name] = {}
        for scen, samples in scenarios.items():
            med = {
                key: statistics.median(s[key] for s in samples if key in s) for key in samples[0]
            }
            med["flagged_runs"] = sum(1 for s in samples if s["errors"] > 0)
            table[name][scen] = med
    return table


def machine_line(info: dict[str, str]) -> str:
    """The first line of a results table: where and when it was measured."""
    return (
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, "
        f"Python {info['python']}, {info['wrk']}; {info['date']}."
    )


def intro(info: dict[str, str], rounds: int, duration: float, setup: str, cells: str) -> list[str]:
    """The lines above a results table: the machine, how the load ran (*setup*, after
    the cores), and what its cells hold (*cells*)."""
    return [
        machine_line(info),
        f"Server on core {SERVER_CORE}, wrk on core {CLIENT_CORE}; {setup}medians of {rounds} "
        f"interleaved rounds of {duration:g} s. {cells} A `!` marks a result where a run had "
        "socket errors or non-2xx answers.",
        "",
    ]


def markdown(
    summary: dict[str, Any],
    servers: list[Server],
    info: dict[str, str],
    rounds: int,
    duration: float,
) -> str:
    cells = "`cpu` is the server's CPU time per request (µs); `rss` its peak resident memory (MiB)."
    lines = [
        *intro(info, rounds, duration, "", cells),
        "| server | realistic req/s/core | realistic cpu | realistic-c64 req/s "
        "| realistic-c64 cpu | c64 req/s | c64 cpu | pipe16 req/s | pipe16 cpu "
        "| pipe16 req/s/core | c1 p50 ms | c1 p99 ms | post1k req/s | get64k req/s "
        "| idle cpu % | rss MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for server in servers:
        row = summary.get(server.name)
        if row is None:
            lines.append(f"| {server.name} | {server.why or 'failed'} |" + " |" * 14)
            continue

        def cell(scen: str, key: str, fmt: str = "{:,.0f}", _row: Any = row) -> str:
            if scen not in _row:
                return "n/a"
            value = _row[scen].get(key)
            flag = "!" if _row[scen]["flagged_runs"] else ""
            return (fmt.format(value) + flag) if value is not None else "n/a"

        def per_core(scen: str, _row: Any = row) -> str:
            if scen in _row and _row[scen]["cpu_us_per_req"]:
                return f"{1e6 / _row[scen]['cpu_us_per_req']:,.0f}"
            return "n/a"

        lines.append(
            f"| {server.name} | {per_core('realistic')} "
            f"| {cell('realistic', 'cpu_us_per_req', '{:.2f}')} | {cell('realistic-c64', 'rps')} "
            f"| {cell('realistic-c64', 'cpu_us_per_req', '{:.2f}')} "
            f"| {cell('c64', 'rps')} | {cell('c64', 'cpu_us_per_req', '{:.2f}')} "
            f"| {cell('pipe16', 'rps')} | {cell('pipe16', 'cpu_us_per_req', '{:.2f}')} "
            f"| {per_core('pipe16')} | {cell('c1', 'p50_ms', '{:.3f}')} "
            f"| {cell('c1', 'p99_ms', '{:.3f}')} "
            f"| {cell('post1k', 'rps')} | {cell('get64k', 'rps')} "
            f"| {row['_idle_cpu_pct']:.1f} | {row['_peak_rss_kib'] / 1024:.1f} |"
        )
    return "\n".join(lines) + "\n"


Panel = tuple[str, list[str], list[float]]  # a chart's title, its servers, their values


def tls_markdown(summary: dict[str, Any]) -> str:
    """Over TLS: each server's CPU per request against its plain self, and cyhttp's
    against uvicorn's and granian's on the same ASGI application."""
    lines = [
        "",
        "Over TLS (the `-tls` rows), server µs CPU per request, and what TLS adds to the "
        "same server over plain HTTP:",
        "",
        "| server | pipe16 µs/req | TLS adds | realistic µs/req | TLS adds |",
        "|---|---|---|---|---|",
    ]

    def cpu(name: str, scen: str) -> float | None:
        value = summary.get(name, {}).get(scen, {}).get("cpu_us_per_req")
        return value or None

    for name in summary:
        if not name.endswith("-tls"):
            continue
        cells = []
        for scen in ("pipe16", "realistic"):
            over, plain = cpu(name, scen), cpu(name[: -len("-tls")], scen)
            cells.append(f"{over:.2f}" if over else "n/a")
            cells.append(f"{(over / plain - 1) * 100:+.0f}%" if over and plain else "n/a")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "cyhttp's ASGI core over TLS, per core (the inverse of CPU per request), as a "
        "multiple of its peers over TLS on the same ASGI application:",
        "",
        "| against | pipe16 | realistic |",
        "|---|---|---|",
    ]
    for peer in ("uvicorn-tls", "granian-asgi-tls"):
        cells = []
        for scen in ("pipe16", "realistic"):
            ours, theirs = cpu("cyhttp-asgi-tls", scen), cpu(peer, scen)
            cells.append(f"{theirs / ours:.1f}x" if ours and theirs else "n/a")
        lines.append(f"| {peer} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def wsgi_markdown(
    summary: dict[str, Any],
    servers: list[Server],
    info: dict[str, str],
    rounds: int,
    duration: float,
) -> str:
    """The WSGI table: one row per server, its raw and Flask apps side by side."""
    setup = "64 keep-alive connections, not pipelined; "
    cells = (
        "Each cell: requests/s / the server's CPU time per request (its whole process group's, µs)."
        " The `floor-` rows are no WSGI server: the same routes as a native cyhttp handler,"
        " and nginx's static hello, what serving the route costs without WSGI."
    )
    lines = [
        *intro(info, rounds, duration, setup, cells),
        "| server | raw hello | raw realistic | Flask hello | Flask realistic |",
        "|---|---:|---:|---:|---:|",
    ]
    by_name = {s.name: s for s in servers}
    for server in servers:
        if server.name.endswith("-flask"):
            continue
        cells = []
        for suffix in WSGI_APPS:
            name = server.name + suffix
            for scen in ("c64", "realistic-c64"):
                result = summary.get(name, {}).get(scen)
                if result is None:
                    why = by_name[name].why if name in by_name else ""
                    cells.append(why or ("n/a" if server.name in FLOORS else "not run"))
                    continue
                flag = "!" if result["flagged_runs"] else ""
                cells.append(
                    f"{result['rps'] / 1000:,.1f}k / {result['cpu_us_per_req']:.1f} us{flag}"
                )
        lines.append(f"| {server.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + _granian_shares(summary)


def _granian_shares(summary: dict[str, Any]) -> str:
    """Each raw row's CPU per request as a share of granian's in the same run: where the
    floors stand against a fraction of granian's (half, say), and the servers against them."""
    granian = summary.get("granian-wsgi", {})
    scens = [s for s in WSGI_SCENARIOS if granian.get(s, {}).get("cpu_us_per_req")]
    if not scens:
        return ""
    lines = [
        "",
        "The raw application's CPU per request as a share of granian-wsgi's in this run:",
        "",
        "| server | " + " | ".join(f"raw {_ROUTES[s]}" for s in scens) + " |",
        "|---|" + "---:|" * len(scens),
    ]
    for name, results in summary.items():
        if name.endswith("-flask") or name == "granian-wsgi":
            continue
        shares = [
            f"{results[s]['cpu_us_per_req'] / granian[s]['cpu_us_per_req']:.2f}"
            if s in results
            else "n/a"
            for s in scens
        ]
        lines.append(f"| {name} | " + " | ".join(shares) + " |")
    return "\n".join(lines) + "\n"


def wsgi_chart(summary: dict[str, Any], path: Path) -> None:
    names = [n for n in summary if not n.endswith("-flask")]
    panels: list[Panel] = []
    for key in ("rps", "cpu_us_per_req"):
        what = "req/s" if key == "rps" else "server µs CPU/req (lower is better)"
        for suffix in WSGI_APPS:
            for scen in WSGI_SCENARIOS:
                route = _ROUTES[scen]
                values = [summary.get(n + suffix, {}).get(scen, {}).get(key, 0) for n in names]
                label = f"{'Flask' if suffix else 'raw'} {route}: {what}"
                panels.append((label, names, values))
    title = "WSGI servers (server pinned to one core, wrk on the other, 64 connections)"
    figure(panels, title, tuple(FLOORS), path)


def figure(panels: list[Panel], title: str, greys: tuple[str, ...], path: Path) -> None:
    """Draw *panels* two a row into *path*: a bar per server, the references named in
    *greys* grey (a ceiling, a floor), cyhttp's red, the others blue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = (len(panels) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(13, 4 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (label, names, values) in zip(axes.flat[: len(panels)], panels, strict=True):
        colors = [
            "#7f7f7f" if n in greys else "#d62728" if n.startswith("cyhttp") else "#1f77b4"
            for n in names
        ]
        ax.barh(names, values, color=colors)
        ax.set_title(label, fontsize=10)
        ax.invert_yaxis()
        ax.tick_params(labelsize=8)
        for i, v in enumerate(values):
            text = "n/a" if not v else f"{v:,.2f}" if v < 100 else f"{v:,.0f}"
            ax.text(v, i, " " + text, va="center", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def suite_arguments(p: argparse.ArgumentParser, scenarios: str, output: str, before: str) -> None:
    """The options every suite takes (*scenarios*: their names, *before*: what --before adds)."""
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--servers", help="comma-separated subset (default: all available)")
    p.add_argument("--scenarios", help="comma-separated subset of " + scenarios)
    p.add_argument("--output", default=output, help="file stem under benchmarks/results/")
    p.add_argument(
        "--chart-only",
        action="store_true",
        help="redraw the chart of --output from its JSON, measuring nothing",
    )
    p.add_argument(
        "--before",
        metavar="PYTHON",
        help=f"also serve the cyhttp app with this interpreter (another checkout's virtualenv) "
        f"as {before}: a change against its base, side by side in one run",
    )


def chosen(servers: list[Any], wanted: str | None) -> list[Any]:
    """The servers named in *wanted* (all without it); exits naming any unknown one."""
    if not wanted:
        return servers
    names = wanted.split(",")
    unknown = set(names) - {s.name for s in servers}
    if unknown:
        sys.exit(f"unknown servers: {', '.join(sorted(unknown))}")
    return [s for s in servers if s.name in names]


def chart(summary: dict[str, Any], path: Path) -> None:
    names = list(summary)
    panels = [
        ("realistic", "cpu_us_per_req", "realistic: server µs CPU per request (lower is better)"),
        ("realistic-c64", "rps", "realistic-c64: req/s"),
        ("c64", "rps", "c64: req/s"),
        ("pipe16", "rps", "pipe16: req/s"),
        ("pipe16", "cpu_us_per_req", "pipe16: server µs CPU per request (lower is better)"),
        ("c64", "cpu_us_per_req", "c64: server µs CPU per request (lower is better)"),
        ("c1", "p50_ms", "c1: p50 latency ms (lower is better)"),
        ("post1k", "rps", "post1k: req/s"),
        ("get64k", "rps", "get64k: req/s"),
        (None, "_peak_rss_kib", "peak RSS MiB (lower is better)"),
    ]

    def values_of(scen: str | None, key: str) -> list[float]:
        if scen is None:
            return [summary[name][key] / 1024 for name in names]
        return [summary[name].get(scen, {}).get(key, 0) or 0 for name in names]

    # Only the scenarios this run measured.
    drawn = [(title, names, values_of(scen, key)) for scen, key, title in panels]
    figure(
        [panel for panel in drawn if any(panel[2])],
        "cyhttp load suite (server pinned to one core, wrk on the other)",
        ("raw-uvloop",),
        path,
    )


def save(
    stem: Path,
    results: dict[str, Any],
    table: str,
    draw: Callable[[dict[str, Any], Path], None] | None = None,
) -> None:
    """Write a run's figures (JSON), its table and, with *draw*, its chart under *stem*;
    show the table."""
    RESULTS.mkdir(exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1))
    stem.with_suffix(".md").write_text(table)
    if draw is not None:
        draw(results["summary"], stem.with_suffix(".png"))
    print(table)
    print(f"wrote {stem}.json, .md" + (", .png" if draw else ""))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=5, help="whole seconds per wrk run")
    names = ",".join(s.name for s in SCENARIOS)
    suite_arguments(p, names, "load", "cyhttp-cython-before and cyhttp-python-before")
    p.add_argument(
        "--wsgi",
        action="store_true",
        help="the WSGI servers, hello and realistic on 64 connections (default output: wsgi)",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        help="serve each server that can do TLS (cyhttp, uvicorn, granian) over plain HTTP "
        "and over TLS (NAME-tls), one certificate for all (needs trustme); written to tls.* "
        "unless --output says otherwise",
    )
    args = p.parse_args(argv)
    if args.output == "load" and (args.tls or args.wsgi):
        args.output = "wsgi" if args.wsgi else "tls"
    draw = wsgi_chart if args.wsgi else chart
    if args.chart_only:
        stem = RESULTS / args.output
        saved = json.loads(stem.with_suffix(".json").read_text())
        draw(saved["summary"], stem.with_suffix(".png"))
        return
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        sys.exit("the load suite needs wrk and taskset (apt-get install wrk util-linux)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("the load suite needs two cores: one for the server, one for wrk")
    servers = wsgi_servers() if args.wsgi else all_servers()
    if args.wsgi and not args.scenarios:
        args.scenarios = ",".join(WSGI_SCENARIOS)
    if args.before:
        for at, impl in enumerate(("cython", "python"), 1):
            app = [args.before, "-m", "benchmarks.servers.cyhttp_app", impl]
            servers.insert(
                at, Server(f"cyhttp-{impl}-before", "cyhttp", lambda p, w, a=app: [*a, str(p)])
            )
    servers = chosen(servers, args.servers)
    scenarios = [s for s in SCENARIOS if not args.scenarios or s.name in args.scenarios.split(",")]
    workdir = tempfile.TemporaryDirectory()
    if args.tls:
        tls = Tls.make(Path(workdir.name))
        servers = [s for s in servers if _tls_family(s.name)]
        servers = [
            variant
            for s in servers
            for variant in (s, Server(s.name + "-tls", s.kind, s.command, s.available, s.why))
        ]
        for server in servers[1::2]:
            server.tls = tls
    for server in servers:
        if not server.available:
            print(f"skip {server.name}: {server.why}")
    live = [s for s in servers if s.available]
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    idle: dict[str, float] = {}
    with workdir as tmp, serving(live, Path(tmp), start) as peaks:
        time.sleep(1)
        for server in live:
            idle[server.name] = idle_cpu_pct(server)
        # The checks a server fails keep it out of those scenarios (the raw ceiling cannot echo).
        for rnd, scenario, server in visits(
            live, scenarios, args.rounds, lambda sv, sc: bool(sv.checks.get(sc.needs))
        ):
            result = measure(server, scenario, args.duration)
            runs.setdefault(server.name, {}).setdefault(scenario.name, []).append(result)
            flag = "  FLAGGED: errors" if result["errors"] else ""
            print(
                f"round {rnd + 1} {scenario.name:7s} {server.name:20s} "
                f"{result['rps']:>12,.0f} req/s {result['cpu_us_per_req']:7.2f} µs/req{flag}",
                flush=True,
            )
    summary = summarize(runs)
    for name in summary:
        summary[name]["_idle_cpu_pct"] = idle.get(name, 0.0)
        summary[name]["_peak_rss_kib"] = peaks.get(name, 0)
    info = machine()
    results = {
        "machine": info,
        "rounds": args.rounds,
        "duration": args.duration,
        "summary": summary,
        "runs": runs,
        "skipped": {s.name: s.why for s in servers if not s.available},
    }
    table = (wsgi_markdown if args.wsgi else markdown)(
        summary, servers, info, args.rounds, args.duration
    )
    if args.tls:
        table += tls_markdown(summary)
    save(RESULTS / args.output, results, table, draw)


if __name__ == "__main__":
    main()
