"""Instructions per request, counted by callgrind: stable where wall-clock timings are not.

    python -m benchmarks.instructions [--impl cython|python] [--case CASE]

Runs the chosen core in-process on a sink transport under ``valgrind
--tool=callgrind`` twice, with two numbers of reads, and divides the difference
of the two totals by the difference in requests: start-up and import costs
cancel out. The cases are the micro suite's (``benchmarks/test_micro.py``):
``pipelined-16`` (the prebuilt hello, 16 GETs per read), ``post-1k``, the
``step-*`` cases and ``realistic``; the ASGI comparison's (``native-*``,
``asgi-*``: 16 requests per read, the loop turning between reads); and the WSGI ones
(``wsgi-hello``, ``wsgi-realistic``: 16 requests per read to the raw WSGI app, until
the pool's threads have had all 16 answered; the threads' work is counted too).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

from .test_micro import (
    CASES,
    TURNING_CASES,
    WSGI_CASES,
    _feeder,
    _turns,
    response_class,
    wsgi_reader,
)


def _tenants() -> list[object]:
    """One object of each of CPython's small-object size classes (16 to 512 bytes), to
    be held for the whole run.

    Otherwise, an object made and freed once per request that happens to be the only
    one of its size class in use (a handler's coroutine, say) empties its allocator
    pool on every request and makes it again on the next: about 95 instructions per
    request, there or not by the accident of how many long-lived objects of that size
    the process holds. One change elsewhere moved ``pipelined-16`` by 3% that way
    while its path was the same. Held tenants keep every class's pool in use, so the
    count is of the code."""
    return [object(), int("1" * 12), *(bytes(size - 33) for size in range(48, 513, 16))]


def _serve(impl: str, case: str, reads: int) -> None:
    """The measured program: feed *reads* reads of the case to one connection."""
    import asyncio

    tenants = _tenants()

    async def main() -> None:
        if case in WSGI_CASES:
            read = wsgi_reader(impl, WSGI_CASES[case])
            for _ in range(reads):
                await read()
            return
        if case in TURNING_CASES:
            make, data = TURNING_CASES[case]
            feed = _feeder(impl, make(case), data)
            loop = asyncio.get_running_loop()
            for _ in range(reads):
                loop.call_soon(feed)  # from the loop, as a read comes: not inside this Task
                await _turns()
            return
        make, data, _ = CASES[case]
        feed = _feeder(impl, make(response_class(impl)), data)
        for _ in range(reads):
            feed()

    asyncio.run(main())
    del tenants  # held until the run is over


def _count(impl: str, case: str, reads: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             "-m", "benchmarks.instructions", "--serve", impl, case, str(reads)],
            check=True, capture_output=True,
            # String hashes decide how often dict lookups collide: fixed, so runs agree.
            env=dict(os.environ, PYTHONHASHSEED="0"),
        )  # fmt: skip
        with open(out) as f:
            totals = re.search(r"^summary:\s+(\d+)", f.read(), re.M)
    assert totals is not None, "callgrind wrote no summary"
    return int(totals.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="cython", choices=["cython", "python"])
    parser.add_argument(
        "--case",
        default="pipelined-16",
        choices=sorted(CASES) + sorted(TURNING_CASES) + sorted(WSGI_CASES),
    )
    parser.add_argument("--reads", type=int, nargs=2, default=[200, 1200], metavar=("FEW", "MANY"))
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        impl, case, reads = args.serve
        _serve(impl, case, int(reads))
        return
    few, many = args.reads
    per_read = CASES[args.case][2] if args.case in CASES else 16
    extra = _count(args.impl, args.case, many) - _count(args.impl, args.case, few)
    print(f"{args.impl} {args.case}: {extra / ((many - few) * per_read):,.0f} instructions/request")


if __name__ == "__main__":
    main()
