"""The "name does not resolve" row of the fault matrix, run for real through the CLI.

Run by ``test_fault_matrix`` as ``ip netns exec <ns> python -m tests.faults.dns_case DIR``
inside a network namespace that has only a loopback interface and whose
``/etc/netns/<ns>/resolv.conf`` names ``127.0.0.1`` as its only name server: the
resolver's query goes to a port nobody listens on and fails at once, and no
packet can leave the machine. The script refuses to run anywhere else.

Inside the namespace it starts two healthy simulated hosts on loopback, writes
an Ansible inventory with them plus a host named ``fleet-host.invalid``, runs
``python -m fleetscan scan`` on it and prints one JSON object: the CLI's exit
code, its wall time and the ``hosts`` of its ``report.json``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

from fleetscan.testing.fleet import sim_fleet
from fleetscan.testing.simhost import SimHost

REPO = Path(__file__).resolve().parents[2]
UNRESOLVABLE = "fleet-host.invalid"  # RFC 6761: .invalid never resolves
CONNECT_TIMEOUT = 2.0
HOST_TIMEOUT = 6.0


def hermetic_problem() -> str | None:
    """Why this process could send a DNS query off the machine (None: it cannot)."""
    servers = [
        line.split()[1]
        for line in Path("/etc/resolv.conf").read_text().splitlines()
        if line.startswith("nameserver") and len(line.split()) > 1
    ]
    if servers != ["127.0.0.1"]:
        return f"/etc/resolv.conf names {servers}, not only 127.0.0.1"
    interfaces = [name for _, name in socket.if_nameindex()]
    if interfaces != ["lo"]:
        return f"interfaces other than loopback: {interfaces}"
    return None


async def scan_in_namespace(work: Path, healthy: list[SimHost]) -> dict[str, Any]:
    async with sim_fleet(work, healthy) as fleet:
        known = fleet.known_hosts
        inventory = fleet.write_inventory(
            work / "inventory.yaml",
            extra={
                "no-dns": {
                    "ansible_host": UNRESOLVABLE,
                    "ansible_port": 22,
                    "ansible_user": fleet.user,
                    "ansible_ssh_private_key_file": str(fleet.key),
                }
            },
        )
        empty_config = work / "ssh_config"
        empty_config.write_text("")
        out = work / "report"
        argv = [
            sys.executable,
            "-m",
            "fleetscan",
            "scan",
            "-i",
            str(inventory),
            "-p",
            str(REPO / "policies" / "baseline.yaml"),
            "-o",
            str(out),
            "--format",
            "json",
            "--known-hosts",
            str(known),
            "--ssh-config",
            str(empty_config),
            "--connect-timeout",
            str(CONNECT_TIMEOUT),
            "--host-timeout",
            str(HOST_TIMEOUT),
            "-q",
        ]
        start = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=str(REPO),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
        elapsed = time.monotonic() - start
        report = json.loads((out / "report.json").read_text()) if out.is_dir() else {}
        return {
            "exit_code": proc.returncode,
            "elapsed": elapsed,
            "stderr": stderr.decode("utf-8", "replace")[-2000:],
            "stdout": stdout.decode("utf-8", "replace")[-2000:],
            "hosts": report.get("hosts", []),
        }


def main(argv: list[str]) -> int:
    problem = hermetic_problem()
    if problem:
        print(f"refusing to run outside the sealed namespace: {problem}", file=sys.stderr)
        return 2
    from tests.orchestration.test_host_statuses import good

    work = Path(argv[0])
    result = asyncio.run(scan_in_namespace(work, [good("healthy-1"), good("healthy-2")]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
