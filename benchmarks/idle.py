"""Connection scale: ``python -m benchmarks.idle [--connections 5000,15000] [--idle 10]
[--protocols http,ws,ws-deflate]``.

What an idle keep-alive connection costs a server: each server runs in its own
process pinned to one core (``taskset -c 1``); client processes on the other
core (``taskset -c 0``) open N keep-alive connections that each complete one
``GET /`` and then stay open, saying nothing. Reported per server and N: the
connections held, the server's resident memory per idle connection (its RSS with
the connections idle, less its RSS warmed up before they opened, over N, in
KiB), its CPU while they sit idle (per cent of a core), and whether every one
still answers a second request afterwards (none refused, reset or timed out).

Servers: cyhttp's Cython core with a native handler and with an ASGI
application, and uvicorn (httptools, uvloop) serving the same ASGI application
when it is installed. Every server and client raises ``RLIMIT_NOFILE`` to its
hard limit; every server gets a keep-alive timeout far beyond the run and no
connection limit below N (uvicorn has none by default). ``--before PYTHON`` also
runs the cyhttp servers with another checkout's interpreter, side by side.

``--protocols`` adds idle WebSocket connections (the servers run the WebSocket
suite's echo apps, uvicorn with ``websockets``): ``ws`` connections complete the
handshake and echo one 64-byte text message instead of the ``GET``, then stay
idle (the second exchange is another echo); ``ws-deflate`` connections offer
permessage-deflate as browsers do (both sides keep their compression context)
and send that message compressed, so the zlib state of both directions is there.
Keep-alive pings are off (their interval is the keep-alive timeout), as the
idle HTTP connections are not timed out.

Writes ``benchmarks/results/idle.json`` and ``idle.md``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .load import CLIENT_CORE, RESULTS, SERVER_CORE, _free_port, _request, cpu_seconds, save
from .websocket import TEXT64, deflated, handshake, masked_frame

HERE = Path(__file__).resolve().parent
KEEPALIVE = 3600.0  # seconds: no idle connection is closed during a run
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
WAVE = 256  # connections a client has in flight at a time (the backlog stays short)
DESCRIPTOR_SLACK = 64  # descriptors a process keeps for everything but the connections
SERVERS = ("cyhttp-native", "cyhttp-asgi", "uvicorn")
PROTOCOLS = ("http", "ws", "ws-deflate")


def raise_nofile() -> int:
    """Raise this process's descriptor limit to the hard limit; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


# -- the server process ------------------------------------------------------------


def serve(kind: str, port: int, connections: int, protocol: str) -> None:
    """Run server *kind* on *port*, able to hold *connections* idle ones of *protocol*."""
    raise_nofile()
    ws = protocol != "http"
    deflate = protocol == "ws-deflate"
    if kind == "uvicorn":
        import uvicorn

        uvicorn.run(
            f"benchmarks.servers.{'ws_asgi' if ws else 'asgi_app'}:app", host="127.0.0.1",
            port=port, loop="uvloop", http="httptools", ws="websockets",
            ws_per_message_deflate=deflate, ws_ping_interval=KEEPALIVE,
            timeout_keep_alive=int(KEEPALIVE), backlog=4096, lifespan="off",
            access_log=False, log_level="warning",
        )  # fmt: skip
        return
    import cyhttp

    if kind == "native":
        if ws:
            from .servers.ws_cyhttp import app
        else:
            from .servers.cyhttp_app import app  # type: ignore[no-redef]
    elif ws:
        from .servers.ws_asgi import app  # type: ignore[no-redef]
    else:
        from .servers.asgi_app import app  # type: ignore[no-redef]
    cyhttp.run(
        app, "127.0.0.1", port, loop="uvloop", implementation="cython",
        interface="native" if kind == "native" else "asgi", lifespan="off",
        keepalive_timeout=KEEPALIVE, max_connections=connections + 1000, backlog=4096,
        ws_per_message_deflate=deflate, ws_ping_interval=KEEPALIVE,
    )  # fmt: skip


# -- the client process -------------------------------------------------------------


def _answered(data: bytearray) -> bool:
    """Whether *data* holds a whole answer (a head and its Content-Length of body)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    length = 0
    for line in bytes(data[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return len(data) >= end + 4 + length and data.startswith(b"HTTP/1.1 200")


def _switched(data: bytearray) -> bool:
    """Whether *data* holds a whole ``101`` answer to a WebSocket handshake."""
    return data.find(b"\r\n\r\n") >= 0 and data.startswith(b"HTTP/1.1 101")


def _echoed(data: bytearray) -> bool:
    """Whether *data* holds a whole data frame (the control frames before it skipped)."""
    pos = 0
    while len(data) >= pos + 2:
        length = data[pos + 1] & 0x7F
        head = 2 + (2 if length == 126 else 8 if length == 127 else 0)
        if len(data) < pos + head:
            return False
        if length >= 126:
            length = int.from_bytes(data[pos + 2 : pos + head], "big")
        if len(data) < pos + head + length:
            return False
        if data[pos] & 0x0F < 0x8:
            return True
        pos += head + length
    return False


Step = tuple[bytes, Callable[[bytearray], bool]]


def steps(protocol: str) -> list[Step]:
    """What a connection of *protocol* sends, and when its answer is whole, to open; its
    last step is what the check repeats."""
    if protocol == "http":
        return [(REQUEST, _answered)]
    deflate = protocol == "ws-deflate"
    message = masked_frame(deflated(TEXT64) if deflate else TEXT64, False, rsv1=deflate)
    return [(handshake(deflate), _switched), (message, _echoed)]


def _exchange(
    sel: selectors.BaseSelector, socks: list[socket.socket], deadline: float, step: Step
) -> int:
    """Send *step*'s bytes on every socket of *socks* (connected or connecting) and read
    the answers; the sockets that answered stay in *socks*, the others are closed.
    Returns how many failed."""
    message, answered = step
    buffers: dict[socket.socket, bytearray] = {}
    for sock in socks:
        sel.register(sock, selectors.EVENT_WRITE)
    kept: list[socket.socket] = []
    waiting = len(socks)
    while waiting and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                if sock not in buffers:
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        raise OSError(error, os.strerror(error))
                    sock.send(message)  # a few bytes: the empty send buffer takes them
                    buffers[sock] = bytearray()
                    sel.modify(sock, selectors.EVENT_READ)
                    continue
                data = sock.recv(65536)
                if not data:
                    raise ConnectionResetError("closed by the server")
                buffers[sock] += data
                if not answered(buffers[sock]):
                    continue
                kept.append(sock)
            except OSError:
                sock.close()
            sel.unregister(sock)
            waiting -= 1
    for key in list(sel.get_map().values()):  # out of time
        sel.unregister(key.fileobj)
        key.fileobj.close()  # type: ignore[union-attr]
    failed = len(socks) - len(kept)
    socks[:] = kept
    return failed


def client(port: int, count: int, protocol: str) -> None:
    """Open *count* connections of *protocol* to *port* (one GET each, or a handshake
    and an echo), then hold them for commands on stdin: ``check`` (a second GET or
    echo on each: how many still answer), ``close``."""
    raise_nofile()
    opening = steps(protocol)
    sel = selectors.DefaultSelector()
    held: list[socket.socket] = []
    failed = 0
    deadline = time.monotonic() + 300
    while len(held) + failed < count and time.monotonic() < deadline:
        wave = []
        for _ in range(min(WAVE, count - len(held) - failed)):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            wave.append(sock)
        for step in opening:
            failed += _exchange(sel, wave, deadline, step)
        held += wave
    print(f"ready {len(held)} {failed}", flush=True)
    for command in sys.stdin:
        if command.strip() == "check":
            lost = _exchange(sel, held, time.monotonic() + 120, opening[-1])
            print(f"alive {len(held)} {lost}", flush=True)
        elif command.strip() == "close":
            break
    for sock in held:  # a reset: no TIME_WAIT left behind to hold the ports
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        sock.close()


# -- the measurement ---------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """Current resident set of *pid* (VmRSS), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _spawn(argv: list[str], core: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["taskset", "-c", core, *argv], cwd=HERE.parent, text=True, start_new_session=True,
        **kwargs,
    )  # fmt: skip


def _end(proc: subprocess.Popen[str]) -> None:
    """Stop a process we started, by its PID (what it measured is already read)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _replies(clients: list[subprocess.Popen[str]], word: str) -> tuple[int, int]:
    """Sum the ``word OK FAILED`` lines of every client."""
    ok = bad = 0
    for proc in clients:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if not line or line[0] != word:
            raise RuntimeError(f"a client answered {line!r} instead of {word!r}")
        ok, bad = ok + int(line[1]), bad + int(line[2])
    return ok, bad


def _warm_ws(port: int, deflate: bool) -> None:
    """Every path an idle WebSocket's opening takes, a few times, with a real client."""
    from websockets.sync.client import connect

    for _ in range(20):
        with connect(f"ws://127.0.0.1:{port}/ws", compression="deflate" if deflate else None) as ws:
            ws.send(TEXT64.decode())
            assert ws.recv(timeout=5) == TEXT64.decode()


def measure(
    name: str,
    python: str,
    connections: int,
    idle: float,
    per_client: int,
    log: Path,
    protocol: str = "http",
) -> dict[str, float]:
    """One server with *connections* idle ones of *protocol*: what each costs, and its
    idle CPU."""
    kind = name.rpartition("-")[2] if name.startswith("cyhttp") else "uvicorn"
    port = _free_port()
    with open(log, "a") as out:
        argv = [python, "-m", "benchmarks.idle", "--serve", kind, str(port), str(connections)]
        server = _spawn(
            [*argv, protocol], SERVER_CORE, stdout=out, stderr=subprocess.STDOUT
        )  # fmt: skip
    clients: list[subprocess.Popen[str]] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}")
            try:
                _request(port, "GET", "/")
                break
            except OSError:
                time.sleep(0.1)
        for _ in range(50):  # warm: every path an idle connection's first request takes
            assert _request(port, "GET", "/") == (200, b"Hello, world!")
        if protocol != "http":
            _warm_ws(port, protocol == "ws-deflate")
        time.sleep(1)
        before = rss_kib(server.pid)
        shares = [per_client] * (connections // per_client)
        if connections % per_client:
            shares.append(connections % per_client)
        started = time.monotonic()
        for share in shares:
            argv = [sys.executable, "-m", "benchmarks.idle", "--client", str(port), str(share)]
            argv.append(protocol)
            clients.append(_spawn(argv, CLIENT_CORE, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        held, refused = _replies(clients, "ready")
        opened = time.monotonic() - started
        time.sleep(2)  # what the last reads left to do is done
        cpu = cpu_seconds(server.pid)
        time.sleep(idle)
        cpu = cpu_seconds(server.pid) - cpu
        after = rss_kib(server.pid)
        for proc in clients:
            assert proc.stdin is not None
            proc.stdin.write("check\n")
            proc.stdin.flush()
        alive, lost = _replies(clients, "alive")
        for proc in clients:
            assert proc.stdin is not None
            proc.stdin.write("close\n")
            proc.stdin.flush()
            proc.wait(60)
    finally:
        for proc in clients:
            _end(proc)
        _end(server)
    return {
        "connections": connections,
        "held": held,
        "refused": refused,
        "alive": alive,
        "lost": lost,
        "open_seconds": opened,
        "rss_before_kib": before,
        "rss_idle_kib": after,
        "kib_per_connection": (after - before) / held if held else 0.0,
        "idle_cpu_pct": cpu / idle * 100,
    }


def markdown(results: dict[str, Any], idle: float, rounds: int) -> str:
    info = results["machine"]
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, "
        f"Python {info['python']}; {info['date']}; descriptor limit {info['nofile']}.",
        f"Server on core {SERVER_CORE}, clients on core {CLIENT_CORE}; each connection "
        f"completed one `GET /` and then stayed idle. `KiB/conn`: the server's RSS with the "
        f"connections idle less its warmed-up RSS before, per connection; `idle cpu`: its CPU "
        f"over {idle:g} s of idleness; `alive`: connections that still answered a second GET "
        f"afterwards. Medians of {rounds} round(s); `vs uvicorn`: KiB/conn over uvicorn's.",
        "`+ws` rows: idle WebSocket connections instead (a handshake and one 64-byte echo, "
        "the second exchange another echo); `+ws-deflate`: with permessage-deflate "
        "negotiated, context kept on both sides; `over HTTP`: KiB/conn over the same "
        "server's idle HTTP connection.",
        "",
        "| server | N | held | alive | KiB/conn | vs uvicorn | over HTTP | idle cpu % | RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, by_server in results["summary"].items():
        for name, row in by_server.items():
            server, plus, protocol = name.partition("+")
            peer = by_server.get("uvicorn" + plus + protocol, {}).get("kib_per_connection")
            ratio = f"{row['kib_per_connection'] / peer:.2f}x" if peer else "n/a"
            http = by_server.get(server, {}).get("kib_per_connection")
            over = f"{row['kib_per_connection'] - http:+.2f}" if plus and http else "n/a"
            lines.append(
                f"| {name} | {n} | {row['held']:.0f} | {row['alive']:.0f} "
                f"| {row['kib_per_connection']:.2f} | {ratio} | {over} "
                f"| {row['idle_cpu_pct']:.2f} | {row['rss_idle_kib'] / 1024:.1f} |"
            )
    for name, why in results["skipped"].items():
        lines.append(f"| {name} | {why} |" + " |" * 7)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", default="5000,15000", help="comma-separated Ns")
    p.add_argument("--idle", type=float, default=10.0, help="seconds idle while CPU is counted")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset")
    p.add_argument("--before", metavar="PYTHON", help="also run the cyhttp servers with this")
    p.add_argument("--output", default="idle", help="file stem under benchmarks/results/")
    p.add_argument(
        "--protocols",
        default="http",
        help="comma-separated subset of " + ",".join(PROTOCOLS) + " (idle WebSockets)",
    )
    p.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--client", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        kind, port, connections, protocol = args.serve
        serve(kind, int(port), int(connections), protocol)
        return
    if args.client:
        port, count, protocol = args.client
        client(int(port), int(count), protocol)
        return
    protocols = args.protocols.split(",")
    if set(protocols) - set(PROTOCOLS):
        sys.exit(f"unknown protocols: {args.protocols}")
    nofile = raise_nofile()
    per_client = nofile - DESCRIPTOR_SLACK
    ns = [int(n) for n in args.connections.split(",")]
    reachable = [n for n in ns if n + DESCRIPTOR_SLACK <= nofile]
    if reachable != ns:
        print(f"the descriptor limit is {nofile}: the server can hold {per_client} at most")
        ns = sorted(set(reachable) | {per_client})
    names = args.servers.split(",")
    runs: list[tuple[str, str]] = [(n, sys.executable) for n in names]
    if args.before:
        runs += [(f"{n}-before", args.before) for n in names if n.startswith("cyhttp")]
    skipped = {}
    if "uvicorn" in names:
        try:
            import uvicorn  # noqa: F401
        except ImportError:
            skipped["uvicorn"] = "uvicorn is not installed (pip install uvicorn)"
            print("skip uvicorn: not installed (pip install uvicorn)")
            runs = [r for r in runs if r[0] != "uvicorn"]
    samples: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            for n in ns:
                order = runs[rnd % len(runs) :] + runs[: rnd % len(runs)]
                for (server, python), protocol in itertools.product(order, protocols):
                    name = server if protocol == "http" else f"{server}+{protocol}"
                    result = measure(
                        server.replace("-before", ""), python, n, args.idle, per_client,
                        Path(tmp) / f"{name}.log", protocol,
                    )  # fmt: skip
                    samples.setdefault(str(n), {}).setdefault(name, []).append(result)
                    print(
                        f"round {rnd + 1} N={n} {name:30s} held {result['held']:.0f} "
                        f"alive {result['alive']:.0f} {result['kib_per_connection']:.2f} KiB/conn "
                        f"idle cpu {result['idle_cpu_pct']:.2f}% "
                        f"(opened in {result['open_seconds']:.1f} s)",
                        flush=True,
                    )
    summary = {
        n: {
            name: {key: statistics.median(s[key] for s in rows) for key in rows[0]}
            for name, rows in by_server.items()
        }
        for n, by_server in samples.items()
    }
    from .load import machine

    info = machine()
    info["nofile"] = str(nofile)
    results = {
        "machine": info,
        "idle_seconds": args.idle,
        "rounds": args.rounds,
        "summary": summary,
        "runs": samples,
        "skipped": skipped,
    }
    save(RESULTS / args.output, results, markdown(results, args.idle, args.rounds))


if __name__ == "__main__":
    main()
