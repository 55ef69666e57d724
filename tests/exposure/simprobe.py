"""Helpers for the in-process exposure tests: simulated hosts whose reported
listeners are real sockets on 127.0.0.1, and probe hosts whose tools the test
chooses (a folder of symlinks used as PATH)."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from fleetscan.app import RunInputs, run_scan
from fleetscan.exposure import ProbeSettings, check_probe_config
from fleetscan.model import ScanRun
from fleetscan.policy import load_policies
from fleetscan.testing.fleet import SimFleet

REPO = Path(__file__).resolve().parents[2]
FIX = REPO / "tests" / "fixtures"


def ss_output(rows: Sequence[tuple[str, str, int]], process: str = "svc", pid: int = 4242) -> str:
    """``ss -tulnp`` text listing (proto, address, port) rows held by one process."""
    out = ["Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process"]
    for i, (proto, addr, port) in enumerate(rows):
        state = "LISTEN" if proto == "tcp" else "UNCONN"
        shown = f"[{addr}]" if ":" in addr else addr
        out.append(
            f"{proto}   {state} 0      128    {shown}:{port} 0.0.0.0:* "
            f'users:(("{process}",pid={pid},fd={3 + i}))'
        )
    return "\n".join(out) + "\n"


@contextmanager
def listening(count: int) -> Iterator[list[int]]:
    """``count`` real TCP listeners on 127.0.0.1 (ports returned)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(16)
            socks.append(s)
        yield [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tool_dir(base: Path, name: str, tools: Sequence[str]) -> str:
    """A folder holding only ``tools`` (symlinks to this machine's), for PATH."""
    d = base / f"bin-{name}"
    d.mkdir()
    for tool in ("cat", "tr", *tools):
        found = shutil.which(tool, path="/usr/local/bin:/usr/bin:/bin")
        if found is None:
            raise RuntimeError(f"{tool} is not installed (scripts/test-deps.sh)")
        os.symlink(os.path.realpath(found), d / tool)
    return str(d)


async def probe_run(
    fleet: SimFleet,
    tmp: Path,
    policy_text: str,
    zones: Sequence[str],
    timeout: float = 2.0,
    deadline: float = 60.0,
) -> ScanRun:
    """Scan ``fleet`` and probe from ``zones`` under the policy ``policy_text``."""
    path = tmp / "exposure-policy.yaml"
    path.write_text(policy_text)
    pol = load_policies([path])
    settings = ProbeSettings(zones=tuple(zones), timeout=timeout, deadline=deadline)
    check_probe_config(pol, settings, fleet.targets)
    inputs = RunInputs(
        targets=tuple(fleet.targets), policy=pol, settings=fleet.settings(), probe=settings
    )
    return await run_scan(inputs)


def matrix(run: ScanRun) -> dict[tuple[str, str, int, str], str]:
    """(host, bind address, port, zone) → result."""
    return {(r.host, r.listener.address, r.port, r.zone): r.result for r in run.exposure}
