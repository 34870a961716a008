"""Instructions per request, counted by callgrind: stable where wall-clock timings are not.

    python -m benchmarks.instructions [--impl cython|python] [--case pipelined|post1k]

Runs the chosen core in-process on a sink transport under ``valgrind
--tool=callgrind`` twice, with two numbers of reads, and divides the difference
of the two totals by the difference in requests: start-up and import costs
cancel out. Cases: ``pipelined`` (16 GETs per read, the micro suite's handler),
``post1k`` (one POST with a 1 KiB body per read, echoed).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

CASES = {
    "pipelined": (b"GET / HTTP/1.1\r\nHost: localhost:8000\r\n\r\n" * 16, 16),
    "post1k": (
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1024\r\n\r\n" + b"x" * 1024,
        1,
    ),
}


def _serve(impl: str, case: str, reads: int) -> None:
    """The measured program: feed *reads* reads of the case to one connection."""
    import asyncio

    import cyhttp
    from cyhttp import _impl

    hello = cyhttp.Response(b"Hello, world!", content_type="text/plain")

    async def app(request: cyhttp.Request) -> cyhttp.Response:
        if request.raw_path == b"/echo":
            return cyhttp.Response(await request.body())
        return hello

    class Sink:
        def write(self, data: bytes) -> None:
            pass

        def get_extra_info(self, name: str, default: object = None) -> object:
            return ("127.0.0.1", 50000) if name == "peername" else default

        def set_write_buffer_limits(self, high: int, low: int) -> None:
            pass

        def is_closing(self) -> bool:
            return False

    data = CASES[case][0]

    async def main() -> None:
        server = cyhttp.Server(app, implementation=impl)
        protocol = _impl.protocol_class(impl)(server)
        protocol.connection_made(Sink())
        for _ in range(reads):
            buffer = protocol.get_buffer(len(data))
            buffer[: len(data)] = data
            protocol.buffer_updated(len(data))

    asyncio.run(main())


def _count(impl: str, case: str, reads: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             "-m", "benchmarks.instructions", "--serve", impl, case, str(reads)],
            check=True, capture_output=True,
        )  # fmt: skip
        with open(out) as f:
            totals = re.search(r"^summary:\s+(\d+)", f.read(), re.M)
    assert totals is not None, "callgrind wrote no summary"
    return int(totals.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="cython", choices=["cython", "python"])
    parser.add_argument("--case", default="pipelined", choices=sorted(CASES))
    parser.add_argument("--reads", type=int, nargs=2, default=[200, 1200], metavar=("FEW", "MANY"))
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        impl, case, reads = args.serve
        _serve(impl, case, int(reads))
        return
    few, many = args.reads
    per_read = CASES[args.case][1]
    extra = _count(args.impl, args.case, many) - _count(args.impl, args.case, few)
    print(f"{args.impl} {args.case}: {extra / ((many - few) * per_read):,.0f} instructions/request")


if __name__ == "__main__":
    main()
