"""``--reload``, for development: the server runs in a child process, restarted when a
watched file changes.

A child process rather than a re-import in place: a module imported again keeps the
old one's objects alive in whatever refers to them, so only a fresh interpreter is a
clean restart. The child is the same command line without ``--reload``. A child that
cannot start (a syntax error in the application) says why and exits; the watcher goes
on and tries again at the next change. Watching is ``watchfiles``' (an optional extra:
``pip install cyhttp[reload]``).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, List, Optional, Sequence

__all__ = ["CHILD", "serve_with_reload"]

log = logging.getLogger("cyhttp")

CHILD = "CYHTTP_RELOAD_CHILD"  # set in the child's environment: it serves, it does not watch
DEFAULT_INCLUDES = ("*.py",)
# Editors' and Python's own droppings, as uvicorn leaves them out.
DEFAULT_EXCLUDES = (".*", ".py[cod]", ".sw.*", "~*")


class _Filter:
    """Which changed paths restart the server: *includes* minus *excludes* (file names)."""

    def __init__(self, includes: Sequence[str], excludes: Sequence[str]) -> None:
        self.includes = tuple(includes) or DEFAULT_INCLUDES
        self.excludes = tuple(excludes) + DEFAULT_EXCLUDES

    def __call__(self, change: Any, path: str) -> bool:
        name = os.path.basename(path)
        if any(fnmatch.fnmatch(name, pattern) for pattern in self.excludes):
            return False
        return any(fnmatch.fnmatch(name, pattern) for pattern in self.includes)


def serve_with_reload(
    argv: List[str],
    dirs: Sequence[str],
    includes: Sequence[str],
    excludes: Sequence[str],
    delay: float,
) -> int:
    """Run ``python -m cyhttp ARGV`` and restart it on changes until SIGINT/SIGTERM."""
    try:
        import watchfiles
    except ImportError:
        sys.stderr.write("cyhttp: error: --reload needs watchfiles: pip install 'cyhttp[reload]'\n")
        return 2
    roots = [str(Path(d).resolve()) for d in dirs] or [os.getcwd()]
    stop = threading.Event()
    child: Optional[subprocess.Popen[bytes]] = None

    def start() -> subprocess.Popen[bytes]:
        env = dict(os.environ, **{CHILD: "1"})
        return subprocess.Popen([sys.executable, "-m", "cyhttp", *argv], env=env)

    def halt(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, halt)
    signal.signal(signal.SIGTERM, halt)
    log.info("reloading on changes in %s", ", ".join(roots))
    child = start()
    reported = False
    try:
        for changes in watchfiles.watch(
            *roots,
            watch_filter=_Filter(includes, excludes),
            debounce=max(50, int(delay * 1000)),
            stop_event=stop,
            yield_on_timeout=True,
            rust_timeout=500,
            raise_interrupt=False,
        ):
            if not changes:
                if child.poll() is not None and not reported:
                    reported = True  # it could not start (a syntax error?): say so once
                    log.warning(
                        "the server exited (status %s): waiting for a change", child.returncode
                    )
                continue
            reported = False
            names = sorted({os.path.relpath(path) for _, path in changes})
            log.warning("%s changed: restarting", ", ".join(names))
            _stop(child)
            child = start()
    finally:
        _stop(child)
    return 0


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if child.returncode not in (0, -signal.SIGTERM):
        log.warning("the server exited with status %s", child.returncode)
