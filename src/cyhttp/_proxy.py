"""Proxies trusted with ``X-Forwarded-For`` and ``X-Forwarded-Proto``.

Behind a reverse proxy (nginx, a load balancer) the peer of every connection is the
proxy, and the request reached the proxy over TLS; the proxy says who the client was
and which scheme it used in these headers. Anybody can send them, so they are read
only from peers listed in ``forwarded_allow_ips``, as uvicorn and gunicorn do.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import FrozenSet, Optional, Tuple, Union

Network = Union[IPv4Network, IPv6Network]


class TrustedProxies:
    """The peers whose forwarding headers are believed: ``"*"``, or addresses and
    networks separated by commas (``"127.0.0.1,10.0.0.0/8,::1"``)."""

    def __init__(self, spec: str) -> None:
        items = [item.strip() for item in spec.split(",") if item.strip()]
        if not items:
            raise ValueError("forwarded_allow_ips must name at least one address, or '*'")
        self.everyone = "*" in items
        hosts = set()
        networks = []
        for item in items:
            if item == "*":
                continue
            try:
                if "/" in item:
                    networks.append(ip_network(item, strict=False))
                else:
                    hosts.add(str(ip_address(item)))
            except ValueError:
                raise ValueError(
                    f"forwarded_allow_ips must be '*' or IP addresses and networks separated "
                    f"by commas, got {item!r}"
                ) from None
        self.hosts: FrozenSet[str] = frozenset(hosts)
        self.networks: Tuple[Network, ...] = tuple(networks)

    def trusts(self, host: str) -> bool:
        """Whether the peer (or forwarding hop) *host* is a trusted proxy."""
        if self.everyone or host in self.hosts:
            return True
        if not self.networks:
            return False
        try:
            address = ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client(self, forwarded_for: str) -> Optional[str]:
        """The client an ``X-Forwarded-For`` list names: the last hop no trusted proxy
        added (each proxy appends the peer it saw), or the first if all are trusted."""
        hops = [hop.strip() for hop in forwarded_for.split(",")]
        hops = [hop for hop in hops if hop]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else None
