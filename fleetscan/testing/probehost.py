"""How the simulated hosts (:mod:`fleetscan.testing.simhost`) answer the probe programs.

Not a stub: a simulated probe host really probes. A Windows host answers
:data:`~fleetscan.exposure.remote.POWERSHELL_COMMAND` the way the PowerShell
program does, with real TCP connects from this machine; a POSIX host with
``probe_path`` set runs the real POSIX program in this machine's ``/bin/sh``
with ``PATH`` limited to that folder (so a test decides which of bash,
timeout, nc and python3 the "host" has).
"""

from __future__ import annotations

import asyncio
import os
import shlex

from fleetscan.exposure import remote
from fleetscan.exposure.scanner import connect_once
from fleetscan.transports.base import DEFAULT_MAX_OUTPUT
from fleetscan.transports.local import LocalSession

#: longest a simulated host's probe program may run (the client's own
#: deadlines end a probe phase much sooner)
PROBE_TIMEOUT = 600.0

# what .NET's SocketException says, by outcome
_WINDOWS_TEXT = {
    "refused": "No connection could be made because the target machine actively refused it",
    "unreachable": "A socket operation was attempted to an unreachable host",
}


POWERSHELL_COMMAND = remote.POWERSHELL_COMMAND


def is_probe_program(command: str, script: str) -> bool:
    return command == remote.POSIX_COMMAND and remote.END in script


async def answer_windows(stdin: str) -> str:
    """The PowerShell program's output for ``stdin``, from real connects."""
    lines = [x for x in stdin.splitlines() if x.strip()]
    if not lines:
        return ""
    marker, timeout, parallel = lines[0].split()
    gate = asyncio.Semaphore(int(parallel))

    async def one(line: str) -> str:
        index, address, port = line.split()
        async with gate:
            o = await connect_once(address, int(port), float(timeout))
        if o.result == "open":
            rtt = f"{o.rtt_ms:.3f}" if o.rtt_ms is not None else "-"
            return f"{marker} r {index} open {rtt} handshake completed"
        if o.result == "filtered":
            return f"{marker} r {index} filtered - no answer within {float(timeout):g}s"
        text = _WINDOWS_TEXT.get(o.result, o.reason)
        res = o.result if o.result in remote.RESULTS else "error"
        return f"{marker} r {index} {res} - {text}"

    out = [f"{marker} method powershell", *await asyncio.gather(*(one(x) for x in lines[1:]))]
    return "\n".join(out) + "\n"


async def run_posix(script: str, path: str) -> tuple[str, str, int]:
    """Run the POSIX probe program in this machine's sh with ``PATH=path``,
    through the local transport: its process group is killed and its pipes
    closed inside the event loop however the run ends, also when the
    simulated host goes away mid-probe (its server stopped, the client gave
    up) and this task is cancelled."""
    home = os.environ.get("HOME", "/")
    command = " ".join(
        [
            "exec env -i",
            *(
                shlex.quote(f"{k}={v}")
                for k, v in (("PATH", path), ("LC_ALL", "C"), ("HOME", home))
            ),
            "/bin/sh -s",
        ]
    )
    result = await LocalSession().run(
        command, stdin=script, timeout=PROBE_TIMEOUT, max_output=DEFAULT_MAX_OUTPUT
    )
    code = result.exit_status if result.exit_status is not None else 255
    return result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace"), code
