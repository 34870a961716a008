"""The Autobahn TestSuite (``autobahntestsuite`` on PyPI, the reference WebSocket conformance
suite) against an echo application, on both cores, native and ASGI.

The suite is Python 2 code: it runs under a Python 2.7 (pyenv's here) from a directory it
was installed into with ``python2.7 -m pip install --target DIR autobahntestsuite``
(``.ci/run`` does it). ``AUTOBAHN_PYTHON`` and ``AUTOBAHN_DIR`` say where they are; without
them the test looks for pyenv's 2.7 and ``~/.cache/cyhttp-autobahn``, and skips, naming
what is missing (``CYHTTP_REQUIRE_AUTOBAHN=1``, set by CI, makes that a failure).
Case groups 1-7 (framing, pings, reserved bits, opcodes, fragmentation, UTF-8, closing)
on each core and interface; groups 12-13 (permessage-deflate) on the compiled core's
native API only, as they take the Python 2 client many minutes (``AUTOBAHN_CASES="12.*,13.*"``
runs them on all four). Any ``FAILED`` case fails the test.
``python -m benchmarks.autobahn`` runs the same cases against uvicorn too
(``benchmarks/results/autobahn.md``).
"""

from __future__ import annotations

import collections
import glob
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

import cyhttp

CASES = os.environ.get("AUTOBAHN_CASES", "1.*,2.*,3.*,4.*,5.*,6.*,7.*").split(",")
COMPRESSION = ["12.*", "13.*"]

# wstest, run with the suite's directory on the path first: zope is a namespace package,
# which only site.addsitedir sets up (a plain PYTHONPATH entry hides zope.interface).
RUNNER = """import site, sys
site.addsitedir(sys.argv.pop(1))
from autobahntestsuite.wstest import run
sys.argv[0] = "wstest"
sys.exit(run())
"""


def _python2() -> str | None:
    given = os.environ.get("AUTOBAHN_PYTHON")
    if given:
        return given
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/2.7*/bin/python2.7")))
    return found[-1] if found else None


PYTHON2 = _python2()
SUITE = os.environ.get("AUTOBAHN_DIR", os.path.expanduser("~/.cache/cyhttp-autobahn"))


def _missing() -> str | None:
    if PYTHON2 is None or not os.path.exists(PYTHON2):
        return (
            "no Python 2.7 for the Autobahn TestSuite (set AUTOBAHN_PYTHON, or pyenv install 2.7)"
        )
    if not os.path.isdir(os.path.join(SUITE, "autobahntestsuite")):
        return f"autobahntestsuite is not installed in {SUITE} (pip install --target it)"
    return None


async def echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


def native(request: cyhttp.Request) -> Any:
    return cyhttp.accept_websocket(request, echo)


async def asgi(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        key = "text" if message.get("text") is not None else "bytes"
        await send({"type": "websocket.send", key: message[key]})


OPTIONS = {"ws_max_size": 16 << 20, "ws_per_message_deflate": True, "lifespan": "off"}


def fuzz(url: str, agent: str, cases: list[str], *prefix: str) -> dict[str, Any]:
    """The suite's fuzzing client run (after *prefix*, as ``taskset -c 0``) against the
    server at *url*: its results, case by case (``index.json``)."""
    with tempfile.TemporaryDirectory() as work:
        spec = {
            "outdir": f"{work}/report",
            "servers": [{"agent": agent, "url": url}],
            "cases": cases,
            "exclude-cases": [],
            "exclude-agent-cases": {},
        }
        Path(work, "spec.json").write_text(json.dumps(spec))
        Path(work, "wstest.py").write_text(RUNNER)
        run = subprocess.run(
            [*prefix, str(PYTHON2), "wstest.py", SUITE, "-m", "fuzzingclient", "-s", "spec.json"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=3600,  # the compression cases take the Python 2 client many minutes
        )
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        return dict(json.loads(Path(work, "report", "index.json").read_text())[agent])


def check_suite(live: Any, impl: str, interface: str, cases: list[str]) -> None:
    """The suite's *cases* against the echo application: no FAILED case, none closed wrongly."""
    missing = _missing()
    if missing is not None:
        if os.environ.get("CYHTTP_REQUIRE_AUTOBAHN") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    app = native if interface == "native" else asgi
    agent = f"{impl}-{interface}"
    with live(app, **OPTIONS) as srv:
        results = fuzz(f"ws://127.0.0.1:{srv.port}", agent, cases)
    behaviors = collections.Counter(result["behavior"] for result in results.values())
    others = sorted(case for case, result in results.items() if result["behavior"] != "OK")
    print(f"Autobahn {agent}: {dict(behaviors)}; not OK: {others}")
    failed = sorted(case for case, result in results.items() if result["behavior"] == "FAILED")
    assert not failed, f"FAILED cases: {failed}"
    # Closing behaviour is judged apart from the messages.
    unclean = sorted(c for c, r in results.items() if r["behaviorClose"] == "FAILED")
    assert not unclean, f"cases closed wrongly: {unclean}"
    assert behaviors["OK"] >= 0.9 * len(results)  # the suite ran, and its cases passed


@pytest.mark.slow
@pytest.mark.parametrize("interface", ["native", "asgi"])
def test_autobahn_testsuite(live, impl, interface):
    check_suite(live, impl, interface, CASES)


@pytest.mark.slow
def test_autobahn_compression(live, impl):
    """Groups 12-13 (permessage-deflate) on one combination, the compiled core and the
    native API: they cost about nine minutes of CPU a combination, mostly the Python 2
    client's (all four, and uvicorn, in ``benchmarks/results/autobahn.md``), which CI
    affords once."""
    if impl != "cython":
        pytest.skip("groups 12-13 run on one combination: the compiled core, native")
    check_suite(live, impl, "native", COMPRESSION)
