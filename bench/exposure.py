"""What exposure probes cost: connections and wall time for N hosts x 2 zones.

Run from the repository root (never in CI)::

    .venv/bin/python -m bench.exposure                  # 200 hosts, zones scanner + lab
    .venv/bin/python -m bench.exposure --hosts 50 --method python3

Two processes, like ``bench.faults``:

* a *server* process runs the fleet: N simulated Linux hosts
  (:mod:`fleetscan.testing.simhost`, real asyncssh servers), host *i* on its own
  loopback address ``127.0.(10 + i // 250).(i % 250 + 1)`` (the addressing of
  the shared fleet benchmark, ``bench/fleet.py``; Linux routes all of
  127.0.0.0/8 to ``lo``), each reporting six listeners: its SSH port, two
  ports with a real listening socket on its address (``open``), one port with
  none (``refused``), one loopback-only and one UDP socket (``not_probed``).
  Plus one probe host for zone ``lab`` that runs the real POSIX probe program
  in this machine's ``sh`` with only the chosen tool on ``PATH`` (``bash`` +
  ``timeout`` by default): its forks and connects cost the server process, as
  they would cost a real probe host;
* the *scanner* process scans the fleet (listeners), then runs the probe phase
  once per zone alone and once with both zones, and reports wall times,
  connections made (from the matrix) and connections accepted by the real
  listeners (counted by the server).

Filtered ports (no answer) cannot be made on loopback without a firewall in
the root namespace, which this benchmark does not touch; their cost is one
probe timeout per window of parallel probes (see the README's exposure notes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncssh

from fleetscan.exposure import ProbeSettings, probe_phase
from fleetscan.model import HostScan, Target
from fleetscan.policy import load_policies
from fleetscan.runner import HostScanner, ScanSettings, scan_all
from fleetscan.testing.simhost import SimHost, known_hosts_line, render_ss, start_host, stop_hosts
from fleetscan.transports.base import ConnectSettings, Session

SSH_PORT = 2222
OPEN_PORTS = (8080, 8443)
REFUSED_PORT = 5432
TOOLS = {"bash": ("bash", "timeout"), "nc": ("nc", "tr"), "python3": ("python3",)}


def address(i: int) -> str:
    return f"127.0.{10 + i // 250}.{i % 250 + 1}"


def host_ss() -> str:
    rows: list[tuple[str, str, int, list[tuple[str, int]]]] = [
        ("tcp", "0.0.0.0", SSH_PORT, [("sshd", 700)]),
        *(("tcp", "0.0.0.0", p, [("nginx", 800)]) for p in OPEN_PORTS),
        ("tcp", "0.0.0.0", REFUSED_PORT, [("postgres", 900)]),  # nothing listens: refused
        ("tcp", "127.0.0.1", 25, [("exim4", 950)]),
        ("udp", "0.0.0.0", 68, [("dhclient", 640)]),
    ]
    return render_ss(rows)


# --------------------------------------------------------------------------- server side


async def serve(work: Path, n: int, method: str) -> None:
    client_pub = asyncssh.read_public_key(str(work / "id_ed25519.pub"))
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    accepted: Counter[int] = Counter()

    async def accept(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted[w.get_extra_info("sockname")[1]] += 1
        w.close()

    bindir = work / "probe-bin"
    bindir.mkdir()
    for tool in ("cat", *TOOLS[method]):
        found = shutil.which(tool, path="/usr/bin:/bin")
        if found is None:
            raise SystemExit(f"{tool} is not installed")
        (bindir / tool).symlink_to(os.path.realpath(found))
    running, servers, lines, hosts = [], [], [], []
    for i in range(n):
        addr = address(i)
        sim = SimHost(f"h{i:04d}", outputs={"ss": host_ss()}, ps="700 root\n")
        running.append(await start_host(sim, [client_pub], host_key, addr, SSH_PORT))
        for port in OPEN_PORTS:
            servers.append(await asyncio.start_server(accept, addr, port, backlog=256))
        lines.append(known_hosts_line(addr, SSH_PORT, host_key))
        hosts.append({"name": sim.name, "address": addr})
    probe = SimHost("lab-probe", outputs={"ss": render_ss([])}, probe_path=str(bindir))
    running.append(await start_host(probe, [client_pub], host_key, "127.0.9.1", SSH_PORT))
    lines.append(known_hosts_line("127.0.9.1", SSH_PORT, host_key))
    hosts.append({"name": "lab-probe", "address": "127.0.9.1"})
    (work / "known_hosts").write_text("\n".join(lines) + "\n")
    (work / "hosts.json").write_text(json.dumps(hosts))
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # "count" request
    print(json.dumps({"accepted": sum(accepted.values())}), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    for s in servers:
        s.close()
    await stop_hosts(running)


# --------------------------------------------------------------------------- scanner side


async def measure(work: Path, concurrency: int, timeout: float) -> dict[str, Any]:
    hosts = json.loads((work / "hosts.json").read_text())
    key = str(work / "id_ed25519")
    targets = [
        Target(h["name"], h["address"], port=SSH_PORT, user="bench", key_files=(key,))
        for h in hosts
    ]
    settings = ScanSettings(
        connect=ConnectSettings(
            known_hosts=str(work / "known_hosts"), ssh_config=(), use_agent=False
        ),
        concurrency=concurrency,
    )
    policy_file = work / "zones.yaml"
    policy_file.write_text("version: 1\nzones:\n  lab: {probe_hosts: [lab-probe]}\n")
    policy = load_policies([policy_file])
    start = time.monotonic()
    scans = await scan_all(targets, settings)
    out: dict[str, Any] = {"scan_seconds": round(time.monotonic() - start, 2)}
    out["statuses"] = dict(Counter(s.status.value for s in scans))
    scanner = HostScanner(settings)

    async def connect(target: Target) -> Session:
        return await scanner.transport_for(target).connect(target, settings.connect)

    for zones in (("scanner",), ("lab",), ("scanner", "lab")):
        out["+".join(zones)] = await _phase(scans, policy, zones, timeout, connect)
    return out


async def _phase(
    scans: list[HostScan], policy: Any, zones: tuple[str, ...], timeout: float, connect: Any
) -> dict[str, Any]:
    start = time.monotonic()
    cells = await probe_phase(scans, policy, ProbeSettings(zones=zones, timeout=timeout), connect)
    wall = time.monotonic() - start
    probed = {(c.zone, c.address, c.port) for c in cells if c.result != "not_probed"}
    return {
        "seconds": round(wall, 2),
        "cells": len(cells),
        "connections": len(probed),
        "results": dict(Counter(f"{c.zone}:{c.result}" for c in cells)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.exposure", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=50, help="hosts scanned at once")
    ap.add_argument("--timeout", type=float, default=2.0, help="probe timeout")
    ap.add_argument("--method", choices=sorted(TOOLS), default="bash", help="lab probe tool")
    ap.add_argument("--serve", nargs=2, metavar=("WORK", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        asyncio.run(serve(Path(args.serve[0]), args.hosts, args.serve[1]))
        return 0
    with tempfile.TemporaryDirectory(prefix="fleetscan-bench-exposure-") as tmp:
        work = Path(tmp)
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(str(work / "id_ed25519"))
        (work / "id_ed25519").chmod(0o600)
        key.write_public_key(str(work / "id_ed25519.pub"))
        argv_s = [sys.executable, "-m", "bench.exposure", "--hosts", str(args.hosts)]
        argv_s += ["--serve", str(work), args.method]
        server = subprocess.Popen(argv_s, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert server.stdin and server.stdout
        try:
            if server.stdout.readline().strip() != "ready":
                raise SystemExit("the fleet did not start")
            result = asyncio.run(measure(work, args.concurrency, args.timeout))
            server.stdin.write("count\n")
            server.stdin.flush()
            result["accepted_by_listeners"] = json.loads(server.stdout.readline())["accepted"]
        finally:
            server.stdin.close()
            server.wait(30)
    result.update(hosts=args.hosts, method=args.method, probe_timeout=args.timeout)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
