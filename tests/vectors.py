"""Request-smuggling and desync vectors (one per class of attack), and the well-formed
requests cyhttp does not implement: shared by the smuggling tests and the fuzz seeds."""

H = b"Host: a\r\n"
TE = b"Transfer-Encoding: chunked\r\n"
CHUNKED_POST = b"POST / HTTP/1.1\r\n" + H + TE + b"\r\n"

VECTORS = {
    # Content-Length / Transfer-Encoding disagreements (CL.TE, TE.CL desync).
    "cl-with-te": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n" + TE + b"\r\n0\r\n\r\n",
    "te-with-cl": b"POST / HTTP/1.1\r\n" + H + TE + b"Content-Length: 3\r\n\r\n0\r\n\r\n",
    "duplicate-cl-same": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
    ),
    "duplicate-cl-different": (
        b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    ),
    "cl-list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 3\r\n\r\nabc",
    "cl-negative": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n",
    "cl-plus-sign": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\nabc",
    "cl-hex": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x3\r\n\r\nabc",
    "cl-inner-space": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1 2\r\n\r\n",
    "cl-overflow": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 99999999999999999999999\r\n\r\n",
    "cl-empty": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: \r\n\r\n",
    # Transfer-Encoding tricks.
    "te-chunked-not-last": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n",
    "te-identity": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n",
    "te-unknown": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n",
    "te-chunked-twice": b"POST / HTTP/1.1\r\n" + H + TE + TE + b"\r\n0\r\n\r\n",
    "te-space-before-colon": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n",
    "te-vertical-tab": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\x0bchunked\r\n\r\n",
    "te-in-http10": b"POST / HTTP/1.0\r\n" + H + TE + b"\r\n0\r\n\r\n",
    # Chunked framing.
    "chunk-size-not-hex": CHUNKED_POST + b"zz\r\nabc\r\n0\r\n\r\n",
    "chunk-size-overflow": CHUNKED_POST + b"ffffffffffffffffff\r\nabc\r\n",
    "chunk-size-negative": CHUNKED_POST + b"-3\r\nabc\r\n0\r\n\r\n",
    "chunk-size-leading-space": CHUNKED_POST + b" 3\r\nabc\r\n0\r\n\r\n",
    "chunk-extension-nul": CHUNKED_POST + b"3;\x00x\r\nabc\r\n0\r\n\r\n",
    "chunk-extension-quoted-lf": CHUNKED_POST + b'3;a="b\nc"\r\nabc\r\n0\r\n\r\n',
    "chunk-data-too-long": CHUNKED_POST + b"3\r\nabcX0\r\n\r\n",
    "chunk-bare-lf": CHUNKED_POST + b"3\nabc\n0\n\n",
    # Header syntax.
    "obs-fold-space": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\n\r\n",
    "obs-fold-tab": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\r\n\tc\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\n" + H + b"X-A : b\r\n\r\n",
    "leading-space-first-header": b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
    "empty-header-name": b"GET / HTTP/1.1\r\n" + H + b": b\r\n\r\n",
    "header-without-colon": b"GET / HTTP/1.1\r\n" + H + b"XA\r\n\r\n",
    "nul-in-header-value": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x00c\r\n\r\n",
    "nul-in-header-name": b"GET / HTTP/1.1\r\n" + H + b"X\x00A: b\r\n\r\n",
    "control-in-header-value": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x01c\r\n\r\n",
    "del-in-header-value": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\x7fc\r\n\r\n",
    "control-in-header-name": b"GET / HTTP/1.1\r\n" + H + b"X\x01A: b\r\n\r\n",
    # Line endings.
    "bare-lf-line-endings": b"GET / HTTP/1.1\nHost: a\n\n",
    "bare-cr-in-header-value": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\rc\r\n\r\n",
    "bare-lf-after-header-value": b"GET / HTTP/1.1\r\n" + H + b"X-A: b\n\r\n",
    "bare-cr-after-version": b"GET / HTTP/1.1\rHost: a\r\n\r\n",
    # Request line.
    "space-in-target": b"GET /a b HTTP/1.1\r\n" + H + b"\r\n",
    "control-in-target": b"GET /\x01 HTTP/1.1\r\n" + H + b"\r\n",
    "tab-in-target": b"GET /\ta HTTP/1.1\r\n" + H + b"\r\n",
    "unknown-version": b"GET / HTTP/1.2\r\n" + H + b"\r\n",
    "garbage-method": b"G\x00T / HTTP/1.1\r\n" + H + b"\r\n",
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    # Host (RFC 9112 §3.2).
    "missing-host-http11": b"GET / HTTP/1.1\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "two-hosts-http10": b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
    "host-space": b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    "host-brace": b"GET / HTTP/1.1\r\nHost: {\r\n\r\n",
    "host-non-ascii": b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n",
    "host-userinfo": b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
    "host-bad-port": b"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n",
    "host-bad-ipv6": b"GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n",
    # Request-line leniencies llhttp has and RFC 9112 §3 does not.
    "two-spaces-before-target": b"GET  / HTTP/1.1\r\n" + H + b"\r\n",
    "two-spaces-before-version": b"GET /  HTTP/1.1\r\n" + H + b"\r\n",
    "bare-lf-before-request-line": b"\nGET / HTTP/1.1\r\n" + H + b"\r\n",
    "bare-cr-before-request-line": b"\rGET / HTTP/1.1\r\n" + H + b"\r\n",
    "star-target-not-options": b"GET * HTTP/1.1\r\n" + H + b"\r\n",
    "fragment-in-target": b"GET /a#b HTTP/1.1\r\n" + H + b"\r\n",
    "authority-form-not-connect": b"GET a:80 HTTP/1.1\r\n" + H + b"\r\n",
    "rtsp-protocol": b"GET / RTSP/1.0\r\n" + H + b"\r\n",
    "ice-protocol": b"GET / ICE/1.0\r\n" + H + b"\r\n",
    "http09-request-line": b"GET /\r\n\r\n",
    "rtsp-method": b"DESCRIBE / RTSP/1.0\r\n" + H + b"\r\n",
    "rtsp-method-http": b"DESCRIBE / HTTP/1.1\r\n" + H + b"\r\n",
    "icecast-method": b"SOURCE / ICE/1.0\r\n" + H + b"\r\n",
    # Protocol switches carrying a body: llhttp would skip the body.
    "upgrade-with-body": (
        b"PUT / HTTP/1.1\r\n" + H + b"Upgrade: foo\r\nConnection: upgrade\r\n"
        b"Content-Length: 4\r\n\r\nabcd"
    ),
    "upgrade-with-chunked-body": (
        b"PUT / HTTP/1.1\r\n"
        + H
        + b"Upgrade: foo\r\nConnection: upgrade\r\n"
        + TE
        + b"\r\n4\r\nabcd\r\n0\r\n\r\n"
    ),
}

# Well formed, but what cyhttp does not implement (RFC 9110 §9.1, RFC 9112 §6.1): 501.
NOT_IMPLEMENTED = {
    "unknown-method": b"FOO / HTTP/1.1\r\n" + H + b"\r\n",
    "lowercase-method": b"get / HTTP/1.1\r\n" + H + b"\r\n",
    "connect": b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    "ssdp-method": b"M-SEARCH * HTTP/1.1\r\n" + H + b"\r\n",
    "coding-before-chunked": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n1\r\na\r\n0\r\n\r\n"
    ),
    "coding-before-chunked-two-lines": (
        b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n" + TE + b"\r\n0\r\n\r\n"
    ),
}
