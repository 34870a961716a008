"""Worker processes (``--workers``) under their supervisor, through the real CLI.

Each test starts ``python -m cyhttp`` with two workers on a free port of 127.0.0.1,
talks to it over sockets, signals the supervisor and its workers by PID, and ends
every process it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .support import NGINX_CONF, children, free_port, get_closing

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux's /proc"),
]

ROOT = Path(__file__).parent


def _get(port: int, path: str = "/", timeout: float = 10) -> bytes:
    data = get_closing(port, path, timeout=timeout)
    assert data.startswith(b"HTTP/1.1 200 "), data
    return data.partition(b"\r\n\r\n")[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        # A zombie is gone for our purposes.
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:  # reaped since the signal found it (a recycled worker)
        return False


def _wait_for(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Cluster:
    """``python -m cyhttp APP --workers N`` on a free port (after *prelude*, Python code
    run first in the supervisor's process, if given)."""

    def __init__(
        self, app: str = "tests.workers_app:app", *extra: str, workers: int = 2, prelude: str = ""
    ):
        self.port = free_port()
        main = ["-m", "cyhttp"]
        if prelude:
            main = [
                "-c",
                f"{prelude}\nimport runpy\nrunpy.run_module('cyhttp', run_name='__main__')",
            ]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                *main,
                app,
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                *extra,
            ],
            cwd=ROOT.parent,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.workers = workers

    def __enter__(self) -> Cluster:
        _wait_for(lambda: len(self.pids()) == self.workers and self._answers())
        return self

    def _answers(self) -> bool:
        try:
            _get(self.port, timeout=2)
        except OSError:
            return False
        return True

    def pids(self) -> set[int]:
        return children(self.proc.pid)

    def serving_pids(self, tries: int = 60) -> set[int]:
        return {int(_get(self.port)) for _ in range(tries)}

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        finally:
            err = self.proc.stderr.read() if self.proc.stderr else ""
        return code, err

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            children = self.pids()
            self.proc.kill()
            self.proc.wait(10)
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.proc.stderr:
            self.proc.stderr.close()


def test_two_workers_share_the_socket_and_stop_gracefully():
    with Cluster() as cluster:
        workers = cluster.pids()
        assert cluster.serving_pids() <= workers
        answer: list[bytes] = []
        slow = threading.Thread(target=lambda: answer.append(_get(cluster.port, "/slow")))
        slow.start()
        time.sleep(0.3)  # the slow request is in flight
        code, err = cluster.stop()
        slow.join(10)
        assert code == 0, err
        assert answer and int(answer[0]) in workers  # answered before its worker stopped
        assert not any(_alive(pid) for pid in workers)


def test_a_burst_of_kept_alive_connections_spreads_over_the_workers():
    with Cluster() as cluster:
        _wait_for(lambda: len(cluster.serving_pids(10)) == 2)  # both have started
        conns = [
            socket.create_connection(("127.0.0.1", cluster.port), timeout=10) for _ in range(64)
        ]
        try:
            for conn in conns:
                conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            pids = [int(conn.recv(65536).rpartition(b"\r\n\r\n")[2]) for conn in conns]
        finally:
            for conn in conns:
                conn.close()
        # Each connection stays with the worker that took it: a worker that took them
        # all would serve them alone (as before: 64 and 0). Near half each; how near,
        # benchmarks/workers.py measures under wrk.
        counts = sorted(pids.count(pid) for pid in cluster.pids())
        assert len(counts) == 2 and counts[0] >= 64 // 4, counts
        assert cluster.stop()[0] == 0


def test_a_stuck_worker_holding_fewer_connections_does_not_stall_the_others():
    # Nothing else may move the counts meanwhile: no health check, no idle timeout.
    slow = ("--timeout-worker-healthcheck", "60", "--keepalive-timeout", "60")
    with Cluster("tests.workers_app:app", *slow) as cluster:
        _wait_for(lambda: len(cluster.serving_pids(10)) == 2)
        conns = [
            socket.create_connection(("127.0.0.1", cluster.port), timeout=10) for _ in range(8)
        ]
        owner = {}
        for conn in conns:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            owner[conn] = int(conn.recv(65536).rpartition(b"\r\n\r\n")[2])
        stuck = owner[conns[0]]
        for conn in conns[1:]:
            if owner[conn] == stuck:
                conn.close()  # the worker to hang keeps one connection, its sibling more
        time.sleep(0.5)
        conns[0].sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")  # blocks its loop
        time.sleep(0.3)
        # The sibling leaves new connections to the one holding fewer, sees it take
        # none, and takes them itself (long before the health check).
        for _ in range(3):
            assert int(_get(cluster.port)) != stuck
        for conn in conns:
            conn.close()


def test_a_killed_worker_is_replaced():
    with Cluster() as cluster:
        victim = min(cluster.pids())
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: len(cluster.pids()) == 2 and victim not in cluster.pids())
        assert victim not in cluster.serving_pids()
        code, err = cluster.stop()
        assert code == 0
        assert f"worker {victim} died (signal SIGKILL): replacing it" in err


def test_sighup_replaces_every_worker_without_a_failed_request():
    with Cluster() as cluster:
        old = cluster.pids()
        failures: list[BaseException] = []
        served = []
        done = threading.Event()

        def load() -> None:
            while not done.is_set():
                try:
                    served.append(int(_get(cluster.port)))
                except (OSError, AssertionError) as exc:
                    failures.append(exc)

        clients = [threading.Thread(target=load) for _ in range(4)]
        for client in clients:
            client.start()
        time.sleep(0.3)
        cluster.proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: len(cluster.pids()) == 2 and not cluster.pids() & old, 30)
        time.sleep(0.3)
        done.set()
        for client in clients:
            client.join(10)
        assert not failures, failures[:3]
        assert set(served) - old, "no new worker served"
        assert cluster.stop()[0] == 0


def test_ttin_and_ttou_change_the_number_of_workers():
    with Cluster() as cluster:
        cluster.proc.send_signal(signal.SIGTTIN)
        _wait_for(lambda: len(cluster.pids()) == 3)
        for count in (2, 1):  # one at a time: the kernel merges a signal still pending
            cluster.proc.send_signal(signal.SIGTTOU)
            _wait_for(lambda count=count: len(cluster.pids()) == count)
        assert len(cluster.serving_pids(10)) == 1
        assert cluster.stop()[0] == 0


def test_a_signal_to_a_worker_still_being_forked_is_not_the_supervisors():
    # SIGTTOU retires the newest worker with SIGTERM. Until the child has dropped the
    # supervisor's signal handlers, a signal to it runs them and writes into the wake-up
    # pipe the two share: the supervisor took the worker's SIGTERM for its own and
    # stopped everything (the test above failed so about 1 run in 10). Here each child
    # lingers in os.fork() (an at-fork hook), which holds that moment open.
    linger = "import os, time\nos.register_at_fork(after_in_child=lambda: time.sleep(0.5))"
    with Cluster(prelude=linger) as cluster:
        cluster.proc.send_signal(signal.SIGTTIN)
        _wait_for(lambda: len(cluster.pids()) == 3)
        cluster.proc.send_signal(signal.SIGTTOU)  # the third is still in its hook
        _wait_for(lambda: len(cluster.pids()) == 2 or cluster.proc.poll() is not None)
        time.sleep(0.5)  # had the supervisor taken it for its own, it would be stopping
        assert cluster.proc.poll() is None and len(cluster.pids()) == 2
        assert cluster._answers()
        assert cluster.stop()[0] == 0


def test_a_hung_worker_is_killed_and_replaced():
    with Cluster("tests.workers_app:app", "--timeout-worker-healthcheck", "1") as cluster:
        hung = threading.Thread(target=lambda: _get_quietly(cluster.port, "/hang"), daemon=True)
        hung.start()
        time.sleep(0.3)
        before = cluster.pids()
        _wait_for(lambda: len(cluster.pids()) == 2 and cluster.pids() != before, 10)
        code, err = cluster.stop()
        assert code == 0
        assert "sent no heartbeat for" in err


def test_a_worker_past_the_memory_limit_is_replaced():
    with Cluster("tests.workers_app:app", "--workers-max-rss", "100") as cluster:
        grown = int(_get(cluster.port, "/grow"))
        _get(cluster.port, "/grow")  # the other worker may have taken the first
        _wait_for(lambda: grown not in cluster.pids(), 15)
        code, err = cluster.stop()
        assert code == 0
        assert "MiB (limit 100 MiB): replacing it" in err


def test_a_failed_startup_stops_the_supervisor():
    cluster = Cluster("tests.workers_app:broken", "--interface", "asgi", "--lifespan", "on")
    try:
        code = cluster.proc.wait(30)
        err = cluster.proc.stderr.read() if cluster.proc.stderr else ""
    finally:
        cluster.__exit__()
    assert code == 1
    assert err.rstrip().splitlines()[-1] == (
        "cyhttp: error: the application failed its startup: no database at db:5432"
    )
    assert err.count("could not start") <= 2  # no restart loop


def test_workers_leave_when_the_supervisor_is_killed():
    with Cluster() as cluster:
        workers = cluster.pids()
        cluster.proc.kill()
        cluster.proc.wait(10)
        _wait_for(lambda: not any(_alive(pid) for pid in workers), 15)
        # No orphan serves: the listening socket is gone with the last process holding it.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", cluster.port), timeout=5).close()


class Load:
    """Client threads sending requests (each on a new connection) until stopped: the
    PIDs that answered, and what went wrong."""

    def __init__(self, port: int, threads: int = 4) -> None:
        self.port = port
        self.served: list[int] = []
        self.failures: list[BaseException] = []
        self._done = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                self.served.append(int(_get(self.port)))
            except (OSError, AssertionError) as exc:
                self.failures.append(exc)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join(15)


def test_max_requests_recycles_workers_under_load_without_a_failed_request():
    # gunicorn's spelling of --limit-max-requests, as an operator from gunicorn types it.
    with Cluster("tests.workers_app:app", "--max-requests", "150") as cluster:
        first = cluster.pids()
        seen: set[int] = set()

        def generations() -> int:
            seen.update(cluster.pids())
            return len(seen) // 2

        with Load(cluster.port) as load:
            # Four generations of workers, each recycled while the others serve.
            _wait_for(lambda: generations() >= 4, 60)
        code, err = cluster.stop()
    assert not load.failures, load.failures[:3]
    assert set(load.served) - first, "no new worker served"
    assert code == 0, err
    assert "served 150 requests (limit_max_requests)" in err


def test_sigterm_under_load_answers_every_request_in_flight():
    with Cluster() as cluster:
        workers = cluster.pids()
        answers: list[bytes] = []
        slow = [
            threading.Thread(target=lambda: answers.append(_get(cluster.port, "/slow")))
            for _ in range(6)
        ]
        with Load(cluster.port) as load:
            for thread in slow:
                thread.start()
            time.sleep(0.5)  # the slow requests are in flight, the load goes on
            code, err = cluster.stop()
            for thread in slow:
                thread.join(10)
        assert code == 0, err
        # Each slow request was answered by the worker that took it, before it stopped.
        assert len(answers) == 6 and {int(a) for a in answers} <= workers
        assert load.served and not any(_alive(pid) for pid in workers)


@pytest.mark.parametrize("value", ["two", "-1"])
def test_a_bad_number_of_workers_is_one_line(value):
    proc = subprocess.run(
        [sys.executable, "-m", "cyhttp", "tests.workers_app:app", "--workers", value],
        cwd=ROOT.parent,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"cyhttp: error: argument --workers: not a number of workers: {value!r} (see cyhttp --help)"
    ]


def _get_quietly(port: int, path: str) -> None:
    try:
        _get(port, path, timeout=20)
    except (OSError, AssertionError):
        pass


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_behind_nginx_on_a_unix_socket(tmp_path):
    uds = str(tmp_path / "app.sock")
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=tmp_path, port=port, uds=uds))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyhttp", "tests.workers_app:app", "--uds", uds, "--workers", "2"],
        cwd=ROOT.parent,
        stderr=subprocess.PIPE,
        text=True,
    )
    nginx = None
    try:
        _wait_for(lambda: os.path.exists(uds) and len(children(proc.pid)) == 2)
        nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp_path)])
        pids: set[int] = set()
        deadline = time.monotonic() + 15
        while len(pids) < 2:
            assert time.monotonic() < deadline, f"one worker answered: {pids}"
            try:
                pids.add(int(_get(port)))
            except (OSError, AssertionError, ValueError):
                time.sleep(0.05)
        assert pids <= children(proc.pid)
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        if proc.stderr:
            proc.stderr.close()
    assert not os.path.exists(uds)  # the supervisor removed its socket file
