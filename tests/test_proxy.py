"""Proxy headers (``_proxy``): what a trusted proxy says of the client and the scheme
reaches the ASGI scope; nobody else's ``X-Forwarded-*`` does."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from typing import Any

import httpx
import pytest

import cyhttp
from cyhttp._proxy import TrustedProxies

from .support import NGINX_CONF, split_responses

FORWARDED = b"X-Forwarded-For: 203.0.113.7, 10.1.2.3\r\nX-Forwarded-Proto: https\r\n"


def _seen(live: Any, headers: bytes, **options: Any) -> dict[str, Any]:
    """The scope of one request with *headers*, sent from 127.0.0.1."""
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    with live(app, lifespan="off", **options) as srv:
        with socket.create_connection(("127.0.0.1", srv.port)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n" + headers + b"\r\n")
            assert split_responses(sock.recv(4096))[0].startswith(b"HTTP/1.1 204 ")
            peer = sock.getsockname()
    (scope,) = seen
    scope["peer"] = peer
    return scope


def test_a_trusted_proxy_names_the_client_and_the_scheme(live):
    scope = _seen(live, FORWARDED, forwarded_allow_ips="127.0.0.1, 10.0.0.0/8")
    # 10.1.2.3 is a trusted proxy too: the client is the hop before it.
    assert scope["client"] == ("203.0.113.7", 0)
    assert scope["scheme"] == "https"


def test_by_default_the_local_proxy_is_trusted_as_by_uvicorn(live):
    scope = _seen(live, FORWARDED)
    assert scope["client"] == ("10.1.2.3", 0)  # the last hop no trusted proxy added
    assert scope["scheme"] == "https"


@pytest.mark.parametrize(
    "options",
    [{"forwarded_allow_ips": "192.0.2.1"}, {"proxy_headers": False}],
    ids=["untrusted-peer", "proxy-headers-off"],
)
def test_forwarding_headers_from_anybody_else_change_nothing(live, options):
    scope = _seen(live, FORWARDED, **options)
    assert scope["client"] == scope["peer"]
    assert scope["scheme"] == "http"


def test_a_scheme_other_than_http_or_https_is_ignored(live):
    scope = _seen(live, b"X-Forwarded-Proto: gopher\r\n")
    assert scope["scheme"] == "http" and scope["client"] == scope["peer"]


def test_a_framework_sees_the_forwarded_url_and_client(live):
    starlette = pytest.importorskip("starlette.applications")
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def where(request: Request) -> JSONResponse:
        assert request.client is not None
        return JSONResponse({"url": str(request.url), "client": request.client.host})

    app = starlette.Starlette(routes=[Route("/where", where)])
    with live(app, lifespan="off") as srv:
        port = srv.port
        answer = httpx.get(
            srv.url + "/where",
            headers={"X-Forwarded-For": "198.51.100.4", "X-Forwarded-Proto": "https"},
        )
    assert answer.json() == {
        "url": f"https://127.0.0.1:{port}/where",
        "client": "198.51.100.4",
    }


def test_trusted_proxies_parse_addresses_and_networks():
    proxies = TrustedProxies(" 127.0.0.1 , 10.0.0.0/8, ::1")
    assert proxies.trusts("127.0.0.1") and proxies.trusts("10.9.8.7") and proxies.trusts("::1")
    assert not proxies.trusts("11.0.0.1") and not proxies.trusts("not-an-address")
    assert proxies.client("1.2.3.4, 5.6.7.8, 10.0.0.1") == "5.6.7.8"
    assert proxies.client("10.0.0.2, 10.0.0.1") == "10.0.0.2"  # all trusted: the first
    assert proxies.client(" , ") is None
    assert TrustedProxies("*").client("1.1.1.1, 2.2.2.2") == "1.1.1.1"


@pytest.mark.parametrize("spec", ["", "localhost", "10.0.0.0/33", "1.2.3.4,,nope"])
def test_a_bad_list_of_proxies_is_refused_in_one_line(spec):
    with pytest.raises(ValueError, match="forwarded_allow_ips must"):
        cyhttp.Config(forwarded_allow_ips=spec)


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_behind_nginx_on_a_unix_socket(live, tmp_path):
    """nginx in front, as deployed: cyhttp on a Unix socket, trusting its one peer."""
    uds = str(tmp_path / "app.sock")
    with socket.socket() as probe:  # a free port for nginx (it cannot pick one itself)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=tmp_path, port=port, uds=uds))
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        body = f"{scope['scheme']} {scope['client'][0]} {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    with live(app, uds=uds, lifespan="off", forwarded_allow_ips="*"):
        nginx = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(tmp_path)], stderr=subprocess.PIPE
        )
        try:
            answer = None
            for _ in range(100):  # nginx takes a moment to listen
                try:
                    answer = httpx.get(
                        f"http://127.0.0.1:{port}/through?x=1",
                        headers={"X-Forwarded-For": "198.51.100.1"},
                    )
                    break
                except httpx.ConnectError:
                    time.sleep(0.05)
            assert answer is not None, "nginx did not start"
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
            assert nginx.stderr is not None
            nginx.stderr.close()
    # nginx appended the peer it saw; every hop is trusted ("*"), so the first is the client.
    assert (answer.status_code, answer.text) == (200, "https 198.51.100.1 /through")
    assert (b"x-forwarded-for", b"198.51.100.1, 127.0.0.1") in seen[0]["headers"]
    assert seen[0]["server"] == (uds, None)
