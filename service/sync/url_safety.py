"""Where we may send requests: EHR base URLs are checked so a target can never point us at ourselves or the LAN.

A target URL is refused when its host is, or resolves to, a loopback, link-local (cloud metadata at
169.254.169.254), private, shared, multicast, reserved or unspecified address — unless the operator allowed that
host explicitly. Numeric hosts in any form (decimal 2130706433, hex 0x7f000001, octal, short 127.1) are read the
way the C resolver reads them, so they cannot sneak past. An IPv6 address that carries an IPv4 address (the
transition forms: mapped, compatible, 6to4, Teredo, NAT64, ISATAP) is judged by the IPv4 address too, since a
relay or translator delivers the request there. The check runs again before every connection, so a DNS answer
that changes after registration (rebinding) is caught too.
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


SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
MAPPED = ipaddress.ip_network("::ffff:0:0/96")
TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT, RFC 6145
COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated, RFC 4291
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: an operator picks a prefix of /48../96 in it
# RFC 6052 §2.2: where the IPv4 address sits for each prefix length (bits 64-71, the "u" octet, are skipped).
NAT64_LAYOUTS = (48, 56, 64, 96)
ISATAP_IID = 0x0000_5EFE  # RFC 5214: interface id 00-00-5E-FE (or 02-00-5E-FE, u/g bits set) + IPv4


def _ipv4_at_rfc6052(value: int, prefix_length: int) -> ipaddress.IPv4Address:
    if prefix_length == 96:
        return ipaddress.IPv4Address(value & 0xFFFF_FFFF)
    without_u = ((value >> 64) << 56) | (value & ((1 << 56) - 1))  # 120 bits: the u octet taken out
    return ipaddress.IPv4Address((without_u >> (120 - prefix_length - 32)) & 0xFFFF_FFFF)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address this IPv6 address hands traffic to through a transition mechanism (none for plain IPv6)."""
    value = int(address)
    found: list[ipaddress.IPv4Address] = []
    if address in MAPPED or address in TRANSLATED or address in COMPATIBLE or address in NAT64_WELL_KNOWN:
        found.append(ipaddress.IPv4Address(value & 0xFFFF_FFFF))
    if address in NAT64_LOCAL_USE:
        found += [_ipv4_at_rfc6052(value, length) for length in NAT64_LAYOUTS]
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found += list(address.teredo)  # (server, client); the client address is de-obfuscated by the library
    if (value >> 32) & 0xFCFF_FFFF == ISATAP_IID:  # any prefix; u/g bits may be set
        found.append(ipaddress.IPv4Address(value & 0xFFFF_FFFF))
    return found


def is_public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # an IPv4 socket address in IPv6 form: only the IPv4 one counts
            return _is_public_itself(address.ipv4_mapped)
        return _is_public_itself(address) and all(_is_public_itself(inner) for inner in embedded_ipv4(address))
    return _is_public_itself(address)


def _is_public_itself(address: IpAddress) -> bool:
    return not (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in SHARED_ADDRESS_SPACE)
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
        raise invalid(
            field,
            "must use https: patient data never travels unencrypted (for a test EHR on a trusted network only, "
            "set TANDEM_SYNC_REQUIRE_HTTPS=false)",
        )
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
