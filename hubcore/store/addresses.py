"""Whether a host is inside this machine or its network: the addresses a URL taken from a
repository nobody has vouched for must not reach (server-side request forgery)."""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["is_internal_address", "is_internal_host"]


def is_internal_address(address: str) -> bool:
    """Whether the literal IP *address* is not globally reachable: loopback, private,
    link-local, carrier-grade NAT, unspecified, reserved or multicast (IPv4-mapped IPv6
    addresses are judged as the IPv4 address they carry)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def is_internal_host(host: str) -> bool:
    """Whether *host* (a name or a literal address) is, or resolves to, an internal address
    (:func:`is_internal_address`). A name is resolved with the system resolver, so spellings
    such as ``127.1`` or ``2130706433`` are caught; a name that does not resolve is not
    internal (fetching it fails anyway)."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if not host:
        return False
    try:
        return is_internal_address(host)
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return any(is_internal_address(str(info[4][0])) for info in infos)
