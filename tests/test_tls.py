"""TLS (``ssl_certfile`` and friends) on both cores: certificates made by ``trustme`` at
test time, real clients (httpx, curl, Python's ``ssl``) over 127.0.0.1."""

from __future__ import annotations

import concurrent.futures
import datetime
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import cyhttp

from .support import free_port, run_cli, start_cli, stop_cli

trustme = pytest.importorskip("trustme")


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    """A CA, a server certificate for 127.0.0.1 (key encrypted too), a client certificate."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = {"ca": tmp_path / "ca.pem", "cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(files["cert"]))
    cert.private_key_pem.write_to_path(str(files["key"]))
    client = ca.issue_cert("client@example")
    client.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "client.pem"))
    return {"ca": ca, "cert": cert, "paths": files, "client": tmp_path / "client.pem"}


def _tls(pki: dict[str, Any], **extra: Any) -> dict[str, Any]:
    paths = pki["paths"]
    return {"ssl_certfile": str(paths["cert"]), "ssl_keyfile": str(paths["key"]), **extra}


def _client_context(pki: dict[str, Any]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["paths"]["ca"]))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def native(request: cyhttp.Request) -> cyhttp.Response:
    if request.method == "POST":
        return cyhttp.Response(b"%d" % len(await request.body()))
    return cyhttp.Response(f"{request.scheme} {request.path}".encode())


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["scheme"].encode()})


def test_https_with_httpx_native_and_asgi(live, pki):
    for app, expected in ((native, "https /a"), (asgi, "https")):
        with live(app, **_tls(pki)) as srv:
            url = f"https://127.0.0.1:{srv.port}/a"
            with httpx.Client(verify=_client_context(pki)) as client:
                answers = [client.get(url) for _ in range(3)]  # one kept-alive connection
                big = client.post(url, content=b"x" * 800_000) if app is native else None
        assert [a.text for a in answers] == [expected] * 3
        if big is not None:
            assert big.text == "800000"


def test_alpn_pipelining_and_a_plain_client_on_the_tls_port(live, pki):
    with live(native, **_tls(pki)) as srv:
        # Plain HTTP sent to the TLS port: that connection ends, nothing else does.
        with srv.connect() as plain:
            plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            plain.settimeout(5)
            try:
                assert not plain.recv(65536).startswith(b"HTTP/1.1 200")
            except ConnectionResetError:
                pass
        ctx = _client_context(pki)
        with srv.connect() as raw, ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"
            tls.sendall(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5)))
            data = b""
            while data.count(b"HTTP/1.1 200") < 5 or not data.endswith(b"https /4"):
                data += tls.recv(65536)
        bodies = [part.split(b"\r\n")[0] for part in data.split(b"\r\n\r\n")[1:]]
        assert [b.split(b"HTTP/1.1")[0] for b in bodies] == [b"https /%d" % i for i in range(5)]


def test_a_stalled_handshake_is_closed_by_the_head_timeout(live, pki):
    with live(native, header_timeout=0.5, **_tls(pki)) as srv, srv.connect() as sock:
        start = time.monotonic()
        sock.settimeout(10)
        try:
            assert sock.recv(65536) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - start < 5


def test_client_certificates_when_required(live, pki):
    options = _tls(pki, ssl_ca_certs=str(pki["paths"]["ca"]), ssl_cert_reqs=2)
    with live(native, **options) as srv:
        url = f"https://127.0.0.1:{srv.port}/"
        without = _client_context(pki)
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            with httpx.Client(verify=without) as client:
                client.get(url)
        with_cert = _client_context(pki)
        with_cert.load_cert_chain(str(pki["client"]))
        with httpx.Client(verify=with_cert) as client:
            assert client.get(url).text == "https /"


def test_pathsend_over_tls_goes_through_the_transport(live, pki, tmp_path):
    data = os.urandom(3_000_000)
    path = tmp_path / "file.bin"
    path.write_bytes(data)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    with live(app, **_tls(pki)) as srv, httpx.Client(verify=_client_context(pki)) as client:
        answer = client.get(f"https://127.0.0.1:{srv.port}/")
    assert answer.content == data


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_the_ca(live, pki):
    with live(native, **_tls(pki)) as srv:
        out = subprocess.run(
            [
                "curl",
                "-fsS",
                "--cacert",
                str(pki["paths"]["ca"]),
                f"https://127.0.0.1:{srv.port}/c",
            ],
            capture_output=True,
            timeout=30,
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"https /c"


def _encrypted_key(pki: dict[str, Any], path: Path) -> str:
    """The server's key, encrypted with the password ``s3cret``, written to *path*."""
    from cryptography.hazmat.primitives import serialization

    loaded = serialization.load_pem_private_key(pki["cert"].private_key_pem.bytes(), None)
    encrypted = loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    path.write_bytes(encrypted)
    return str(path)


def test_an_encrypted_key_and_its_password(impl, pki, tmp_path):
    options = _tls(pki, ssl_keyfile=_encrypted_key(pki, tmp_path / "enc.pem"))
    assert cyhttp.Server(native, implementation=impl, ssl_keyfile_password="s3cret", **options).ssl
    with pytest.raises(ValueError, match="cannot load the certificate and key"):
        cyhttp.Server(native, implementation=impl, ssl_keyfile_password="wrong", **options)


ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ssl-certfile", "/nonexistent.pem"], "cannot read /nonexistent.pem: No such file"),
        (["--ssl-keyfile", "k.pem"], "ssl_keyfile must be given with ssl_certfile"),
        (["--ssl-cert-reqs", "5"], "ssl_cert_reqs must be 0, 1 or 2, got 5"),
    ],
)
def test_bad_tls_settings_are_one_line(args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "cyhttp", "examples.hello:app", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cyhttp: error: "), proc.stderr
    assert message in lines[0]


def _peer_serial(port: int, pki: dict[str, Any]) -> int:
    ctx = _client_context(pki)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    return x509.load_der_x509_certificate(der).serial_number


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP")
def test_sighup_reloads_the_certificate_without_dropping_connections(pki):
    paths = pki["paths"]
    port = free_port()
    proc = start_cli(
        "examples.hello:app",
        "--port",
        str(port),
        "--ssl-certfile",
        str(paths["cert"]),
        "--ssl-keyfile",
        str(paths["key"]),
    )
    try:
        for _ in range(200):
            try:
                first = _peer_serial(port, pki)
                break
            except OSError:
                time.sleep(0.05)
        ctx = _client_context(pki)
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        kept = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        renewed = pki["ca"].issue_cert("127.0.0.1")
        renewed.cert_chain_pems[0].write_to_path(str(paths["cert"]))
        renewed.private_key_pem.write_to_path(str(paths["key"]))
        proc.send_signal(signal.SIGHUP)
        for _ in range(200):
            if _peer_serial(port, pki) != first:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the certificate was not reloaded")
        kept.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # opened before the reload
        assert kept.recv(65536).startswith(b"HTTP/1.1 200 ")
        kept.close()
    finally:
        code, err = stop_cli(proc)
    assert code == 0, err
    assert "TLS certificate reloaded" in err


def test_a_key_that_does_not_match_its_certificate(impl, pki, tmp_path):
    other = pki["ca"].issue_cert("127.0.0.1")
    other.private_key_pem.write_to_path(str(tmp_path / "other-key.pem"))
    options = _tls(pki, ssl_keyfile=str(tmp_path / "other-key.pem"))
    with pytest.raises(
        ValueError, match="cannot load the certificate and key: key values mismatch"
    ):
        cyhttp.Server(native, implementation=impl, **options)


def _expired(pki: dict[str, Any], path: Path, key: Path | None = None) -> str:
    """A certificate for 127.0.0.1 that expired in 2020 written to *path*, with its key
    (to *key*, else to *path* too)."""
    old = pki["ca"].issue_cert(
        "127.0.0.1",
        not_before=datetime.datetime(2019, 1, 1),
        not_after=datetime.datetime(2020, 1, 2, 3, 4, 5),
    )
    if key is None:
        old.private_key_and_cert_chain_pem.write_to_path(str(path))
    else:
        old.cert_chain_pems[0].write_to_path(str(path))
        old.private_key_pem.write_to_path(str(key))
    return str(path)


EXPIRED = "the certificate in {} expired on 2020-01-02 03:04:05 UTC"


def test_an_expired_certificate_is_refused(impl, pki, tmp_path):
    path = _expired(pki, tmp_path / "expired.pem")
    with pytest.raises(ValueError, match=f"^ssl_certfile: {EXPIRED.format(path)}$"):
        cyhttp.Server(native, implementation=impl, ssl_certfile=path)


def test_an_expired_certificate_on_reload_leaves_the_current_one(live, pki, tmp_path):
    with live(native, **_tls(pki)) as srv:
        before = _peer_serial(srv.port, pki)
        _expired(pki, pki["paths"]["cert"], pki["paths"]["key"])  # a matching pair
        done = concurrent.futures.Future[None]()
        srv.loop.call_soon_threadsafe(lambda: done.set_result(srv.server.reload_tls()))
        done.result(10)
        assert _peer_serial(srv.port, pki) == before


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("case", ["expired", "wrong password", "mismatched key", "missing key"])
def test_bad_tls_files_are_one_line_at_start(pki, tmp_path, case, workers):
    cert, key = str(pki["paths"]["cert"]), str(pki["paths"]["key"])
    if case == "expired":
        cert = key = _expired(pki, tmp_path / "expired.pem")
        message = EXPIRED.format(cert)
    elif case == "wrong password":
        key = _encrypted_key(pki, tmp_path / "enc.pem")
        message = "cannot load the certificate and key: "
    elif case == "mismatched key":
        pki["ca"].issue_cert("127.0.0.1").private_key_pem.write_to_path(key)
        message = "cannot load the certificate and key: key values mismatch"
    else:
        key = str(tmp_path / "nokey.pem")
        message = f"cannot read {key}: No such file or directory"
    extra = ["--ssl-keyfile-password", "wrong"] if case == "wrong password" else []
    # With workers too: refused by the command, not by each worker as it starts.
    proc = run_cli(
        "examples.hello:app", "--port", str(free_port()), "--workers", workers,
        "--ssl-certfile", cert, "--ssl-keyfile", key, *extra,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cyhttp: error: ssl_"), proc.stderr
    assert message in lines[0]
