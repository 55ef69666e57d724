"""Probe planning: which (address, port) each zone connects to. Pure.

The rules that keep probing polite and inside the operator's intent:

* only listeners a host *reported* are probed — never a sweep, never a port
  the host did not list;
* only addresses from the inventory: the target's own address, or the
  value of the zone's ``address_var`` inventory variable;
* one connection per (address, port) per zone, even when several listeners
  (``0.0.0.0:22`` and ``:::22``) would be answered by it;
* what a TCP connect cannot judge is ``not_probed`` with the reason: UDP,
  loopback-only and link-local binds, a bind to another address than the one
  probed, an IPv4-only socket behind an IPv6 address, listeners the zone
  skips by policy.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from itertools import zip_longest

from fleetscan.addresses import bind_class, is_wildcard
from fleetscan.model import HostScan, Listener, Target
from fleetscan.policy.schema import Zone

#: a DNS name as the remote probe programs accept it (letters, digits, '.', '-')
_NAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One TCP connection to make."""

    address: str
    port: int


@dataclass(frozen=True, slots=True)
class Row:
    """One cell of the matrix: a listener of ``host`` seen from a zone.
    ``endpoint`` is None when the listener is not probed (``reason`` says why)."""

    host: str
    listener: Listener
    address: str
    endpoint: Endpoint | None
    reason: str = ""


def probe_address(target: Target, zone: Zone | None) -> str:
    """The address ``target`` is probed at from ``zone`` (inventory data only)."""
    if zone is not None and zone.address_var:
        value = target.vars.get(zone.address_var)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return target.address


def usable_address(address: str) -> bool:
    """An IP literal or a plain DNS name: safe as data for every probe program."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return bool(_NAME_RE.match(address))
    return True


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def skip_reason(lst: Listener, address: str, zone: Zone | None, target: Target) -> str:
    """Why ``lst`` is not probed at ``address`` from ``zone`` ('' = probe it)."""
    if lst.proto != "tcp":
        return "udp: a TCP connect cannot judge it (not probed)"
    if lst.port <= 0:
        return "no port"
    cls = bind_class(lst.address)
    if cls == "loopback":
        return "bound to loopback only"
    if cls == "link-local":
        return "bound to a link-local address only"
    if zone is not None:
        if any(fnmatchcase(target.name, h) for h in zone.skip_hosts) or any(
            fnmatchcase(g, pat) for g in target.groups for pat in zone.skip_groups
        ):
            return "host excluded from this zone by policy"
        if any(lst.port in r for r in zone.skip_ports):
            return "port excluded from this zone by policy"
    if not usable_address(address):
        return f"inventory address {address!r} is not an IP address or DNS name"
    probed = _ip(address)
    if probed is None:  # a DNS name: the connection itself will tell
        return ""
    if is_wildcard(lst.address):
        if lst.family == 4 and probed.version == 6:
            return f"IPv4-only socket; probed address {address} is IPv6"
        return ""
    bound = _ip(lst.address)
    if bound is not None and bound != probed:
        return f"bound to {lst.address} only, not to the probed address {address}"
    return ""


def plan_zone(scans: Sequence[HostScan], zone: Zone | None) -> list[Row]:
    """Every listener of every scanned host, as seen from ``zone`` (None: the scanner)."""
    rows: list[Row] = []
    for scan in scans:
        if not scan.status.scanned:
            continue
        address = probe_address(scan.target, zone)
        for lst in scan.listeners:
            why = skip_reason(lst, address, zone, scan.target)
            endpoint = None if why else Endpoint(address, lst.port)
            rows.append(Row(scan.host, lst, address, endpoint, why))
    return rows


def endpoints(rows: Sequence[Row]) -> list[Endpoint]:
    """The distinct connections of ``rows``, interleaved across addresses so a
    window of parallel probes touches as many different hosts as possible."""
    per_address: dict[str, list[Endpoint]] = {}
    seen: set[Endpoint] = set()
    for row in rows:
        if row.endpoint is not None and row.endpoint not in seen:
            seen.add(row.endpoint)
            per_address.setdefault(row.endpoint.address, []).append(row.endpoint)
    out: list[Endpoint] = []
    for batch in zip_longest(*per_address.values()):
        out.extend(e for e in batch if e is not None)
    return out
