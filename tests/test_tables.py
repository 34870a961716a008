"""The shared tables: each defined once in Python (``cyhttp._wire``), and the C tables of
the compiled core (``_head.pxd``, shared by ``_head``, ``_fields`` and ``_response``)
equal to them."""

from __future__ import annotations

import re
import string

import pytest

from cyhttp import _wire, response

from .support import compiled

# RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
# "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA, written out again from the RFC's text.
RFC_TCHAR = set((string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~").encode())


def test_token_is_rfc_tchar() -> None:
    assert _wire.TOKEN == RFC_TCHAR


@pytest.mark.parametrize("byte", range(256))
def test_token_pattern_matches_the_token_table(byte: int) -> None:
    matched = re.fullmatch(_wire.TOKEN_PATTERN, chr(byte)) is not None
    assert matched == (byte in _wire.TOKEN)


def test_flag_mask_is_every_flag() -> None:
    flags = [
        _wire.FLAG_CONTENT_LENGTH,
        _wire.FLAG_CLOSE,
        _wire.FLAG_DATE,
        _wire.FLAG_SERVER,
        _wire.FLAG_STATUS_LINE,
    ]
    assert all(flag & (flag - 1) == 0 for flag in flags)  # one bit each
    assert sum(flags) == _wire.FLAG_MASK


@compiled
def test_c_tables_equal_the_python_ones() -> None:
    from cyhttp import _head

    tables = _head.tables()
    assert tables["token"] == bytes(byte in _wire.TOKEN for byte in range(256))
    assert tables["lower"] == bytes(range(256)).lower()
    # The scanner's METHOD_* index of each method is its place in SCANNED_METHODS.
    assert tables["methods"] == list(range(len(_wire.SCANNED_METHODS)))


@compiled
def test_compiled_responses_are_served_types() -> None:
    from cyhttp import _response

    assert {_response.Response, _response.StreamingResponse} <= set(response.RESPONSE_TYPES)
    assert _response.StreamingResponse in response.STREAMING_TYPES
