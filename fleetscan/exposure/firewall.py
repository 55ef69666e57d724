"""Optional evidence: the host firewall's ruleset, shown in the host's detail.

Static evaluation of rulesets is out of scope — the probe is the truth — but
an auditor who sees ``filtered`` wants to see the rule. Each scanned host gets
one more exec channel running a constant program under ``LC_ALL=C`` (with
``sudo -n`` when the inventory says so): ``nft list ruleset``,
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

POSIX_SCRIPT = """LC_ALL=C; export LC_ALL; LANG=C; export LANG
PATH="$PATH:/usr/sbin:/sbin"; export PATH
found=
for c in "nft list ruleset" "iptables-save" "ip6tables-save" "pfctl -sr"; do
  set -- $c
  command -v "$1" >/dev/null 2>&1 || continue
  found=1
  echo "### $c"
  $c 2>&1
done
[ -n "$found" ] || echo "### no nft, iptables-save or pfctl on this host"
"""
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
    # a root shell under become: the listing collector asks sudo for its commands only,
    # and examples/sudoers.d/fleetscan does not grant this one (sudo then refuses)
    posix = "sudo -n sh -s" if scan.target.become else "sh -s"
    command = WINDOWS_COMMAND if windows else posix
    label = f"{LABEL}: {WINDOWS_COMMAND if windows else command + ' <nft / iptables-save / pfctl>'}"
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            session = await connect(scan.target)
            try:
                result = await session.run(
                    command,
                    stdin=None if windows else POSIX_SCRIPT,
                    timeout=timeout,
                    max_output=MAX_OUTPUT,
                )
            finally:
                await session.close()
    except (TransportError, TimeoutError) as exc:
        why = str(exc) or f"no answer within {timeout:g}s"
        return CommandEvidence(label, None, "", f"not collected: {why}", time.monotonic() - started)
    return evidence(result, label)
