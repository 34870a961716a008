"""TLS: the server's ``ssl.SSLContext``, made from the settings, re-read on demand.

Made once, when the server is built, so that a missing file, a wrong password or a
key that does not match its certificate is one clear error before anything listens.
``reload`` loads the files again into the same context: connections already open keep
their session, every handshake after it uses the new certificate (``SIGHUP``).
"""

from __future__ import annotations

import ssl
from typing import Any, Optional

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
        ctx.load_cert_chain(cfg.ssl_certfile, cfg.ssl_keyfile, password)
    except ssl.SSLError as exc:  # before OSError: it is one
        hint = " (a wrong ssl_keyfile_password?)" if password is not None else ""
        raise TlsError(
            f"ssl_certfile/ssl_keyfile: cannot load the certificate and key: {_reason(exc)}{hint}"
        ) from None
    except OSError as exc:
        where = exc.filename or cfg.ssl_certfile
        raise TlsError(f"ssl_certfile/ssl_keyfile: cannot read {where}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
