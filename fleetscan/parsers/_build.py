"""Small helpers shared by the Windows, BSD/macOS, lsof and sockstat parsers.

* :func:`port_number` reads a port column that may be a number or, when the
  command ran without ``-n``/``-P``, a service name (``ssh``, ``https``),
  using the shared table of :mod:`fleetscan.parsers.services`.
* :func:`merge_duplicates` folds rows that describe the same listening
  address into one :class:`~fleetscan.model.Listener`. Windows prints one row
  per socket (``UDP 0.0.0.0:5353`` forty times), lsof one row per thread and
  per process sharing a socket, macOS one row per ``SO_REUSEPORT`` socket;
  policy and reports care about "who listens on proto/address/port", so rows
  with the same key become one listener whose processes are the union (first
  seen first) and whose ``raw`` keeps every source line (evidence).
"""

from __future__ import annotations

from collections.abc import Iterable

from fleetscan.model import Listener, Process
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


def unique_processes(processes: Iterable[Process]) -> tuple[Process, ...]:
    """Processes without repeats, in first-seen order."""
    return tuple(dict.fromkeys(processes))


def merge_duplicates(listeners: Iterable[Listener]) -> tuple[Listener, ...]:
    """One listener per (proto, family, address, zone, port), in first-seen order.

    Processes are united (a process with a name replaces the same pid with an
    empty name), ``raw`` joins the source lines, ``line`` stays the first.
    """
    merged: dict[tuple[str, int, str, str | None, int], Listener] = {}
    for item in listeners:
        key = (item.proto, item.family, item.address, item.zone, item.port)
        seen = merged.get(key)
        if seen is None:
            merged[key] = item
            continue
        raw = seen.raw if item.raw in seen.raw.split("\n") else f"{seen.raw}\n{item.raw}"
        merged[key] = Listener(
            proto=seen.proto,
            family=seen.family,
            address=seen.address,
            port=seen.port,
            state=seen.state,
            processes=_union(seen.processes, item.processes),
            zone=seen.zone,
            raw=raw,
            line=seen.line,
        )
    return tuple(merged.values())


def _union(first: tuple[Process, ...], second: tuple[Process, ...]) -> tuple[Process, ...]:
    out = list(unique_processes(first + second))
    named = {(p.pid, p.user) for p in out if p.name and p.pid is not None}
    # drop a nameless entry when the same pid is also known by name
    out = [p for p in out if p.name or p.pid is None or (p.pid, p.user) not in named]
    return tuple(out)
