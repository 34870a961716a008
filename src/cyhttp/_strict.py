"""The request checks cyhttp adds to llhttp's, shared by both cores.

llhttp, even with no lenient flag, accepts a few things RFC 9110/9112 refuse
(a request line with several spaces or another protocol than HTTP, a target
with a fragment, ``*`` for any method, a Host that is no ``host[:port]``,
codings other than ``chunked``) and knows methods that are not HTTP (RTSP's,
Icecast's ``SOURCE``). Each check here raises ``Reject`` with the status to
refuse with and the rule that refused. They run on the httptools path only: the
compiled core's head scanner accepts nothing they would refuse (an origin-form
target, so the absolute-form checks cost the common case nothing).
"""

from __future__ import annotations

import re

from ._wire import TOKEN, Reject

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
_SCHEME = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*")
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
    return bool(data) and TOKEN.issuperset(data)


def check_request_line(line: bytes | None) -> None:
    """``method SP request-target SP HTTP/x.y`` exactly (RFC 9112 §3), CRLF removed.

    llhttp also takes several spaces between the parts, the protocol names
    ``RTSP`` and ``ICE``, and bare CR or LF before the line; all three are 400.
    """
    if line is None:
        raise Reject(400, "request line not found where the head begins")
    parts = line.split(b" ")
    if len(parts) != 3 or not is_token(parts[0]) or not parts[1]:
        raise Reject(400, "request line is not method SP request-target SP HTTP-version")
    version = parts[2]
    if not (
        len(version) == 8
        and version.startswith(b"HTTP/")
        and version[5] in _DIGITS
        and version[6] == 0x2E
        and version[7] in _DIGITS
    ):
        raise Reject(400, "HTTP-version is not HTTP/DIGIT.DIGIT")


def check_target(target: bytes, method: str) -> None:
    """The request target's form (RFC 9112 §3.2): origin-form, absolute-form (see
    ``absolute_target``), ``*`` for OPTIONS only; never a fragment (RFC 9110 §4.2.5
    keeps it client-side). Authority-form is CONNECT's, which ``check_method`` refuses."""
    if b"#" in target:
        raise Reject(400, "fragment in the request target")
    if target[:1] == b"/":
        return
    if target == b"*":
        if method != "OPTIONS":
            raise Reject(400, "asterisk-form target with a method other than OPTIONS")
        return
    absolute_target(target)


def absolute_target(target: bytes) -> tuple[bytes, bytes]:
    """The authority and the rest (path and query, maybe empty) of an absolute-form
    target; ``Reject`` unless it is an ``http`` or ``https`` URI whose authority is a
    valid ``host[:port]`` (RFC 9112 §3.2.2, RFC 9110 §4.2)."""
    scheme, sep, rest = target.partition(b"://")
    if not sep or _SCHEME.fullmatch(scheme) is None:
        if b":" in target and not host_error(target):
            raise Reject(400, "authority-form target with a method other than CONNECT")
        raise Reject(400, "request target in none of the forms of RFC 9112 §3.2")
    if scheme.lower() not in (b"http", b"https"):
        raise Reject(400, "absolute-form target with a scheme other than http or https")
    end = len(rest)
    for mark in (b"/", b"?"):  # the authority ends where the path or the query begins
        found = rest.find(mark, 0, end)
        if found >= 0:
            end = found
    authority = rest[:end]
    if b"@" in authority:
        # RFC 9110 §4.2.4: userinfo is an error, likely there to obscure the host.
        raise Reject(400, "absolute-form target with userinfo")
    if authority[:1] in (b"", b":") or host_error(authority):
        raise Reject(400, "absolute-form target without a valid host[:port] authority")
    return authority, rest[end:]


def served_target(target: bytes, method: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """What a checked absolute-form request serves (RFC 9112 §3.2.2): its authority takes
    the place of the Host field's value in *headers* (first in them if the request had
    none), and its path and query are returned as the target (``/`` for neither, ``*``
    for OPTIONS, RFC 9112 §3.2.4)."""
    authority, rest = absolute_target(target)
    for i, (name, _) in enumerate(headers):
        if len(name) == 4 and name.lower() == b"host":
            headers[i] = (name, authority)
            break
    else:
        headers.insert(0, (b"Host", authority))
    if not rest:
        return b"*" if method == "OPTIONS" else b"/"
    return rest if rest[:1] == b"/" else b"/" + rest


def host_error(value: bytes) -> bool:
    """Whether a Host value is no ``host [":" port]`` per RFC 3986 (RFC 9112 §3.2);
    empty is allowed."""
    value = value.strip(b" \t")  # optional whitespace around a field value (RFC 9110 §5.5)
    name, _, port = value.partition(b":")
    if not name.translate(None, _UNRESERVED) and (not port or port.isdigit()):
        return False  # the usual name[:port]; the grammar below decides everything else
    if _HOST.match(value) is None:
        return True
    if value[:1] == b"[" and value[1:2] not in (b"v", b"V"):
        from ipaddress import IPv6Address  # only for bracketed hosts: a heavy import

        try:
            IPv6Address(value[1 : value.index(b"]")].decode("ascii"))
        except ValueError:
            return True
    return False


def check_codings(codings: list[bytes]) -> None:
    """The Transfer-Encoding values of a request: 400 unless ``chunked`` is the final
    coding (RFC 9112 §6.3), 501 for any coding before it, which cyhttp does not
    implement (RFC 9112 §6.1)."""
    joined = [coding.strip(b" \t").lower() for coding in b",".join(codings).split(b",")]
    if joined[-1] != b"chunked":
        raise Reject(400, "final transfer coding is not chunked")
    if len(joined) > 1:
        raise Reject(501, "transfer coding other than chunked")


def asks_keep_alive(value: bytes) -> bool:
    """Whether a Connection field value holds the ``keep-alive`` option (HTTP/1.0 only).

    llhttp also honours ``Proxy-Connection``, which is no HTTP field (RFC 9112
    §9.3 names only Connection): the cores take llhttp's keep-alive only when
    the request's own Connection field agrees.
    """
    return any(option.strip(b" \t").lower() == b"keep-alive" for option in value.split(b","))


def check_head(
    line: bytes | None,
    method: str,
    target: bytes,
    version: str,
    hosts: list[bytes],
    codings: list[bytes],
    upgrade: bool,
    length: int,
) -> None:
    """Raise ``Reject`` for a head httptools completed that cyhttp refuses.

    *line* is the request line as received (None if it could not be found),
    *hosts* the Host values, *codings* the Transfer-Encoding values, *upgrade*
    whether llhttp takes it for a protocol switch.
    """
    check_request_line(line)
    if version != "1.1" and version != "1.0":
        raise Reject(505, "HTTP version other than 1.0 and 1.1")
    if method not in HTTP_METHODS:  # RFC 9110 §9.1
        if method == "CONNECT":
            raise Reject(501, "CONNECT, and cyhttp is no proxy")
        raise Reject(501, "method outside the HTTP method registry")
    check_target(target, method)
    # RFC 9112 §3.2: exactly one Host in HTTP/1.1 (at most one in 1.0), well formed.
    if len(hosts) > 1:
        raise Reject(400, "more than one Host field")
    if not hosts and version == "1.1":
        raise Reject(400, "HTTP/1.1 request without a Host field")
    if hosts and host_error(hosts[0]):
        raise Reject(400, "Host field value is not host[:port]")
    if codings:
        if version == "1.0":
            raise Reject(400, "Transfer-Encoding in an HTTP/1.0 request")  # RFC 9112 §6.1
        check_codings(codings)
    if upgrade and (length or codings):
        # llhttp skips the body of a protocol switch; answering it as an ordinary
        # request would lose the body, and no switch is offered yet.
        raise Reject(400, "protocol switch request with a body")


def parse_error(invalid_method: bool, pending: bytes, message: str) -> Reject:
    """The refusal of input llhttp refused with *message*; *pending* is the head so far.

    A method that is a token llhttp does not know is unrecognised, so 501
    (RFC 9110 §9.1); anything else is 400.
    """
    if invalid_method and is_token(pending.partition(b" ")[0]):
        return Reject(501, "method llhttp does not know")
    return Reject(400, f"llhttp: {message}")
