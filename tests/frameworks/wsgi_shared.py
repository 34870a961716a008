"""What the WSGI framework applications share (``tests/test_wsgi_frameworks.py``): the
file they serve and the lines they stream."""

from __future__ import annotations

import threading
from typing import Iterator

FILE = __file__  # /file serves this module's own bytes

# Set by ``/next``, which the client asks for once it has read the first streamed line:
# a server that held the body back until its end would see no ``/next`` in time.
NEXT = threading.Event()


def lines() -> Iterator[str]:
    """The streamed body: "0\\n1\\n2\\n" if the client read the first line while the
    stream was still going."""
    yield "0\n"
    seen = NEXT.wait(10)
    NEXT.clear()
    yield "1\n" if seen else "the first line was held back\n"
    yield "2\n"
