"""Collectors: what runs on a host to list its sockets, and what it means.

One collector per platform (:data:`COLLECTORS`), each with one method,
``collect(host) -> Collected`` (nornir's Task/Result split): it runs its
constant commands through the :class:`~fleetscan.collectors.base.HostSession`
the runner hands it and returns the result as data. :func:`collect` is the
entry the runner calls: it runs the inventory's platform's collector or, when
the inventory does not say, the POSIX script that finds the platform out on
the host in the same single channel (a Windows shell that refuses ``sh`` is
handed to the Windows collector: one more channel there).

* :mod:`.base` — HostSession (deadline, output cap, evidence), Collected;
  what a host's evidence keeps: a listing read in full lives on in its
  listeners' own lines (its whole output is dropped), any other keeps a
  bounded excerpt of what came back
* :mod:`.posix_script` — the POSIX chain and the script that runs it
* :mod:`.posix` — the POSIX collector and the reading of its output
* :mod:`.windows` — netstat -ano + tasklist

Nothing from the inventory is ever interpolated into a command. How this fits
the runner: docs/architecture.md ("Inside the runner").
"""

from __future__ import annotations

from fleetscan.collectors.base import (
    Collected,
    Collector,
    HostSession,
    evidence,
    keep_lines_only,
)
from fleetscan.collectors.posix import PosixCollector
from fleetscan.collectors.posix_script import POSIX_PLATFORMS, marker, posix_chain
from fleetscan.collectors.windows import WINDOWS_NETSTAT, WINDOWS_TASKLIST, WindowsCollector
from fleetscan.model import Status

__all__ = [
    "COLLECTORS",
    "WINDOWS_NETSTAT",
    "WINDOWS_TASKLIST",
    "Collected",
    "Collector",
    "HostSession",
    "collect",
    "evidence",
    "marker",
    "posix_chain",
]

COLLECTORS: dict[str, Collector] = {
    **{p: PosixCollector(p) for p in POSIX_PLATFORMS},
    "windows": WindowsCollector(),
}
#: when the inventory does not give the platform
UNKNOWN_PLATFORM = PosixCollector(None)


async def collect(host: HostSession) -> Collected:
    """Collect one host with its platform's collector (found out on the host
    when the inventory does not give it). A listing read in full keeps its
    lines in its listeners, not its whole output (:func:`keep_lines_only`)."""
    platform = host.target.platform
    collector = COLLECTORS.get(platform) if platform else UNKNOWN_PLATFORM
    if collector is None:
        return Collected(Status.NO_COLLECTOR, f"no collector for platform {platform!r}")
    got = await collector.collect(host)
    keep_lines_only(got, host.evidence)
    return got
