"""Where we may send requests: EHR base URLs are checked so a target can never point us at ourselves or the LAN.

A target URL is refused when its host is, or resolves to, a loopback, link-local (cloud metadata at
169.254.169.254), private, shared, multicast, reserved or unspecified address — unless the operator allowed that
host explicitly. Numeric hosts in any form (decimal 2130706433, hex 0x7f000001, octal, short 127.1) are read the
way the C resolver reads them, so they cannot sneak past. The check runs again before every connection, so a DNS
answer that changes after registration (rebinding) is caught too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from service.errors import invalid

Resolver = Callable[[str], list[str]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def system_resolver(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return []
    return sorted({str(info[4][0]) for info in infos})


def is_public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in ipaddress.ip_network("100.64.0.0/10"))
    )


def check_target_url(
    url: str,
    *,
    field: str = "base_url",
    allowed_hosts: Iterable[str] = (),
    require_https: bool = True,
    resolve: Resolver = system_resolver,
) -> str:
    """The URL, normalised without a trailing slash; raises InvalidRequest naming `field` and the reason."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http"):
        raise invalid(field, "must be an http(s) URL")
    if parts.scheme == "http" and require_https:
        raise invalid(field, "must use https: patient data never travels unencrypted")
    if parts.username or parts.password:
        raise invalid(field, "must not carry credentials; configure the target's auth instead")
    if parts.query or parts.fragment:
        raise invalid(field, "must not have a query or fragment")
    host = (parts.hostname or "").lower()
    if not host:
        raise invalid(field, "has no host")
    if host not in {h.lower() for h in allowed_hosts}:
        check_host_is_public(host, resolve, field=field)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def check_host_is_public(host: str, resolve: Resolver = system_resolver, *, field: str = "base_url") -> None:
    addresses = resolve(host)
    if not addresses:
        raise invalid(field, f"host {host!r} does not resolve")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not is_public(address):
            raise invalid(
                field,
                f"host {host!r} is a non-public address ({address}); add it to TANDEM_SYNC_ALLOWED_HOSTS "
                "if this target really is on the hospital network",
            )
