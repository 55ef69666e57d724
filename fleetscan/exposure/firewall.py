"""Optional evidence: the host firewall's ruleset, shown in the host's detail.

Static evaluation of rulesets is out of scope — the probe is the truth — but
an auditor who sees ``filtered`` wants to see the rule. Each scanned host gets
one more exec channel running a constant program under ``LC_ALL=C`` (each
listing under its own ``sudo -n`` when the inventory says so — never a root
shell, and examples/sudoers.d/fleetscan grants exactly these): ``nft list ruleset``,
``iptables-save``/``ip6tables-save``, ``pfctl -sr`` — whichever exist — or on
Windows ``netsh advfirewall firewall show rule name=all``. Output is bounded
like every command (the evidence keeps the first 16 KiB) and stored as one
more :class:`~fleetscan.model.CommandEvidence` of the host; a failure is noted
there and never changes the host's status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from fleetscan.collectors.base import evidence
from fleetscan.errors import TransportError
from fleetscan.model import CommandEvidence, HostScan

if TYPE_CHECKING:
    from fleetscan.exposure.phase import Connector

LABEL = "firewall ruleset"
MAX_OUTPUT = 1024 * 1024

#: the ruleset listings, constant; each is asked of sudo on its own under become
RULESET_COMMANDS = ("nft list ruleset", "iptables-save", "ip6tables-save", "pfctl -sr")


def posix_script(become: bool) -> str:
    """The ``sh -s`` script: every ruleset listing that exists on the host,
    each framed by a ``### command`` line. Under become each listing runs as
    ``sudo -n <listing>`` (examples/sudoers.d/fleetscan grants exactly these),
    never a root shell; sudo never prompts (-n), and a refusal is shown as the
    listing's output."""
    sudo = "sudo -n " if become else ""
    lines = [
        "LC_ALL=C; export LC_ALL; LANG=C; export LANG",
        'PATH="$PATH:/usr/sbin:/sbin"; export PATH',
        "found=",
    ]
    for command in RULESET_COMMANDS:
        program = command.split()[0]
        lines.append(
            f"if command -v {program} >/dev/null 2>&1; then found=1; "
            f'echo "### {command}"; {sudo}{command} 2>&1; fi'
        )
    lines.append('[ -n "$found" ] || echo "### no nft, iptables-save or pfctl on this host"')
    return "\n".join(lines) + "\n"


WINDOWS_COMMAND = "netsh advfirewall firewall show rule name=all"


def is_ruleset(ev: CommandEvidence) -> bool:
    return ev.command.startswith(LABEL)


async def add_rulesets(
    scans: Sequence[HostScan],
    connect: Connector,
    *,
    concurrency: int,
    timeout: float,
    deadline: float,
) -> tuple[HostScan, ...]:
    """``scans`` with the ruleset evidence of every scanned host appended: at
    most ``timeout`` seconds per host, and nothing after ``deadline`` seconds."""
    gate = asyncio.Semaphore(max(1, concurrency))
    end = time.monotonic() + deadline

    async def one(scan: HostScan) -> HostScan:
        if not scan.status.scanned:
            return scan
        async with gate:
            left = min(timeout, end - time.monotonic())
            if left > 0:
                ev = await _collect(scan, connect, left)
            else:
                why = f"not collected: the probe phase deadline ({deadline:g}s) was reached"
                ev = CommandEvidence(LABEL, None, "", why, 0.0)
        return dataclasses.replace(scan, evidence=(*scan.evidence, ev))

    return tuple(await asyncio.gather(*(one(s) for s in scans)))


async def _collect(scan: HostScan, connect: Connector, timeout: float) -> CommandEvidence:
    windows = scan.platform == "windows"
    # under become sudo is asked for each listing, never for the shell
    command = WINDOWS_COMMAND if windows else "sh -s"
    listings = " / ".join(("sudo -n " if scan.target.become else "") + c for c in RULESET_COMMANDS)
    label = f"{LABEL}: {WINDOWS_COMMAND if windows else f'sh -s <{listings}>'}"
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            session = await connect(scan.target)
            try:
                result = await session.run(
                    command,
                    stdin=None if windows else posix_script(scan.target.become),
                    timeout=timeout,
                    max_output=MAX_OUTPUT,
                )
            finally:
                await session.close()
    except (TransportError, TimeoutError) as exc:
        why = str(exc) or f"no answer within {timeout:g}s"
        return CommandEvidence(label, None, "", f"not collected: {why}", time.monotonic() - started)
    return evidence(result, label)
