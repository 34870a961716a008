"""Public request corpora through a real socket, on both cores.

The vectors come from llhttp's own strict-mode request tests and gunicorn's
request files (see ``tests/corpora/extract.py``, which records each vector's
source: repository, commit, file and line). Each vector is sent on a new
connection with a valid request pipelined behind it (the sentinel), and the
outcome is checked against the reference parser's reading:

* a vector the reference refuses is refused: an error answer, the connection
  closed, the sentinel never answered;
* a vector the reference reads is answered message by message with exactly the
  method, target, version, header fields and body the reference read, and then
  the sentinel; or, where cyhttp is stricter than the reference, refused at a
  message for one of the documented reasons (``stricter_reason``), with nothing
  after it answered;
* after a protocol switch (llhttp pauses) nothing more is answered.

Most of llhttp's vectors omit ``Host``, which RFC 9112 §3.2 requires of HTTP/1.1
requests and cyhttp enforces; each vector the reference reads is therefore also
run with ``Host: h`` inserted after the request line of every such message
(``with_host``), so that the rest of the message is compared as well. gunicorn
requires no ``Host``, so none of its vectors is about a missing one: each runs
once, with ``Host: h`` added to every HTTP/1.1 request lacking one
(``gunicorn_run``), and a refused one must get the status gunicorn answers its
exception with, or another for a documented reason (``other_status``).

The tallies (``-s`` prints them) are the figures of docs/conformance.md.
"""

from __future__ import annotations

import json
import re
import socket
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import cyhttp

from .support import LiveServer, split_responses

CORPORA = Path(__file__).parent / "corpora"
SENTINEL = b"GET /sentinel HTTP/1.1\r\nHost: sentinel\r\n\r\n"
# The methods cyhttp serves, listed here apart from the code under test (IANA registry).
HTTP_METHODS = set(
    "GET HEAD POST PUT DELETE OPTIONS TRACE PATCH QUERY PROPFIND PROPPATCH MKCOL COPY MOVE "
    "LOCK UNLOCK SEARCH BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE MKCALENDAR "
    "LINK UNLINK".split()
)
HOST_CHARS = set(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:%[]"
)


def load(name: str) -> list[dict]:
    return json.loads((CORPORA / f"{name}.json").read_text())


def with_host(vector: dict) -> dict | None:
    """The vector with ``Host: h`` after the request line of each HTTP/1.1 message
    that has none, so that the rest of it is compared; None if there is nothing to add
    or a request line is not where the reference read it."""
    expect = vector["expect"]
    if expect["then"] == "refuse":
        return None
    data = vector["data"].encode("latin-1")
    messages = []
    pos = 0
    added = False
    for message in expect["messages"]:
        message = dict(message)
        line = f"{message['method']} {message['url']} HTTP/{message.get('version')}\r\n"
        found = data.find(line.encode("latin-1"), pos)
        if found < 0:
            return None
        pos = found + len(line)
        if message.get("version") == "1.1" and not any(
            n.lower() == "host" for n, _ in message["headers"]
        ):
            data = data[:pos] + b"Host: h\r\n" + data[pos:]
            message["headers"] = [["Host", "h"], *message["headers"]]
            added = True
        messages.append(message)
    if not added:
        return None
    return {
        "name": vector["name"] + " (+Host)",
        "source": vector["source"] + " +Host",
        "data": data.decode("latin-1"),
        "expect": {**expect, "messages": messages},
    }


def gunicorn_run(vector: dict) -> dict:
    """The gunicorn vector as sent: ``Host: h`` added to each HTTP/1.1 request lacking
    one (after the request line of a refused vector's first request)."""
    if vector["expect"]["then"] != "refuse":
        return with_host(vector) or vector
    data = vector["data"].encode("latin-1")
    line, _, rest = data.partition(b"\r\n")
    head = b"\r\n" + rest.partition(b"\r\n\r\n")[0]
    if not line.endswith(b" HTTP/1.1") or re.search(rb"\r\nhost:", head, re.I):
        return vector
    return {
        **vector,
        "name": vector["name"] + " (+Host)",
        "source": vector["source"] + " +Host",
        "data": (line + b"\r\nHost: h\r\n" + rest).decode("latin-1"),
    }


VECTORS = [("llhttp", v) for v in load("llhttp")]
VECTORS += [("llhttp", h) for _, v in VECTORS if (h := with_host(v)) is not None]
VECTORS += [("gunicorn", gunicorn_run(v)) for v in load("gunicorn")]


async def echo(request):
    if request.raw_path == b"/sentinel":
        return cyhttp.Response(b"SENTINEL")
    if request.method == "HEAD":
        return cyhttp.Response()  # Content-Length: 0, so that the answers stay framed
    body = await request.body()
    trailers = request.trailers.raw
    return cyhttp.Response(
        json.dumps(
            {
                "method": request.method,
                "url": request.raw_path.decode("latin-1"),
                "version": request.http_version,
                "headers": [
                    [n.decode("latin-1"), v.decode("latin-1")] for n, v in request.headers.raw
                ],
                "body": body.decode("latin-1"),
                "trailers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in trailers],
            }
        )
    )


# gunicorn's vectors assume its default limits (limit_request_line 4094,
# limit_request_field_size 8190); llhttp's assume none beyond cyhttp's defaults.
LIMITS = {"llhttp": {}, "gunicorn": {"max_url_size": 4094, "max_header_size": 8190}}


@pytest.fixture(scope="module", params=["cython", "python"])
def servers(request):
    if request.param == "cython" and cyhttp.implementation != "cython":
        pytest.skip("CYHTTP_NO_EXTENSIONS is set")
    with (
        LiveServer(echo, request.param, **LIMITS["llhttp"]) as llhttp,
        LiveServer(echo, request.param, **LIMITS["gunicorn"]) as gunicorn,
    ):
        yield {"llhttp": llhttp, "gunicorn": gunicorn}


def exchange(port: int, data: bytes) -> tuple[list[bytes], bool]:
    """Send *data* and the sentinel; the answers, and whether the server closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data + SENTINEL)
        sock.settimeout(1.0)
        received = b""
        closed = False
        while b"SENTINEL" not in received:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                closed = True
                break
            received += chunk
    return split_responses(received), closed


CHUNK_EXTENSION_BWS = re.compile(rb"\r\n[0-9a-fA-F]+([ \t]+;|;[ \t])")


def as_served(message: dict) -> dict:
    """A message as its handler sees it: an absolute-form target's path and query, and
    its authority as the Host value, in place of the one sent or else first (RFC 9112
    §3.2.2: cyhttp rewrites Host from the authority)."""
    url = message["url"]
    if "://" not in url:
        return message
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [[n, parts.netloc] if n.lower() == "host" else [n, v] for n, v in message["headers"]]
    if not any(n.lower() == "host" for n, _ in headers):
        headers.insert(0, ["Host", parts.netloc])
    return {**message, "url": target, "headers": headers}


def stricter_reason(message: dict, data: bytes) -> str | None:
    """Why cyhttp may refuse a message the reference parser reads (docs/http.md: strict parsing)."""
    headers = [(n.lower(), v) for n, v in message["headers"]]
    hosts = [v for n, v in headers if n == "host"]
    codings = [v for n, v in headers if n == "transfer-encoding"]
    version = message.get("version")
    if message["method"] not in HTTP_METHODS:
        return "method not implemented (501)"
    if version not in (None, "1.0", "1.1"):
        return "version other than HTTP/1.0 and 1.1 (505)"
    if len(hosts) > 1 or (not hosts and version != "1.0"):
        return "not exactly one Host in HTTP/1.1"
    if hosts and not set(hosts[0].strip(" \t").encode("latin-1")) <= HOST_CHARS:
        return "Host is no host[:port]"
    if codings and [c.strip() for c in ",".join(codings).lower().split(",")] != ["chunked"]:
        return "transfer coding other than chunked alone"
    url = message["url"]
    if any(not 0x21 <= ord(c) <= 0x7E for c in url):
        return "raw non-ASCII or control bytes in the target (RFC 3986: percent-encoded)"
    options = ",".join(v for n, v in headers if n == "connection").lower()
    if "upgrade" in options and any(n == "upgrade" for n, _ in headers) and message["body"]:
        return "protocol switch with a body"
    if message["body"] and CHUNK_EXTENSION_BWS.search(data):
        return "whitespace around ';' in a chunk extension (llhttp refuses it)"
    if "#" in url or (url == "*" and message["method"] != "OPTIONS"):
        return "request target form"
    scheme, sep, rest = url.partition("://")
    if not url.startswith("/") and url != "*" and (not sep or scheme.lower() not in HTTP_SCHEMES):
        return "request target form"
    if sep and "@" in re.split("[/?]", rest)[0]:
        return "userinfo in an absolute-form target (RFC 9110 §4.2.4)"
    return None


HTTP_SCHEMES = ("http", "https")


def other_status(vector: dict, status: int) -> str | None:
    """Why cyhttp refuses a gunicorn vector with another status than gunicorn's."""
    error = vector["expect"]["error"]
    method = vector["data"].encode("latin-1").partition(b" ")[0]
    if error == "LimitRequestLine" and status == 414:
        return "target over the limit: 414 (RFC 9112 §3)"
    if error == "InvalidRequestMethod" and status == 501 and b"\0" not in method:
        return "a method token cyhttp does not implement: 501 (RFC 9110 §9.1)"
    if error == "InvalidHTTPVersion" and status == 505:
        return "a well-formed version other than 1.x: 505 (RFC 9110 §15.6.6)"
    return None


def keeps_alive(message: dict) -> bool:
    options = [
        o.strip().lower()
        for n, v in message["headers"]
        if n.lower() == "connection"
        for o in v.split(",")
    ]
    if message.get("version") == "1.0":
        return "keep-alive" in options and "close" not in options
    return "close" not in options


def request_lines(data: bytes) -> list[bytes]:
    return [line for line in data.split(b"\r\n") if b" HTTP/" in line or b" RTSP/" in line]


RESULTS: Counter[str] = Counter()


@pytest.mark.parametrize(
    ("corpus", "vector"), VECTORS, ids=[f"{c}:{v['name']}" for c, v in VECTORS]
)
def test_vector(servers, corpus, vector):
    data = vector["data"].encode("latin-1")
    answers, closed = exchange(servers[corpus].port, data)
    statuses = [int(a.split(b" ", 2)[1]) for a in answers]
    sentinel = bool(answers) and answers[-1].endswith(b"SENTINEL")
    expect = vector["expect"]
    messages, then = expect["messages"], expect["then"]
    where = vector["source"]
    outcome = "served as the reference reads it" if then == "end" else f"then {then}"
    if then == "refuse" and "status" in expect:
        outcome = "refused with the reference's status"
    for i, answer in enumerate(answers):
        if answer.endswith(b"SENTINEL"):
            assert i == len(messages) and then == "end", (where, answers)
            break
        if i == len(messages):
            # The input the reference refuses, or a message the sentinel completed in a
            # way of its own (the vector ends inside one): an error answer, nothing after.
            assert then == "refuse" or not expect["complete"], (where, answers)
            assert statuses[i] >= 400, (where, answers)
            assert i == len(answers) - 1 and closed, (where, answers)
            if then == "refuse" and "status" in expect and statuses[i] != expect["status"]:
                reason = other_status(vector, statuses[i])
                assert reason is not None, (where, expect["error"], answers)
                outcome = f"refused with another status: {reason}"
            break
        if statuses[i] != 200:
            assert statuses[i] in (400, 501, 505), (where, answer)
            reason = stricter_reason(messages[i], data)
            if reason is None:
                # The request line as received: several spaces or another protocol.
                line = request_lines(data)[i]
                assert b"  " in line or b" HTTP/" not in line, (where, messages[i], answer)
            assert i == len(answers) - 1 and closed, (where, answers)
            outcome = f"stricter: {reason or 'request line as received'}"
            break
        if messages[i]["method"] == "HEAD":
            continue  # the answer to HEAD has no body to read the echo from
        seen = json.loads(answer.partition(b"\r\n\r\n")[2])
        if corpus == "gunicorn":
            # gunicorn drops fields with "_" in their names by default (its WSGI environ
            # would confuse them with "-"); cyhttp has no such mapping and keeps them.
            seen["headers"] = [[n, v] for n, v in seen["headers"] if "_" not in n]
        wanted = as_served(messages[i])
        assert seen["method"] == wanted["method"], where
        assert seen["url"] == wanted["url"], where
        if "version" in wanted:
            assert seen["version"] == wanted["version"], where
        assert [[n.lower(), v] for n, v in seen["headers"]] == [
            [n.lower(), v.strip(" \t")] for n, v in wanted["headers"]
        ], where
        assert seen["body"] == wanted["body"], where
        if "trailers" in wanted:
            assert [[n.lower(), v] for n, v in seen["trailers"]] == [
                [n.lower(), v.strip(" \t")] for n, v in wanted["trailers"]
            ], where
    else:
        if then == "end" and expect["complete"] and (not messages or keeps_alive(messages[-1])):
            pytest.fail(f"{where}: the sentinel was not answered: {answers}")
        if not answers:
            # The vector ends inside a body (and the sentinel is more of it): wait for the rest.
            assert not expect["complete"] and not closed, (where, answers)
            outcome = "waits for the rest of a body the vector cuts short"
    if then != "end":
        # Refused input, or a switch nobody takes: nothing after it is answered.
        assert not sentinel and closed, (where, answers)
        if then == "refuse" and len(answers) == len(messages):
            # Answered every message, then refused what followed: an error answer, unless
            # the last message ended the connection (then nothing more is said).
            assert answers, (where, "refused without an answer")
            assert statuses[-1] >= 400 or b"Connection: close" in answers[-1], (where, answers)
    RESULTS[f"{corpus}: {outcome}"] += 1


H11 = "python-hyper/h11@62c5068c9715:h11/tests/test_io.py"
GO = "golang/go@01a5a83cfbe5:src/net/http/readrequest_test.go"
CHUNKED = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


def go_request(text: str) -> bytes:
    """Go's reqBytes: the lines with CRLF, ending in an empty line."""
    return text.strip().replace("\n", "\r\n").encode() + b"\r\n\r\n"


# Malformed requests from h11's and Go's own tests: each refused by both.
MALFORMED = {
    f"{H11}:290 obs-fold first line": b"HEAD /foo HTTP/1.1\r\n  folded: line\r\n\r\n",
    f"{H11}:297 spaces before colon": b"HEAD /foo HTTP/1.1\r\nfoo  : line\r\n\r\n",
    f"{H11}:303 tab before colon": b"HEAD /foo HTTP/1.1\r\nfoo\t: line\r\n\r\n",
    f"{H11}:313 empty field name": b"HEAD /foo HTTP/1.1\r\n: line\r\n\r\n",
    f"{H11}:536 garbage after version": b"HEAD /foo HTTP/1.1 xxxxxx\r\nHost: a\r\n\r\n",
    f"{H11}:545 NUL in field value": b"HEAD /foo HTTP/1.1\r\nHost: foo\x00bar\r\n\r\n",
    **{
        f"{H11}:550 byte {c:#04x} in path": b"HEAD /%c HTTP/1.1\r\nHost: foobar\r\n\r\n" % c
        for c in b"\x00\x20\x7f\xee"
    },
    f"{H11}:441 chunk size of 100 digits": CHUNKED + b"9" * 100 + b"\r\nxxx",
    f"{H11}:444 NUL after chunk size": CHUNKED + b"10\x00\r\nxxx",
    f"{H11}:469 no CRLF after chunk data": CHUNKED + b"3\r\nxxx__1a\r\n",
    f"{H11}:472 bare CR after chunk data": CHUNKED + b"3\r\nxxx\r_1a\r\n",
    f"{H11}:473 bare LF after chunk data": CHUNKED + b"3\r\nxxx_\n1a\r\n",
    f"{GO} bad_connect_host": go_request(
        "CONNECT []%20%48%54%54%50%2f%31%2e%31%0a%4d%79%48%65%61%64%65%72"
        "%3a%20%31%32%33%0a%0a HTTP/1.0"
    ),
    f"{GO} smuggle_two_contentlen": go_request(
        "POST / HTTP/1.1\nContent-Length: 3\nContent-Length: 4\n\nabc"
    ),
    f"{GO} smuggle_two_content_len_head": go_request(
        "HEAD / HTTP/1.1\nHost: foo\nContent-Length: 4\nContent-Length: 5\n\n1234"
    ),
    f"{GO} leading_space_in_header": go_request("HEAD / HTTP/1.1\n Host: foo\nContent-Length: 5"),
    f"{GO} leading_tab_in_header": go_request("HEAD / HTTP/1.1\n\tHost: foo\nContent-Length: 5"),
    f"{GO} bogus absolute-path": b"GET ../../../../etc/passwd HTTP/1.1\r\nHost: test\r\n\r\n",
    f"{GO} missing URL": b"GET  HTTP/1.1\r\nHost: test\r\n\r\n",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed(servers, data):
    answers, closed = exchange(servers["llhttp"].port, data)
    assert len(answers) == 1 and int(answers[0].split(b" ", 2)[1]) in (400, 501), answers
    assert closed
    RESULTS["h11 and Go: refused"] += 1


def test_corpora_counts(capsys):
    """Prints the tallies docs/conformance.md quotes (run after the vectors: ``-s`` shows them)."""
    assert len(load("llhttp")) >= 100 and len(load("gunicorn")) >= 80
    with capsys.disabled():
        for key in sorted(RESULTS):
            print(f"\n{key}: {RESULTS[key]}", end="")
