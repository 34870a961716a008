"""Worker processes under load: ``python -m benchmarks.workers [--rounds N] [--duration S]``.

Serves ``examples.hello:app`` through the CLI and drives it with ``wrk -t1`` pinned to
core 0, on 127.0.0.1 only. Three parts:

- **cost**: ``--workers 1`` (one process, pinned to core 1) against ``--workers 2``
  (a supervisor and two workers on both cores, so one worker shares core 0 with
  wrk), in interleaved rounds. The figure compared is the server's CPU time per
  request (the workers' and the supervisor's, from ``/proc``), not throughput, which
  the single wrk core bounds.
- **balance**: with two workers, how the 64 kept-alive connections of ``wrk -c64``
  and the CPU time split between them, and the same with ``Connection: close`` (an
  accept per request).
- **signals**: during an 8 s ``wrk -c64`` run against ``--workers 2``, one event at
  3 s (``SIGHUP`` to the supervisor, ``kill -9`` of a worker, ``SIGTERM`` to the
  supervisor, or ``--max-requests`` recycling throughout): what wrk counts.

Writes ``benchmarks/results/workers.json`` and ``workers.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .load import CLIENT_CORE, HERE, RESULTS, _free_port, _request, cpu_seconds, machine, parse_wrk

APP = "examples.hello:app"
CLOSE = "Connection: close"


class Cluster:
    """``python -m cyhttp APP --workers N`` on a free port, on *cores*."""

    def __init__(self, workers: int, cores: str, *extra: str) -> None:
        self.port = _free_port()
        self.workers = workers
        argv = [
            "taskset", "-c", cores, sys.executable, "-m", "cyhttp", APP,
            "--port", str(self.port), "--workers", str(workers), "--log-level", "warning",
            *extra,
        ]  # fmt: skip
        self.log = open(f"/tmp/cyhttp-workers-bench-{self.port}.log", "w+")
        self.proc = subprocess.Popen(argv, cwd=HERE.parent, stderr=self.log)
        deadline = time.monotonic() + 30
        while len(self.pids()) < workers or not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {self.errors()}")
            time.sleep(0.1)
        time.sleep(1)  # one worker answered; each loads the application after its fork

    def _answers(self) -> bool:
        try:
            return _request(self.port, "GET", "/") == (200, b"Hello, world!")
        except OSError:
            return False

    def pids(self) -> list[int]:
        """The processes that serve: the workers, or the one process."""
        if self.workers == 1:
            return [self.proc.pid]
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return sorted(int(p) for p in path.read_text().split())
        except OSError:
            return []

    def errors(self) -> str:
        self.log.seek(0)
        return self.log.read()[-2000:]

    def stop(self) -> int:
        """SIGTERM to the supervisor (the PID we started): its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)
        finally:
            self.log.close()
            os.unlink(self.log.name)


def wrk(port: int, duration: int, *extra: str) -> dict[str, float]:
    argv = [
        "taskset", "-c", CLIENT_CORE, "wrk", "-t1", "-c64", f"-d{duration}s", "--timeout", "5s",
        *extra, f"http://127.0.0.1:{port}/",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    if "Requests/sec" not in done.stdout:
        raise RuntimeError(f"wrk failed: {done.stderr.strip()[:300]}")
    result = parse_wrk(done.stdout)
    kinds = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", done.stdout
    )
    for kind, count in zip(
        ("connect", "read", "write", "timeout"), kinds.groups() if kinds else "0000", strict=True
    ):
        result[kind] = float(count)
    return result


def connections(port: int) -> dict[int, int]:
    """How many established TCP connections to *port* each process holds (``ss -p``)."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    held: dict[int, int] = {}
    for pid in re.findall(r"pid=(\d+)", out):
        held[int(pid)] = held.get(int(pid), 0) + 1
    return held


def measure(cluster: Cluster, duration: int, *extra: str) -> dict[str, Any]:
    """One wrk run: its figures, the server's CPU per request, and the split per worker."""
    pids = cluster.pids()
    cpu = {pid: cpu_seconds(pid) for pid in pids}
    total = cpu_seconds(cluster.proc.pid)  # the supervisor and its workers
    held: dict[int, int] = {}

    def sample() -> None:
        time.sleep(min(1.0, duration / 2))
        held.update(connections(cluster.port))

    sampler = threading.Thread(target=sample)
    sampler.start()
    result: dict[str, Any] = wrk(cluster.port, duration, *extra)
    sampler.join()
    used = cpu_seconds(cluster.proc.pid) - total
    result["cpu_us_per_req"] = used / result["requests"] * 1e6
    result["worker_cpu_s"] = [cpu_seconds(pid) - cpu[pid] for pid in pids]
    result["worker_connections"] = [held.get(pid, 0) for pid in pids]
    return result


def imbalance(values: list[float]) -> float:
    """How much the busier of two workers did over the other, in %."""
    low, high = min(values), max(values)
    return (high / low - 1) * 100 if low else float("inf")


def cost_and_balance(rounds: int, duration: int) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {}
    one = Cluster(1, "1")
    two = Cluster(2, "0,1")
    try:
        for rnd in range(rounds):
            order = [("1 worker", one), ("2 workers", two)]
            for name, cluster in order if rnd % 2 == 0 else order[::-1]:
                for scenario, extra in (("c64", ()), ("c64-close", ("-H", CLOSE))):
                    result = measure(cluster, duration, *extra)
                    runs.setdefault(f"{name} {scenario}", []).append(result)
                    print(
                        f"round {rnd + 1} {name:9s} {scenario:9s} {result['rps']:>9,.0f} req/s "
                        f"{result['cpu_us_per_req']:6.2f} µs/req errors {result['errors']:.0f} "
                        f"cpu/worker {[round(c, 2) for c in result['worker_cpu_s']]} "
                        f"connections/worker {result['worker_connections']}",
                        flush=True,
                    )
    finally:
        one.stop()
        two.stop()
    return runs


def _kill_a_worker(cluster: Cluster) -> None:
    os.kill(cluster.pids()[0], signal.SIGKILL)


EVENTS: list[tuple[str, tuple[str, ...], Any]] = [
    ("SIGHUP to the supervisor", (), lambda c: c.proc.send_signal(signal.SIGHUP)),
    ("kill -9 of one worker", (), _kill_a_worker),
    ("SIGTERM to the supervisor", (), lambda c: c.proc.send_signal(signal.SIGTERM)),
    ("--max-requests 100000 (+ jitter 20000)", ("--max-requests", "100000",
     "--max-requests-jitter", "20000"), None),
]  # fmt: skip


def signals(duration: int) -> list[dict[str, Any]]:
    rows = []
    for name, extra, event in EVENTS:
        cluster = Cluster(2, "0,1", *extra)
        before = set(cluster.pids())
        timer = threading.Timer(3, event, (cluster,)) if event else None
        try:
            if timer:
                timer.start()
            result = wrk(cluster.port, duration)
            after = set(cluster.pids())
        finally:
            if timer:
                timer.cancel()
            status = cluster.stop()
        result.update(event=name, status=status, new=len(after - before), left=len(after))
        rows.append(result)
        print(
            f"{name}: {result['requests']:,.0f} requests, errors {result['errors']:.0f} "
            f"(connect {result['connect']:.0f}, read {result['read']:.0f}), "
            f"{len(after - before)} new workers, {len(after)} at the end, exit {status}",
            flush=True,
        )
    return rows


def markdown(
    runs: dict[str, list[dict[str, Any]]], events: list[dict[str, Any]], info: dict[str, str]
) -> str:
    med = {
        name: {k: statistics.median(r[k] for r in samples) for k in ("rps", "cpu_us_per_req")}
        for name, samples in runs.items()
    }
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, "
        f"Python {info['python']}, {info['wrk']}; {info['date']}.",
        f"`python -m cyhttp {APP}`; `wrk -t1 -c64` pinned to core {CLIENT_CORE}. One worker "
        "runs pinned to core 1; two workers run on both cores, one of them sharing core 0 "
        "with wrk, so throughput is bounded by wrk and the comparable figure is the "
        "server's CPU time per request (all its processes', from `/proc`). Medians of "
        f"{len(next(iter(runs.values())))} interleaved rounds. `close`: every request on "
        "a new connection (`Connection: close`), an accept each.",
        "",
        "| scenario | 1 worker req/s | 1 worker µs CPU/req | 2 workers req/s "
        "| 2 workers µs CPU/req | CPU/req, 2 vs 1 |",
        "|---|---|---|---|---|---|",
    ]
    for scen in ("c64", "c64-close"):
        a, b = med[f"1 worker {scen}"], med[f"2 workers {scen}"]
        ratio = (b["cpu_us_per_req"] / a["cpu_us_per_req"] - 1) * 100
        lines.append(
            f"| {scen} | {a['rps']:,.0f} | {a['cpu_us_per_req']:.2f} | {b['rps']:,.0f} "
            f"| {b['cpu_us_per_req']:.2f} | {ratio:+.1f}% |"
        )
    lines += [
        "",
        "Balance between the two workers, every round (busier over the other):",
        "",
        "| scenario | round | connections per worker | CPU s per worker | CPU imbalance | errors |",
        "|---|---|---|---|---|---|",
    ]
    for scen in ("c64", "c64-close"):
        for i, r in enumerate(runs[f"2 workers {scen}"], 1):
            conns = " / ".join(str(c) for c in r["worker_connections"])
            cpu = " / ".join(f"{c:.2f}" for c in r["worker_cpu_s"])
            lines.append(
                f"| {scen} | {i} | {conns} | {cpu} | {imbalance(r['worker_cpu_s']):.1f}% "
                f"| {r['errors']:.0f} |"
            )
    lines += [
        "",
        "Events under load (`--workers 2`, `wrk -t1 -c64 -d8s --timeout 5s`, the event at "
        "3 s): what wrk counted. wrk's errors are its socket errors (connect, read, write, "
        "timeout) and non-2xx answers.",
        "",
        "| event | requests answered | connect errors | read errors | write errors "
        "| timeouts | non-2xx | new workers | workers at the end | supervisor exit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in events:
        non2xx = row["errors"] - sum(row[k] for k in ("connect", "read", "write", "timeout"))
        lines.append(
            f"| {row['event']} | {row['requests']:,.0f} | {row['connect']:.0f} "
            f"| {row['read']:.0f} | {row['write']:.0f} | {row['timeout']:.0f} | {non2xx:.0f} "
            f"| {row['new']} | {row['left']} | {row['status']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=5, help="whole seconds per wrk run")
    args = p.parse_args(argv)
    if (os.cpu_count() or 1) < 2:
        sys.exit("this benchmark needs two cores")
    runs = cost_and_balance(args.rounds, args.duration)
    events = signals(8)
    info = machine()
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / "workers"
    stem.with_suffix(".json").write_text(
        json.dumps({"machine": info, "runs": runs, "events": events}, indent=1)
    )
    table = markdown(runs, events, info)
    stem.with_suffix(".md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
