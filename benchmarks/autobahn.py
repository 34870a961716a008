"""The Autobahn TestSuite against cyhttp and uvicorn: the same echo application, the same cases.

Each server runs from its command line on core 1, the suite's fuzzing client (Python 2.7,
found as ``tests/test_autobahn.py`` finds it) on core 0; one server at a time. Each run's
counts are merged into ``results/autobahn.json`` and the table in ``results/autobahn.md``
is written anew from all of them, so servers can be run one invocation at a time::

    flock /work/bench.lock python -m benchmarks.autobahn --cases '12.*,13.*' \
        --server cyhttp-python-asgi --server uvicorn-websockets

The echo application is the test's (``tests.test_autobahn:native`` and ``:asgi``), with
``--ws-max-size 16777216`` and permessage-deflate on, on both servers.
"""

from __future__ import annotations

import argparse
import collections
import json
import resource
import socket
import subprocess
import sys
import time
from typing import Any

from tests.test_autobahn import _missing, fuzz

from .load import CLIENT_CORE, HERE, RESULTS, SERVER_CORE, _free_port, cpu_seconds, machine

ECHO = "tests.test_autobahn"
MAX_SIZE = str(16 << 20)
BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]


def _cyhttp(core: str, interface: str) -> list[str]:
    return [
        "cyhttp", f"{ECHO}:{interface}", "--implementation", core, "--interface", interface,
        "--ws-max-size", MAX_SIZE, "--ws-per-message-deflate", "--lifespan", "off",
        "--log-level", "warning",
    ]  # fmt: skip


def _uvicorn(ws: str) -> list[str]:
    return [
        "uvicorn", f"{ECHO}:asgi", "--ws", ws, "--ws-max-size", MAX_SIZE,
        "--ws-per-message-deflate", "true", "--lifespan", "off", "--log-level", "warning",
    ]  # fmt: skip


SERVERS = {
    "cyhttp-cython-native": _cyhttp("cython", "native"),
    "cyhttp-cython-asgi": _cyhttp("cython", "asgi"),
    "cyhttp-python-native": _cyhttp("python", "native"),
    "cyhttp-python-asgi": _cyhttp("python", "asgi"),
    "uvicorn-websockets": _uvicorn("websockets"),
    "uvicorn-wsproto": _uvicorn("wsproto"),
}


def _serving(port: int, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def run(agent: str, cases: list[str], core: str | None = None) -> dict[str, Any]:
    """The suite's verdicts on server *agent*: counts per behaviour, the cases not OK,
    and what the run took. Server and client share *core* if given (two runs at once,
    one a core), else each has its own."""
    port = _free_port()
    argv = [sys.executable, "-m", *SERVERS[agent], "--host", "127.0.0.1", "--port", str(port)]
    server_core, client_core = (core, core) if core else (SERVER_CORE, CLIENT_CORE)
    server = subprocess.Popen(["taskset", "-c", server_core, *argv], cwd=HERE.parent)
    try:
        if not _serving(port, server):
            raise SystemExit(f"{agent} did not start")
        start = time.monotonic()
        client_start = resource.getrusage(resource.RUSAGE_CHILDREN)
        results = fuzz(f"ws://127.0.0.1:{port}", agent, cases, "taskset", "-c", client_core)
        client = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds = time.monotonic() - start
        server_cpu = cpu_seconds(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    counts = collections.Counter(result["behavior"] for result in results.values())
    return {
        "counts": {behavior: counts[behavior] for behavior in BEHAVIORS},
        "not_ok": {c: r["behavior"] for c, r in sorted(results.items()) if r["behavior"] != "OK"},
        "unclean_close": sorted(c for c, r in results.items() if r["behaviorClose"] == "FAILED"),
        "seconds": round(seconds),
        # The CPU the two sides spent: what the run takes on a machine doing nothing else.
        "client_cpu": round(
            client.ru_utime + client.ru_stime - client_start.ru_utime - client_start.ru_stime
        ),
        "server_cpu": round(server_cpu),
    }


def markdown(data: dict[str, Any]) -> str:
    """The tables of every case set run so far (included by docs/websocket.md)."""
    any_run = next(iter(next(iter(data.values())).values()))
    lines = [
        "Written by `python -m benchmarks.autobahn` (autobahntestsuite under Python 2.7, its "
        "fuzzing client on core 0 and the server on core 1, or both on one core with `--core` "
        "when two runs went at once; "
        f"{any_run['machine']['cpu']}, {any_run['machine']['date']}). The same echo "
        "application on every server (`tests/test_autobahn.py`'s), messages up to 16 MiB, "
        "permessage-deflate on. `seconds`: how long the client took; `cpu`: the CPU "
        "seconds of the client and of the server (other work shared the machine: the "
        "CPU is what the run costs).",
        "",
    ]
    for cases, runs in sorted(data.items(), key=lambda item: float(item[0].split(".")[0])):
        lines += [
            f"Cases `{cases}`:",
            "",
            "| server | " + " | ".join(BEHAVIORS) + " | seconds | cpu | not OK |",
            "|---|" + "---|" * (len(BEHAVIORS) + 3),
        ]
        for agent, result in runs.items():
            counts = " | ".join(str(result["counts"][b]) for b in BEHAVIORS)
            not_ok = ", ".join(f"{c} {b}" for c, b in result["not_ok"].items()) or "-"
            cpu = f"{result.get('client_cpu', '?')} + {result.get('server_cpu', '?')}"
            lines.append(f"| {agent} | {counts} | {result['seconds']} | {cpu} | {not_ok} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="12.*,13.*", help="the suite's case patterns")
    p.add_argument("--server", action="append", choices=SERVERS, help="default: all")
    p.add_argument("--core", help="one core for server and client (to run two at once)")
    args = p.parse_args(argv)
    missing = _missing()
    if missing is not None:
        raise SystemExit(missing)
    path = RESULTS / "autobahn.json"
    for agent in args.server or SERVERS:
        result = run(agent, args.cases.split(","), args.core)
        result["machine"] = machine()
        # Read just before writing: another run may have written meanwhile.
        data = json.loads(path.read_text()) if path.exists() else {}
        data.setdefault(args.cases, {})[agent] = result
        path.write_text(json.dumps(data, indent=1) + "\n")
        (RESULTS / "autobahn.md").write_text(markdown(data))
        print(agent, result["counts"], f"{result['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
