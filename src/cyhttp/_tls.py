"""TLS: the server's ``ssl.SSLContext``, made from the settings, re-read on demand.

Made once, when the server is built, so that a missing file, a wrong password, a key
that does not match its certificate or an expired certificate is one clear error before
anything listens.
``reload`` loads the files again into the same context: connections already open keep
their session, every handshake after it uses the new certificate (``SIGHUP``).
"""

from __future__ import annotations

import os
import re
import ssl
from datetime import UTC, datetime
from typing import Any, Optional, Tuple

__all__ = ["TlsError", "context", "reload"]


class TlsError(ValueError):
    """A TLS setting that cannot be used; the message names the setting and the cause."""


def context(cfg: Any) -> Optional[ssl.SSLContext]:
    """The server's TLS context for the ``ssl_*`` settings of *cfg*, or None for plain HTTP."""
    if cfg.ssl_certfile is None:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # HTTP/1.1 is all this server speaks: say so to clients that offer ALPN (RFC 7301).
    ctx.set_alpn_protocols(["http/1.1"])
    if cfg.ssl_ciphers is not None:
        try:
            ctx.set_ciphers(cfg.ssl_ciphers)
        except ssl.SSLError:
            raise TlsError(f"ssl_ciphers: no cipher matches {cfg.ssl_ciphers!r}") from None
    ctx.verify_mode = ssl.VerifyMode(cfg.ssl_cert_reqs)
    if cfg.ssl_ca_certs is not None:
        try:
            ctx.load_verify_locations(cfg.ssl_ca_certs)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(
                f"ssl_ca_certs: cannot load {cfg.ssl_ca_certs}: {_reason(exc)}"
            ) from None
    reload(ctx, cfg)
    return ctx


def reload(ctx: ssl.SSLContext, cfg: Any) -> None:
    """Load the certificate chain and key of *cfg* into *ctx* (again)."""
    password = cfg.ssl_keyfile_password
    try:
        # OpenSSL serves an expired certificate without a word, and every client then
        # refuses the handshake: refused here instead, where the operator sees why, and
        # before loading, so that on SIGHUP the certificate in use stays.
        expiry = _not_after(cfg.ssl_certfile)
        if expiry is not None and expiry < datetime.now(UTC):
            raise TlsError(
                f"ssl_certfile: the certificate in {cfg.ssl_certfile} expired on "
                f"{expiry:%Y-%m-%d %H:%M:%S} UTC"
            )
        ctx.load_cert_chain(cfg.ssl_certfile, cfg.ssl_keyfile, password)
    except ssl.SSLError as exc:  # before OSError: it is one
        hint = " (a wrong ssl_keyfile_password?)" if password is not None else ""
        raise TlsError(
            f"ssl_certfile/ssl_keyfile: cannot load the certificate and key: {_reason(exc)}{hint}"
        ) from None
    except OSError as exc:
        # OpenSSL's error names no file: the first of the two that cannot be read.
        files = (cfg.ssl_certfile, cfg.ssl_keyfile or cfg.ssl_certfile)
        where = exc.filename or next((f for f in files if not os.access(f, os.R_OK)), files[0])
        raise TlsError(f"ssl_certfile/ssl_keyfile: cannot read {where}: {_reason(exc)}") from None


_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def _not_after(certfile: str) -> Optional[datetime]:
    """When the first certificate of the PEM file *certfile* (the server's own, in a chain)
    expires, or None if its DER cannot be walked (OpenSSL's loading then says what is wrong).

    The ``ssl`` module reads no certificate it loaded; the few DER fields before the
    validity (RFC 5280, 4.1) are walked here rather than adding a dependency."""
    with open(certfile, "rb") as f:
        match = _PEM.search(f.read())
    if match is None:
        return None
    try:
        der = ssl.PEM_cert_to_DER_cert(match.group().decode("ascii"))
        _, start, _ = _tlv(der, 0)  # Certificate
        _, pos, _ = _tlv(der, start)  # TBSCertificate
        if der[pos] == 0xA0:  # [0] version, absent in v1 certificates
            pos = _tlv(der, pos)[2]
        for _field in ("serialNumber", "signature", "issuer"):
            pos = _tlv(der, pos)[2]
        _, validity, _ = _tlv(der, pos)
        after, start, end = _tlv(der, _tlv(der, validity)[2])  # notBefore, then notAfter
        text = der[start:end].decode("ascii")
        if after == 0x17:  # UTCTime, YYMMDDHHMMSSZ: 50-99 are 19xx (RFC 5280, 4.1.2.5.1)
            text = ("19" if text[:2] >= "50" else "20") + text
        return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    except (IndexError, ValueError):
        return None


def _tlv(der: bytes, pos: int) -> Tuple[int, int, int]:
    """The tag of the DER element at *pos*, where its content starts and where it ends."""
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:  # the long form: the length in the next (length & 0x7f) bytes
        size = length & 0x7F
        length = int.from_bytes(der[pos : pos + size], "big")
        pos += size
    return tag, pos, pos + length


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
