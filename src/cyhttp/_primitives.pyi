"""Typed face of the compiled primitives (``_primitives.pyx``): their methods are C-only.

Only the types are visible from Python; ``_primitives_py`` holds the twins with methods.
"""

from typing import Any, final

@final
class Output:
    """The bytes the connection will write next (one ``transport.write`` per read)."""

    def capacity(self) -> int:
        """The bytes of storage this buffer holds (0 while it has nothing to write)."""

@final
class Scanner:
    """Offers each head at a message boundary to ``_head.scan``, within the limits."""

    def __init__(self, buffer: memoryview, config: Any) -> None: ...

@final
class ResponseFields:
    """What the protocol serves of a response: ``read`` fills the fields, returns the status."""

@final
class FieldKeys:
    """The environ keys of well-known field names, found from a name in any case."""

    def __new__(cls, known: dict[bytes, str]) -> FieldKeys: ...
    def get(self, name: bytes) -> str | None:
        """The key of field *name* (any case), or None for a name not in the table."""

@final
class Mutex:
    """A lock, as ``threading.Lock``."""

    def acquire(self) -> bool:
        """Take the lock, waiting (without the GIL) while another thread holds it."""

    def release(self) -> None:
        """Let go of the lock (held by this thread)."""

    def __enter__(self) -> Mutex: ...
    def __exit__(self, *exc: object) -> None: ...

class Launcher:
    """The base of a handler that runs none of the application on the loop."""

class Landing:
    """The base of a future-like handler result whose response lands on the loop."""

    answer: Any
    on_done: Any
    slot: Any

@final
class Wake:
    """A pool thread's wake-up call: ``wait`` sleeps until ``give``."""

    def wait(self) -> None:
        """Sleep until :meth:`give` (at once if it was given since the last wait)."""

    def give(self) -> None:
        """Wake the thread waiting (or the next to :meth:`wait`)."""
