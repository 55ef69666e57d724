"""The Windows collector: ``netstat -ano`` joined with ``tasklist`` (pid → image).

Windows OpenSSH runs commands through cmd.exe or PowerShell, so there is no
script here: two constant commands, two exec channels.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from fleetscan import parsers
from fleetscan.collectors.base import (
    Collected,
    HostSession,
    first_lines,
    parse_inline,
    too_many_lines,
)
from fleetscan.model import Status
from fleetscan.parsers.windows_netstat import apply_tasklist
from fleetscan.transports.base import CommandResult

WINDOWS_NETSTAT = "netstat -ano"
WINDOWS_TASKLIST = "tasklist /FO CSV /NH"


def interpret_windows(results: list[CommandResult]) -> Collected:
    """``[netstat -ano, tasklist]`` joined (pid → image name). The list is
    emptied and netstat's bytes let go once decoded: a flooding host's capped
    output is not held twice (bytes and text) while it is parsed."""
    netstat, tasklist = results
    results.clear()
    if netstat.exit_status not in (0, None) and (not netstat.stdout or netstat.stdout.isspace()):
        err = netstat.stderr.decode("utf-8", "replace").strip()[:200]
        return Collected(Status.NO_COLLECTOR, f"netstat -ano failed: {err}", platform="windows")
    data, cut = first_lines(netstat.stdout)
    text = _decode_console(data)
    del data
    netstat = replace(netstat, stdout=b"")
    try:
        parsed = parsers.get("windows-netstat").parse(text)
        if tasklist.exit_status == 0:
            parsed = apply_tasklist(parsed, _decode_console(first_lines(tasklist.stdout)[0]))
    except Exception as exc:  # a parser bug must stay this host's problem
        return Collected(
            Status.PARSE_ERROR,
            f"windows parser failed: {type(exc).__name__}: {exc}",
            platform="windows",
        )
    problems = []
    if tasklist.exit_status != 0:
        problems.append("tasklist failed: process names unknown")
    if netstat.truncated:
        problems.append("output cut at the size limit: the listing is incomplete")
    if cut:
        problems.append(too_many_lines(WINDOWS_NETSTAT))
    if not parsed.listeners and parsed.unparsed:
        return Collected(
            Status.PARSE_ERROR,
            "; ".join(["netstat -ano output could not be read", *problems]),
            WINDOWS_NETSTAT,
            (),
            parsed.unparsed,
            "windows",
        )
    status = Status.PARTIAL if problems else Status.OK
    return Collected(
        status, "; ".join(problems), WINDOWS_NETSTAT, parsed.listeners, parsed.unparsed, "windows"
    )


def _decode_console(data: bytes) -> str:
    """Windows consoles write the OEM code page: UTF-8 first, then cp936 (GBK,
    strict enough to fail on most other text), then cp437 (decodes any byte)."""
    for enc in ("utf-8", "cp936"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("cp437")


class WindowsCollector:
    platform = "windows"

    async def collect(self, host: HostSession) -> Collected:
        results = [await host.run(WINDOWS_NETSTAT)]
        results.append(await host.run(WINDOWS_TASKLIST))
        # parsing is CPU work: off the event loop unless small (see PosixCollector);
        # interpret_windows empties the list: nothing here holds the output meanwhile
        if parse_inline(*results):
            return interpret_windows(results)
        return await asyncio.to_thread(interpret_windows, results)
