"""The one place where socket addresses are normalised.

Every parser hands the address text it found to :func:`split_host_port` (or
:func:`split_bsd_host_port` for the BSD ``host.port`` form) and then to
:func:`normalise_address`, so every platform produces the same model:
no brackets, the ``%scope`` kept apart, wildcards as ``0.0.0.0`` / ``::``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

WILDCARD_V4 = "0.0.0.0"
WILDCARD_V6 = "::"


@dataclass(frozen=True, slots=True)
class Address:
    address: str
    family: int  # 4 or 6
    zone: str | None = None


def split_host_port(text: str) -> tuple[str, str]:
    """Split ``host:port`` where host may be ``[v6]``, bare v6 (port after the
    LAST colon, as old ss and Linux netstat print it), ``*`` or a name.

    Raises ValueError when there is no port separator.
    """
    text = text.strip()
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or close + 1 >= len(text) or text[close + 1] not in ":%":
            raise ValueError(f"malformed bracketed address {text!r}")
        host = text[1:close]
        rest = text[close + 1 :]
        # new ss prints the zone after the bracket: [fe80::1]%eth0:123
        if rest.startswith("%"):
            zone, sep, port = rest[1:].rpartition(":")
            if not sep:
                raise ValueError(f"no port in {text!r}")
            return f"{host}%{zone}", port
        return host, rest[1:]
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"no port in {text!r}")
    return host, port


def split_bsd_host_port(text: str) -> tuple[str, str]:
    """Split the BSD/macOS ``host.port`` form (``127.0.0.1.25``, ``*.22``,
    ``fe80::1%lo0.123``): the port is after the LAST dot."""
    host, sep, port = text.strip().rpartition(".")
    if not sep or not host:
        raise ValueError(f"no port in {text!r}")
    return host, port


@lru_cache(maxsize=4096)  # a fleet repeats a few addresses (0.0.0.0, ::, 127.0.0.1)
def normalise_address(host: str, family_hint: int | None = None) -> Address:
    """Normalise the host part of a socket address.

    ``family_hint`` (4 or 6) comes from the protocol column (tcp6, IPv6 …) and
    decides what a bare ``*`` means; without a hint ``*`` is IPv4's wildcard.
    IPv4-mapped IPv6 (``::ffff:10.0.0.1``) stays IPv6 — it is an IPv6 socket.
    Names (``localhost``) are kept as written.
    """
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    zone: str | None = None
    if "%" in host:
        host, _, zone = host.partition("%")
        zone = zone or None
    if host in ("*", ""):
        return Address(WILDCARD_V6 if family_hint == 6 else WILDCARD_V4, family_hint or 4, zone)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return Address(host, family_hint or (6 if ":" in host else 4), zone)
    if ip.version == 4 and family_hint == 6:
        # Linux netstat strips ::ffff: from mapped addresses on tcp6 rows
        return Address(str(ip), 6, zone)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # Python < 3.13 writes ::ffff:a00:20f; everyone reads ::ffff:10.0.2.15
        return Address(f"::ffff:{ip.ipv4_mapped}", 6, zone)
    return Address(str(ip), ip.version, zone)


@lru_cache(maxsize=4096)
def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address in ("localhost", "localhost.localdomain", "ip6-localhost")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def is_wildcard(address: str) -> bool:
    return address in (WILDCARD_V4, WILDCARD_V6)


@lru_cache(maxsize=4096)
def bind_class(address: str) -> str:
    """Classify a bind address: ``loopback``, ``wildcard``, ``private``,
    ``link-local`` or ``public`` (used by bind rules and the reports)."""
    if is_wildcard(address):
        return "wildcard"
    if is_loopback(address):
        return "loopback"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "public"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_link_local:
        return "link-local"
    if ip.is_private:
        return "private"
    return "public"


def parse_port(text: str) -> int | None:
    """A numeric port (0..65535), or None for ``*`` and service names."""
    text = text.strip()
    if text.isdigit():
        value = int(text)
        if 0 <= value <= 65535:
            return value
    return None
