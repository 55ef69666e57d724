"""Small helpers shared by the Windows, BSD/macOS, lsof and sockstat parsers.

* :func:`port_number` reads a port column that may be a number or, when the
  command ran without ``-n``/``-P``, a service name (``ssh``, ``https``),
  using the shared table of :mod:`fleetscan.parsers.services`.
* :func:`merge_duplicates` and :func:`unique_processes` are re-exported from
  :mod:`fleetscan.parsers.base`, where every parser and the collector share them.
"""

from __future__ import annotations

import re

from fleetscan.parsers.base import merge_duplicates, unique_processes
from fleetscan.parsers.services import port_of

# Names that BSD/macOS /etc/services uses and the shared (Debian-derived)
# table in services.py does not know; seen in the macOS corpus captures, where
# the numeric run of the same host shows the same sockets (IANA-registered).
_BSD_EXTRA: dict[str, int] = {
    "xserveraid": 3722,
    "pds": 9595,
}


def port_number(text: str) -> int | None:
    """The port in ``text``: digits (0..65535) or a known service name; else None."""
    text = text.strip()
    value = port_of(text)
    if value is not None:
        return value
    return _BSD_EXTRA.get(text.lower())


__all__ = ["bsd_family_hint", "merge_duplicates", "port_number", "unique_processes"]


_BSD_PROTO = re.compile(r"^(tcp|udp)(4|6|46)?$")


def bsd_family_hint(proto_word: str, host: str) -> int:
    """BSD protocol words carry the family: tcp4, tcp6, tcp46 (dual-stack:
    written as IPv6); a bare tcp/udp falls back to the address's shape."""
    match = _BSD_PROTO.match(proto_word)
    version = match.group(2) if match else None
    if version in ("6", "46"):
        return 6
    if version == "4":
        return 4
    return 6 if ":" in host else 4
