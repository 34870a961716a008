"""The pure-Python request accessors: the twins of ``_fields.pyx`` (compiled).

The pure build's requests use these (through ``_primitives_py``); they are also the
reference the tests hold the compiled ``Headers`` and ``Query`` to.
"""

from __future__ import annotations

from typing import Iterator, List, Mapping, Optional, Tuple

__all__ = ["Headers", "Query", "RawHeaders", "decode_path"]

RawHeaders = List[Tuple[bytes, bytes]]


class Headers(Mapping[str, str]):
    """Case-insensitive, multi-valued, read-only view of request headers.

    ``headers["x"]`` gives the first value, :meth:`getall` every value in order,
    and :attr:`raw` the ``(name, value)`` byte pairs exactly as received.
    """

    __slots__ = ("_index", "raw")

    def __init__(self, raw: RawHeaders) -> None:
        self.raw = raw
        index: dict[str, list[str]] = {}
        for name, value in raw:
            index.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        self._index = index

    def __getitem__(self, name: str) -> str:
        return self._index[name.lower()][0]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def getall(self, name: str, default: Optional[List[str]] = None) -> List[str]:
        """Every value of *name*, in the order received (``default`` or ``[]`` if absent)."""
        values = self._index.get(name.lower())
        if values is None:
            return [] if default is None else default
        return list(values)

    def __repr__(self) -> str:
        return f"Headers({self.raw!r})"


class Query(Mapping[str, str]):
    """The query string as a read-only, multi-valued mapping.

    ``query["q"]`` and ``query.get("q")`` give the first value, :meth:`getall`
    every value in order; decoded as ``urllib.parse.parse_qs`` does with blank
    values kept (``+`` is a space, bad escapes stay as they are, UTF-8 errors
    become U+FFFD).
    """

    __slots__ = ("_index", "_pairs", "_string")

    def __init__(self, string: bytes) -> None:
        self._string = bytes(string)
        self._pairs: Optional[List[Tuple[str, str]]] = None
        self._index: Optional[dict[str, list[str]]] = None

    def _parsed(self) -> List[Tuple[str, str]]:
        pairs = self._pairs
        if pairs is None:
            from urllib.parse import parse_qsl  # only when a query is read: a heavy import

            # Targets are ASCII (llhttp refuses other bytes); decode like the compiled twin.
            text = self._string.decode("utf-8", "replace")
            pairs = self._pairs = parse_qsl(text, keep_blank_values=True)
        return pairs

    def _mapping(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = self._index = {}
            for name, value in self._parsed():
                index.setdefault(name, []).append(value)
        return index

    def __getitem__(self, name: str) -> str:
        return self._mapping()[name][0]

    def __contains__(self, name: object) -> bool:
        return name in self._mapping()

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def getall(self, name: str, default: Optional[List[str]] = None) -> List[str]:
        """Every value of *name*, in order (``default`` or ``[]`` if absent)."""
        values = self._mapping().get(name)
        if values is None:
            return [] if default is None else default
        return list(values)

    @property
    def pairs(self) -> List[Tuple[str, str]]:
        """Every ``(name, value)``, in order."""
        return list(self._parsed())

    def __repr__(self) -> str:
        return f"Query({self._string!r})"


def decode_path(raw_path: bytes) -> str:
    """The percent-decoded path of a request target, without the query."""
    raw = raw_path.partition(b"?")[0]
    if b"%" not in raw:
        return raw.decode("utf-8", "surrogateescape")
    from urllib.parse import unquote_to_bytes  # only when needed: a heavy import

    return unquote_to_bytes(raw).decode("utf-8", "surrogateescape")
