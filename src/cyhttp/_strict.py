"""The request checks cyhttp adds to llhttp's, shared by both cores.

llhttp, even with no lenient flag, accepts a few things RFC 9110/9112 refuse
(a request line with several spaces or another protocol than HTTP, a target
with a fragment, ``*`` for any method, a Host that is no ``host[:port]``,
codings other than ``chunked``) and knows methods that are not HTTP (RTSP's,
Icecast's ``SOURCE``). Each function here answers with the status to refuse
with, or 0. They run on the httptools path only: the compiled core's head
scanner accepts nothing they would refuse.
"""

from __future__ import annotations

import re

# RFC 9110 §5.6.2 tchar.
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

# Methods of the IANA HTTP Method Registry that llhttp parses (RFC 9110, 5789,
# 4918 and the WebDAV family, 3253, 3744, 4791, 5323, 5842, 2068's LINK/UNLINK,
# and QUERY). CONNECT is registered but cyhttp is no proxy. Anything else llhttp
# knows (RTSP's DESCRIBE..., SSDP's M-SEARCH, SOURCE, PURGE) gets 501.
HTTP_METHODS = frozenset(
    """GET HEAD POST PUT DELETE OPTIONS TRACE PATCH QUERY PROPFIND PROPPATCH MKCOL COPY
    MOVE LOCK UNLOCK SEARCH BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE
    MKCALENDAR LINK UNLINK""".split()
)

# RFC 9110 §6.5.1: fields that frame, route or authenticate a message, or that must be
# known before its content, have no meaning in a trailer section; a request carrying
# one there is refused rather than handed on.
FORBIDDEN_TRAILERS = frozenset(
    b"""host content-length transfer-encoding trailer te connection keep-alive upgrade
    proxy-connection expect authorization proxy-authorization""".split()
)

_DIGITS = frozenset(b"0123456789")
# What a plain reg-name holds (RFC 3986 unreserved): checked with bytes.translate.
_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_SCHEME = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*:")
# RFC 3986 §3.2.2: reg-name (unreserved, pct-encoded, sub-delims; IPv4 is a reg-name
# too), IP-literal (IPv6 or IPvFuture in brackets), then an optional port.
_HOST = re.compile(
    rb"""(?:
        (?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*
        | \[(?:[0-9A-Fa-f:.]+|[vV][0-9A-Fa-f]+\.[A-Za-z0-9\-._~!$&'()*+,;=:]+)\]
    )(?::[0-9]*)?\Z""",
    re.VERBOSE,
)


def is_token(data: bytes) -> bool:
    """Whether *data* is a non-empty RFC 9110 token."""
    return bool(data) and _TOKEN.issuperset(data)


def request_line_error(line: bytes) -> int:
    """``method SP request-target SP HTTP/x.y`` exactly (RFC 9112 §3), CRLF removed.

    llhttp also takes several spaces between the parts, the protocol names
    ``RTSP`` and ``ICE``, and bare CR or LF before the line; all three are 400.
    """
    parts = line.split(b" ")
    if len(parts) != 3 or not is_token(parts[0]) or not parts[1]:
        return 400
    version = parts[2]
    if (
        len(version) == 8
        and version.startswith(b"HTTP/")
        and version[5] in _DIGITS
        and version[6] == 0x2E
        and version[7] in _DIGITS
    ):
        return 0
    return 400


def method_error(method: str) -> int:
    """501 for a method cyhttp does not serve (RFC 9110 §9.1)."""
    return 0 if method in HTTP_METHODS else 501


def target_error(target: bytes, method: str) -> int:
    """The request target's form (RFC 9112 §3.2): origin-form, absolute-form, or
    ``*`` for OPTIONS only; never a fragment (RFC 9110 §4.2.5 keeps it client-side)."""
    if b"#" in target:
        return 400
    if target[:1] == b"/":
        return 0
    if target == b"*":
        return 0 if method == "OPTIONS" else 400
    match = _SCHEME.match(target)
    return 0 if match is not None and target[match.end() : match.end() + 2] == b"//" else 400


def host_error(value: bytes) -> int:
    """The Host field is ``host [":" port]`` per RFC 3986 (RFC 9112 §3.2); empty is allowed."""
    value = value.strip(b" \t")  # optional whitespace around a field value (RFC 9110 §5.5)
    name, _, port = value.partition(b":")
    if not name.translate(None, _UNRESERVED) and (not port or port.isdigit()):
        return 0  # the usual name[:port]; the grammar below decides everything else
    if _HOST.match(value) is None:
        return 400
    if value[:1] == b"[" and value[1:2] not in (b"v", b"V"):
        from ipaddress import IPv6Address  # only for bracketed hosts: a heavy import

        try:
            IPv6Address(value[1 : value.index(b"]")].decode("ascii"))
        except ValueError:
            return 400
    return 0


def coding_error(codings: list[bytes]) -> int:
    """The Transfer-Encoding values of a request: 400 unless ``chunked`` is the final
    coding (RFC 9112 §6.3), 501 for any coding before it, which cyhttp does not
    implement (RFC 9112 §6.1)."""
    joined = [coding.strip(b" \t").lower() for coding in b",".join(codings).split(b",")]
    if joined[-1] != b"chunked":
        return 400
    return 501 if len(joined) > 1 else 0


def asks_keep_alive(value: bytes) -> bool:
    """Whether a Connection field value holds the ``keep-alive`` option (HTTP/1.0 only).

    llhttp also honours ``Proxy-Connection``, which is no HTTP field (RFC 9112
    §9.3 names only Connection): the cores take llhttp's keep-alive only when
    the request's own Connection field agrees.
    """
    return any(option.strip(b" \t").lower() == b"keep-alive" for option in value.split(b","))


def head_error(
    line: bytes | None,
    method: str,
    target: bytes,
    version: str,
    hosts: list[bytes],
    codings: list[bytes],
    upgrade: bool,
    length: int,
) -> int:
    """The status to refuse a head httptools completed with, or 0.

    *line* is the request line as received (None if it could not be found),
    *hosts* the Host values, *codings* the Transfer-Encoding values, *upgrade*
    whether llhttp takes it for a protocol switch.
    """
    if line is None or request_line_error(line):
        return 400
    if version != "1.1" and version != "1.0":
        return 505
    status = method_error(method) or target_error(target, method)
    if status:
        return status
    # RFC 9112 §3.2: exactly one Host in HTTP/1.1 (at most one in 1.0), well formed.
    if len(hosts) > 1 or (not hosts and version == "1.1"):
        return 400
    if hosts and host_error(hosts[0]):
        return 400
    if codings:
        if version == "1.0":
            return 400  # RFC 9112 §6.1: faulty framing, never guess
        status = coding_error(codings)
        if status:
            return status
    if upgrade and (length or codings):
        # llhttp skips the body of a protocol switch; answering it as an ordinary
        # request would lose the body, and no switch is offered yet.
        return 400
    return 0


def parse_error(invalid_method: bool, pending: bytes) -> int:
    """The status for input llhttp refused; *pending* is the head received so far.

    A method that is a token llhttp does not know is unrecognised, so 501
    (RFC 9110 §9.1); anything else is 400.
    """
    if invalid_method and is_token(pending.partition(b" ")[0]):
        return 501
    return 400
