"""Collectors: what runs on a host to list its sockets, and what it means.

One collector per platform (:data:`COLLECTORS`), each with one method,
``collect(host) -> Collected`` (nornir's Task/Result split): it runs its
constant commands through the :class:`~fleetscan.collectors.base.HostSession`
the runner hands it and returns the result as data. :func:`collect` is the
entry the runner calls: it probes the platform once (``uname -s``) unless the
inventory gave it, then runs that platform's collector.

* :mod:`.base` — HostSession (deadline, output cap, evidence), Collected
* :mod:`.posix_script` — the POSIX chain and the script that runs it
* :mod:`.posix` — the POSIX collector and the reading of its output
* :mod:`.windows` — netstat -ano + tasklist

Nothing from the inventory is ever interpolated into a command. How this fits
the runner: docs/architecture.md ("Inside the runner").
"""

from __future__ import annotations

from fleetscan.collectors.base import Collected, Collector, HostSession, evidence
from fleetscan.collectors.posix import PosixCollector
from fleetscan.collectors.posix_script import POSIX_PLATFORMS, marker, posix_chain
from fleetscan.collectors.windows import WINDOWS_NETSTAT, WINDOWS_TASKLIST, WindowsCollector
from fleetscan.model import Status
from fleetscan.transports.base import CommandResult

__all__ = [
    "COLLECTORS",
    "PROBE_COMMAND",
    "WINDOWS_NETSTAT",
    "WINDOWS_TASKLIST",
    "Collected",
    "Collector",
    "HostSession",
    "collect",
    "evidence",
    "marker",
    "platform_from_probe",
    "posix_chain",
]

PROBE_COMMAND = "uname -s"
PROBE_MAX_OUTPUT = 4096

COLLECTORS: dict[str, Collector] = {
    **{p: PosixCollector(p) for p in POSIX_PLATFORMS},
    "windows": WindowsCollector(),
}

_UNAME = {"linux": "linux", "darwin": "darwin", "freebsd": "freebsd"}


def platform_from_probe(result: CommandResult) -> str | None:
    """Read ``uname -s`` (or the Windows shell's complaint about it)."""
    out = result.stdout.decode("utf-8", "replace").strip()
    err = result.stderr.decode("utf-8", "replace")
    # a login banner or shell noise may come first: uname's answer is the last line
    lines = [line.strip().lower() for line in out.splitlines() if line.strip()]
    if result.exit_status == 0 and lines:
        for line in reversed(lines):
            if line in _UNAME:
                return _UNAME[line]
            if line.startswith(("mingw", "msys", "cygwin", "windows")):
                return "windows"
        return lines[-1][:40]
    text = (out + "\n" + err).lower()
    # cmd.exe: "'uname' is not recognized as an internal or external command";
    # PowerShell: "The term 'uname' is not recognized as the name of a cmdlet"
    if "is not recognized as" in text or "commandnotfoundexception" in text:
        return "windows"
    return None


async def collect(host: HostSession) -> Collected:
    """Collect one host: its platform (the inventory's hint, else probed once),
    then that platform's collector."""
    platform = host.target.platform
    if not platform:
        probe = await host.run(PROBE_COMMAND, max_output=PROBE_MAX_OUTPUT)
        platform = platform_from_probe(probe)
        if platform is None:
            return Collected(
                Status.NO_COLLECTOR, "could not tell the platform: `uname -s` gave nothing usable"
            )
    collector = COLLECTORS.get(platform)
    if collector is None:
        return Collected(Status.NO_COLLECTOR, f"no collector for platform {platform!r}")
    return await collector.collect(host)
