"""The client's real address behind a trusted reverse proxy (``X-Forwarded-For``, ``X-Forwarded-Proto``).

Rate limits and the failed-authentication budget are kept per client address, so the address
must be the client's, and a client must not be able to choose it: forwarded headers are read
only from the proxies in ``TICKET_ROUTER_FORWARDED_ALLOW_IPS`` (addresses, networks, or ``*``),
and the client is the right-most address in ``X-Forwarded-For`` that is not one of them.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ["ForwardedMiddleware", "TrustedProxies"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The proxies whose forwarded headers are believed."""

    def __init__(self, spec: str) -> None:
        parts = [part.strip() for part in spec.split(",") if part.strip()]
        self.everyone = "*" in parts
        self.networks: list[Network] = []
        self.names: set[str] = set()
        for part in parts:
            if part == "*":
                continue
            try:
                self.networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                self.names.add(part)  # e.g. a unix socket path or a host name the server reports

    def __contains__(self, host: object) -> bool:
        if not isinstance(host, str) or not host:
            return False
        if self.everyone or host in self.names:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client_of(self, forwarded_for: str) -> str | None:
        """The right-most address of an ``X-Forwarded-For`` value that is not a trusted proxy."""
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if not hops:
            return None
        if self.everyone:
            return hops[0]
        for hop in reversed(hops):
            if hop not in self:
                return hop
        return hops[0]


class ForwardedMiddleware:
    """Replace ``scope["client"]`` and ``scope["scheme"]`` from a trusted proxy's headers."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if client and client[0] in self.trusted:
                self._rewrite(scope)
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Any) -> None:
        forwarded_for = proto = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                joined = value.decode("latin-1")
                forwarded_for = joined if forwarded_for is None else f"{forwarded_for},{joined}"
            elif name == b"x-forwarded-proto" and proto is None:
                proto = value.decode("latin-1").strip().lower()
        if forwarded_for:
            host = self.trusted.client_of(forwarded_for)
            if host:
                scope["client"] = (host, 0)
        if proto in ("http", "https"):
            scope["scheme"] = proto
