"""WebSocket suite: ``python -m benchmarks.websocket [--rounds N] [--duration S] [--servers a,b]``.

Every server runs pinned to one core (``taskset -c 1``); the load client, a small C
program compiled at run time with gcc (``benchmarks/wsload.c``), drives it from the
other (``taskset -c 0``), on 127.0.0.1 only. The client does no masking or framing
while it runs: every frame is masked once beforehand, and each connection writes a
batch of them at once and counts the echoes, so it is not the limit (its own CPU is
reported beside the server's). Servers are started once, checked with the
``websockets`` client, then measured in interleaved rounds (each round visits every
server, in a rotated order); medians are reported.

Scenarios:

- ``echo64``: 64 connections, each writing 16 text messages of 64 bytes at a time
  and echoing them back; messages per second, and the server's CPU time per
  message (its process CPU time over the run, from ``/proc``, over the messages
  echoed).
- ``echo64-deflate``: the same where permessage-deflate is negotiated (the client
  offers what browsers offer and sends each message compressed), against the
  servers that accept it.
- ``big1m``: 8 connections, each writing two binary messages of 1 MiB at a time;
  throughput (echoed MB/s) and the server's CPU time per MiB, against a uvloop
  protocol echoing the same bytes without any framing (``raw-echo``). A
  WebSocket server echoes a message once it is whole, where the raw echo
  writes back each read at once: two messages in flight per connection keep
  both busy.

Writes ``benchmarks/results/websocket.json``, ``websocket.md`` and ``websocket.png``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .load import (
    CLIENT_CORE,
    HERE,
    RESULTS,
    SERVER_CORE,
    Server,
    _cyhttp_asgi,
    _granian,
    _has,
    _py,
    _uvicorn,
    chosen,
    cpu_seconds,
    figure,
    launch,
    machine,
    save,
    serving,
    suite_arguments,
    visits,
)

# A 64-byte text message, as a live feed would send one.
TEXT64 = b'{"type":"tick","symbol":"ACME","price":101.25,"seq":1234567890}\n'
assert len(TEXT64) == 64
BIG = bytes(range(256)) * 4096  # 1 MiB
MASK = b"\x37\xfa\x21\x3d"
KEY = base64.b64encode(b"cyhttp-benchmark").decode()  # any 16 bytes
# What Chromium and Firefox offer.
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"


@dataclass
class Scenario:
    name: str
    connections: int
    depth: int  # messages per write per connection, all in flight at once
    payload: bytes
    binary: bool = False
    deflate: bool = False  # the client offers permessage-deflate and compresses


SCENARIOS = [
    Scenario("echo64", 64, 16, TEXT64),
    Scenario("echo64-deflate", 64, 16, TEXT64, deflate=True),
    Scenario("big1m", 8, 2, BIG, binary=True),
]


@dataclass
class WsServer(Server):
    raw: bool = False  # echoes bytes: no handshake, no frames
    only: tuple[str, ...] = ()  # the scenarios it runs, if not every one it can


def all_servers(before: str | None = None) -> list[WsServer]:
    """Every server the suite knows, marked unavailable when its software is missing;
    with *before* (another checkout's interpreter), cyhttp's once more with it."""
    s = "benchmarks.servers."

    def uvicorn(ws: str) -> Any:
        return lambda p, w: [*_uvicorn(p, "ws_asgi"), "--ws", ws]

    servers = [
        WsServer("cyhttp-native", "cyhttp", lambda p, w: _py(s + "ws_cyhttp", "cython", str(p))),
        WsServer("cyhttp-asgi", "cyhttp", lambda p, w: _cyhttp_asgi(p, "ws_asgi", "cython")),
        WsServer(
            "cyhttp-native-deflate",
            "cyhttp",
            lambda p, w: _py(s + "ws_cyhttp", "cython", "deflate", str(p)),
            only=("echo64-deflate",),
        ),
        WsServer(
            "cyhttp-python",
            "cyhttp",
            lambda p, w: ["env", "CYHTTP_NO_EXTENSIONS=1", *_py(s + "ws_cyhttp", "python", str(p))],
        ),
        WsServer("uvicorn-websockets", "peer", uvicorn("websockets")),
        WsServer("uvicorn-websockets-sansio", "peer", uvicorn("websockets-sansio")),
        WsServer("uvicorn-wsproto", "peer", uvicorn("wsproto")),
        WsServer(
            "granian-asgi",
            "peer",
            lambda p, w: _granian(p, "asgi", "ws_asgi", "--loop", "uvloop", ws=True),
        ),
        WsServer("socketify", "peer", lambda p, w: _py(s + "ws_socketify", "native", str(p))),
        WsServer("socketify-asgi", "peer", lambda p, w: _py(s + "ws_socketify", "asgi", str(p))),
        WsServer("raw-echo", "ceiling", lambda p, w: _py(s + "echo_uvloop", str(p)), raw=True),
    ]
    if before:
        servers[2:2] = [
            WsServer(
                "cyhttp-native-before",
                "cyhttp",
                lambda p, w: [before, "-m", s + "ws_cyhttp", "cython", str(p)],
            ),
            WsServer(
                "cyhttp-asgi-before",
                "cyhttp",
                lambda p, w: [before, *_cyhttp_asgi(p, "ws_asgi", "cython")[1:]],
            ),
        ]
    for server in servers:
        module = server.name.split("-")[0]
        if module in ("uvicorn", "socketify") and not _has(module):
            server.available, server.why = False, f"{module} is not installed"
        if server.name == "uvicorn-wsproto" and not _has("wsproto"):
            server.available, server.why = False, "wsproto is not installed"
        if module == "granian" and shutil.which("granian") is None:
            server.available, server.why = False, "granian is not installed"
    return servers


# -- what the client sends ------------------------------------------------------------


def masked_frame(payload: bytes, binary: bool, rsv1: bool = False) -> bytes:
    """One final client frame carrying *payload*, masked (RFC 6455 §5.2-5.3)."""
    first = 0x80 | (0x40 if rsv1 else 0) | (0x2 if binary else 0x1)
    n = len(payload)
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 65536:
        head = bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + n.to_bytes(8, "big")
    key = int.from_bytes(MASK * (n // 4 + 1), "little") & ((1 << (8 * n)) - 1)
    body = (int.from_bytes(payload, "little") ^ key).to_bytes(n, "little")
    return head + MASK + body


def deflated(payload: bytes) -> bytes:
    """*payload* as one permessage-deflate message (RFC 7692 §7.2.1): a fresh raw deflate
    stream, sync-flushed, its 00 00 ff ff tail removed; valid with or without context
    takeover, so one frame serves every message."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def handshake(deflate: bool) -> bytes:
    """The client's opening handshake (RFC 6455 §4.1) for ``/ws``."""
    lines = [
        "GET /ws HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
    ]
    if deflate:
        lines.append(f"Sec-WebSocket-Extensions: {DEFLATE_OFFER}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def client_argv(
    binary: Path, server: WsServer, scenario: Scenario, port: int, workdir: Path
) -> list[str]:
    """The load client's command line for *scenario* against *server*."""
    stem = workdir / scenario.name
    if scenario.deflate:
        frame = masked_frame(deflated(scenario.payload), scenario.binary, rsv1=True)
    else:
        frame = masked_frame(scenario.payload, scenario.binary)
    if server.raw:
        stem = stem.with_name(stem.name + "-raw")
        # The raw echo sends back what it reads: the same bytes count as one message.
        Path(f"{stem}.frame").write_bytes(frame)
        hs, raw = "-", str(len(frame))
    else:
        Path(f"{stem}.frame").write_bytes(frame)
        Path(f"{stem}.hs").write_bytes(handshake(scenario.deflate))
        hs, raw = f"{stem}.hs", "0"
    return [
        "taskset", "-c", CLIENT_CORE, str(binary), str(port), str(scenario.connections),
        str(scenario.depth), hs, f"{stem}.frame", raw,
    ]  # fmt: skip


def build_client(workdir: Path) -> Path:
    """Compile the load client (gcc -O2) into *workdir*."""
    binary = workdir / "wsload"
    subprocess.run(
        ["gcc", "-O2", "-o", str(binary), str(HERE / "wsload.c")], check=True, capture_output=True
    )
    return binary


# -- servers ------------------------------------------------------------------------------


def _echoes(port: int, deflate: bool) -> bool:
    """Whether the server at *port* echoes a text and a binary message (and, with
    *deflate*, negotiates permessage-deflate), as the ``websockets`` client sees it."""
    from websockets.sync.client import connect

    try:
        with connect(
            f"ws://127.0.0.1:{port}/ws",
            compression="deflate" if deflate else None,
            max_size=None,
            open_timeout=5,
        ) as ws:
            if deflate and not ws.protocol.extensions:
                return False
            ws.send(TEXT64.decode())
            if ws.recv(timeout=5) != TEXT64.decode():
                return False
            ws.send(BIG)
            return ws.recv(timeout=10) == BIG
    except Exception as exc:  # OSError, or any of the websockets client's errors
        print(f"  check failed on {port}: {exc!r}")
        return False


def _raw_echoes(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(TEXT64)
        return sock.recv(100) == TEXT64


def start(server: WsServer, workdir: Path) -> None:
    """Start *server* pinned to the server core, wait until it listens, check its echo."""
    launch(server, workdir, lambda port: socket.create_connection(("127.0.0.1", port), 1).close())
    if server.raw:
        server.checks = {"raw": _raw_echoes(server.port)}
        return
    server.checks = {"plain": _echoes(server.port, False), "deflate": _echoes(server.port, True)}


def runs(server: WsServer, scenario: Scenario) -> bool:
    """Whether *server* takes part in *scenario*."""
    if server.only and scenario.name not in server.only:
        return False
    if server.raw:
        return server.checks.get("raw", False) and not scenario.deflate
    return server.checks.get("deflate" if scenario.deflate else "plain", False)


def measure(server: WsServer, argv: list[str], duration: float) -> dict[str, float]:
    """One run of the load client; the server's CPU per message beside its throughput."""
    assert server.process is not None
    client = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert client.stdin is not None and client.stdout is not None
    try:
        ready = client.stdout.readline().split()
        if not ready or ready[0] != "ready":
            raise RuntimeError(f"the client did not connect to {server.name}")
        time.sleep(0.2)  # the handshakes' own work is done
        before = cpu_seconds(server.process.pid)
        client.stdin.write(f"go {duration}\n")
        client.stdin.flush()
        done = client.stdout.readline().split()
        used = cpu_seconds(server.process.pid) - before
    finally:
        if client.poll() is None:
            client.kill()
        client.wait(10)
    if not done or done[0] != "done":
        raise RuntimeError(f"the client failed against {server.name}")
    messages, received = int(done[1]), int(done[2])
    elapsed, client_cpu, lost = float(done[3]), float(done[4]), int(done[5])
    return {
        "messages": messages,
        "msgs_per_s": messages / elapsed,
        "mb_per_s": received / elapsed / 1e6,
        "cpu_us_per_msg": used / messages * 1e6 if messages else 0.0,
        "server_cpu_pct": used / elapsed * 100,
        "client_cpu_pct": client_cpu / elapsed * 100,
        "lost": lost,
    }


# -- the report ---------------------------------------------------------------------------


def summarize(samples: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    """Medians per server and scenario; ``lost`` is the sum over the runs."""
    return {
        name: {
            scen: {
                **{key: statistics.median(s[key] for s in rows) for key in rows[0]},
                "lost": sum(s["lost"] for s in rows),
            }
            for scen, rows in by_scen.items()
        }
        for name, by_scen in samples.items()
    }


# The tables: scenario, what it is, the server the others are compared with, the rate
# column and its key, and the CPU column and its scale from µs per message.
TABLES = [
    (
        "echo64",
        "64-byte text echo, 64 connections, 16 messages per write",
        "cyhttp-native",
        "msgs/s",
        "msgs_per_s",
        "µs CPU/msg",
        1.0,
    ),
    (
        "echo64-deflate",
        "the same with permessage-deflate negotiated",
        "cyhttp-native-deflate",
        "msgs/s",
        "msgs_per_s",
        "µs CPU/msg",
        1.0,
    ),
    (
        "big1m",
        "1 MiB binary echo, 8 connections, two messages per write",
        "raw-echo",
        "MB/s echoed",
        "mb_per_s",
        "ms CPU/MiB",
        1e-3,
    ),
]


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base and value else "n/a"


def markdown(results: dict[str, Any]) -> str:
    info, summary = results["machine"], results["summary"]
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, "
        f"Python {info['python']}; {info['date']}.",
        f"Server on core {SERVER_CORE}, load client (`benchmarks/wsload.c`) on core "
        f"{CLIENT_CORE}; medians of {results['rounds']} interleaved rounds of "
        f"{results['duration']:g} s. `µs CPU/msg`: the server's CPU time (user + system) "
        "over the run per echoed message (`ms CPU/MiB`: per MiB echoed); `vs X`: the figure "
        "to its left over server X's; `client cpu`: the load client's share of its core. "
        "A `!` marks a result where a connection was lost.",
    ]
    for scen, title, base_name, rate, rate_key, cpu, scale in TABLES:
        base = summary.get(base_name, {}).get(scen, {})
        lines += [
            "",
            f"**`{scen}`**: {title}.",
            "",
            f"| server | {rate} | vs {base_name} | {cpu} | vs {base_name} | server cpu % "
            "| client cpu % |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, by_scen in summary.items():
            row = by_scen.get(scen)
            if row is None:
                continue
            flag = "!" if row["lost"] else ""
            lines.append(
                f"| {name} | {row[rate_key]:,.0f}{flag} "
                f"| {_ratio(row[rate_key], base.get(rate_key))} "
                f"| {row['cpu_us_per_msg'] * scale:.2f} "
                f"| {_ratio(row['cpu_us_per_msg'], base.get('cpu_us_per_msg'))} "
                f"| {row['server_cpu_pct']:.0f} | {row['client_cpu_pct']:.0f} |"
            )
    for name, why in results["skipped"].items():
        lines.append(f"\n{name}: not run ({why}).")
    return "\n".join(lines) + "\n"


def chart(summary: dict[str, Any], path: Path) -> None:
    panels = [
        ("echo64", "cpu_us_per_msg", "echo64: server µs CPU per message (lower is better)"),
        ("echo64", "msgs_per_s", "echo64: messages/s"),
        ("echo64-deflate", "cpu_us_per_msg", "echo64-deflate: µs CPU per message"),
        ("big1m", "mb_per_s", "big1m: echoed MB/s"),
    ]
    drawn = []
    for scen, key, title in panels:
        names = [n for n, row in summary.items() if scen in row]
        if names:
            drawn.append((title, names, [summary[n][scen][key] for n in names]))
    title = "cyhttp WebSocket suite (server pinned to one core, load client on the other)"
    figure(drawn, title, ("raw-echo",), path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    names = ",".join(s.name for s in SCENARIOS)
    suite_arguments(p, names, "websocket", "cyhttp-native-before and cyhttp-asgi-before")
    args = p.parse_args(argv)
    stem = RESULTS / args.output
    if args.chart_only:
        saved = json.loads(stem.with_suffix(".json").read_text())
        chart(saved["summary"], stem.with_suffix(".png"))
        return
    for tool in ("gcc", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"the WebSocket suite needs {tool} (apt-get install gcc util-linux)")
    if not _has("websockets"):
        sys.exit("the WebSocket suite checks every server with websockets (pip install '.[bench]')")
    if (os.cpu_count() or 1) < 2:
        sys.exit("the WebSocket suite needs two cores: one for the server, one for the client")
    servers = chosen(all_servers(args.before), args.servers)
    scenarios = [s for s in SCENARIOS if not args.scenarios or s.name in args.scenarios.split(",")]
    for server in servers:
        if not server.available:
            print(f"skip {server.name}: {server.why}")
    live = [s for s in servers if s.available]
    samples: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        binary = build_client(work)
        with serving(live, work, start) as peaks:
            for rnd, scenario, server in visits(live, scenarios, args.rounds, runs):
                argv = client_argv(binary, server, scenario, server.port, work)
                try:
                    result = measure(server, argv, args.duration)
                except RuntimeError as exc:  # the client could not connect, or failed
                    print(f"  {exc}; skipping {server.name} from now on")
                    server.checks = {}
                    continue
                samples.setdefault(server.name, {}).setdefault(scenario.name, []).append(result)
                print(
                    f"round {rnd + 1} {scenario.name:14s} {server.name:26s} "
                    f"{result['msgs_per_s']:>10,.0f} msg/s {result['mb_per_s']:>8,.1f} MB/s "
                    f"{result['cpu_us_per_msg']:8.2f} µs/msg client "
                    f"{result['client_cpu_pct']:.0f}%"
                    + (f" LOST {result['lost']:.0f}" if result["lost"] else ""),
                    flush=True,
                )
    summary = summarize(samples)
    for name in summary:
        summary[name]["_peak_rss_kib"] = peaks.get(name, 0)
    results = {
        "machine": machine(),
        "rounds": args.rounds,
        "duration": args.duration,
        "summary": summary,
        "runs": samples,
        "skipped": {s.name: s.why for s in servers if not s.available},
    }
    save(stem, results, markdown(results), chart)


if __name__ == "__main__":
    main()
